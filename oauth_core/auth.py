"""``requests`` authentication backed by a stored sign-in.

::

    import requests
    from oauth_core.auth import OAuthHubAuth

    session = requests.Session()
    session.auth = OAuthHubAuth("chatgpt")
    session.get("https://chatgpt.com/backend-api/codex/models", params={"client_version": "0.171.0"})

Each request gets a valid bearer (refreshed first when due) plus the provider's extra
headers (``ChatGPT-Account-Id`` …). If the server still answers 401 — the token was
revoked or expired early — the sign-in is refreshed once (under the cross-process lock;
if another process already refreshed, its token is used) and the request is sent once
more; when the request carried the API key, a new key is obtained instead
(:func:`oauth_core.tokens.renew_api_key`). A second 401 is returned to the caller as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests

from .tokens import auth_headers, get_credentials, refresh_credentials, renew_api_key


class OAuthHubAuth(requests.auth.AuthBase):
    """Bearer auth from ``oauth-hub``'s store, with one refresh-and-retry on 401.

    ``use_api_key``: ``None`` (default) sends the API key when the account has one and
    the access token otherwise; ``True`` or ``False`` force one or the other.
    """

    def __init__(self, provider: str, *, home: str | Path | None = None, use_api_key: bool | None = None) -> None:
        self.provider = provider
        self.home = home
        self.use_api_key = use_api_key

    def __repr__(self) -> str:
        return f"OAuthHubAuth(provider={self.provider!r})"

    def _wants_api_key(self, credentials: Any) -> bool:
        if self.use_api_key and not credentials.api_key:
            from .errors import OAuthHubError

            raise OAuthHubError(f"{self.provider} has no API key for this account.")
        return bool(self.use_api_key or (self.use_api_key is None and credentials.api_key))

    def _apply(self, request: Any, credentials: Any) -> None:
        use_key = self._wants_api_key(credentials)
        request.headers.update(auth_headers(self.provider, credentials, use_api_key=use_key, home=self.home))
        request._oauth_hub_token = credentials.access_token
        request._oauth_hub_key = credentials.api_key if use_key else None

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        credentials = get_credentials(self.provider, home=self.home)
        self._apply(request, credentials)
        request.register_hook("response", self._retry_on_401)
        return request

    def _retry_on_401(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        request = response.request
        if response.status_code != 401 or getattr(request, "_oauth_hub_retried", False):
            return response
        stale_key = getattr(request, "_oauth_hub_key", None)
        if stale_key:  # the API key was refused: a new key, before any refresh token is spent
            refreshed = renew_api_key(self.provider, home=self.home, stale_key=stale_key)
        else:
            refreshed = refresh_credentials(
                self.provider, home=self.home, stale_token=getattr(request, "_oauth_hub_token", None)
            )
        response.content  # noqa: B018 - drain the body so the connection can be reused
        response.close()
        retry = request.copy()
        self._apply(retry, refreshed)
        retry._oauth_hub_retried = True  # type: ignore[attr-defined]
        retry.hooks["response"] = []  # no second retry
        new_response = response.connection.send(retry, **kwargs)
        new_response.history.append(response)
        new_response.request = retry
        return new_response
