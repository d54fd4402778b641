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
more. A second 401 is returned to the caller as it is.
"""

from __future__ import annotations

from typing import Any

import requests

from .authflow import SignInAuth

__all__ = ["OAuthHubAuth"]


class OAuthHubAuth(SignInAuth, requests.auth.AuthBase):
    """Bearer (or the provider's own) auth from oauth-hub's store, with one refresh-and-retry on 401.

    ``OAuthHubAuth(provider, home=None, use_api_key=None)``: ``use_api_key`` ``None``
    sends the API key when the account has one and the access token otherwise; ``True``
    or ``False`` force one or the other. The rules are :class:`~oauth_core.authflow.SignInAuth`'s.
    """

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        credentials = self.current()
        self.apply(request.headers, credentials)
        request.register_hook("response", self._retry_on_401)
        request._oauth_hub_sent = credentials  # type: ignore[attr-defined]
        return request

    def _retry_on_401(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        request = response.request
        sent = getattr(request, "_oauth_hub_sent", None)
        if response.status_code != 401 or sent is None or getattr(request, "_oauth_hub_retried", False):
            return response
        refreshed = self.after_401(sent)
        response.content  # noqa: B018 - drain the body so the connection can be reused
        response.close()
        retry = request.copy()
        self.apply(retry.headers, refreshed)
        retry._oauth_hub_retried = True  # type: ignore[attr-defined]
        retry.hooks["response"] = []  # no second retry
        new_response = response.connection.send(retry, **kwargs)
        new_response.history.append(response)
        new_response.request = retry
        return new_response
