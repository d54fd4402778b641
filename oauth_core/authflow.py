"""What every HTTP-client auth of oauth_core does, whatever the client library.

:class:`SignInAuth` holds the rules; :class:`oauth_core.auth.OAuthHubAuth` (``requests``),
:class:`oauth_core.httpx_auth.OAuthHubHttpxAuth` (``httpx``) and
:class:`oauth_core.httpx2_auth.OAuthHubHttpx2Auth` (``httpx2``, which current vendor SDKs
depend on) apply them:

1. Before each request: the stored sign-in, refreshed first when due (under the
   cross-process lock), and the provider's headers for it (``request_headers`` hook,
   e.g. an account id or a beta flag; otherwise ``Authorization: Bearer``). The
   request's own ``Authorization`` and ``x-api-key`` are dropped first: SDKs insist on
   a placeholder key, and a placeholder sent beside the real credential would be
   refused.
2. On a 401: the credentials that were sent are stale. A refused API key is replaced
   (with the stored tokens first, spending no refresh token unless that fails); a
   refused access token is refreshed. Either way once, and if another process already
   did it, its result is used and nothing is spent. Then the request is sent once more;
   a second 401 goes back to the caller unchanged.

The async flows run the refresh (file lock, token request) in a worker thread, so an
event loop never blocks on it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator, MutableMapping
from pathlib import Path
from typing import Any

from .credentials import Credentials
from .errors import OAuthHubError

# Headers that carry a credential; replaced on every request the auth handles.
CREDENTIAL_HEADERS = ("authorization", "x-api-key")


class SignInAuth:
    """The stored sign-in of ``provider`` as HTTP authentication, with one refresh-and-retry on 401.

    ``use_api_key``: ``None`` (default) sends the API key when the account has one and
    the access token otherwise; ``True`` or ``False`` force one or the other.
    ``account``: which of the provider's accounts (default: ``$OAUTH_HUB_ACCOUNT``, else
    the provider's default account, looked up for every request).
    """

    requires_request_body = True  # httpx: buffer a streamed body so the retry can send it again

    def __init__(self, provider: str, *, home: str | Path | None = None, use_api_key: bool | None = None,
                 account: str | None = None) -> None:
        self.provider = provider
        self.home = home
        self.use_api_key = use_api_key
        self.account = account

    def __repr__(self) -> str:
        shown = "" if self.account is None else f", account={self.account!r}"
        return f"{type(self).__name__}(provider={self.provider!r}{shown})"

    # -- the rules ------------------------------------------------------------------------

    def current(self) -> Credentials:
        """The sign-in to send, refreshed first when due."""
        from .tokens import get_credentials

        return get_credentials(self.provider, home=self.home, account=self.account)

    def after_401(self, sent: Credentials) -> Credentials:
        """The sign-in to retry with, after ``sent`` was answered 401.

        A refused API key is replaced first, before any refresh token is spent
        (:func:`oauth_core.tokens.renew_api_key`); a refused access token is refreshed.
        """
        from .tokens import refresh_credentials, renew_api_key

        # The account that was sent, even if the default changed since: its record is the stale one.
        if self.sends_api_key(sent):
            return renew_api_key(self.provider, home=self.home, stale_key=sent.api_key, account=sent.account_name)
        return refresh_credentials(self.provider, home=self.home, stale_token=sent.access_token,
                                   account=sent.account_name)

    def sends_api_key(self, credentials: Credentials) -> bool:
        """Whether requests authenticate with the API key (else with the access token)."""
        if self.use_api_key and not credentials.api_key:
            raise OAuthHubError(f"{self.provider} has no API key for this account. Use the access token "
                                "(use_api_key=None or False).")
        return bool(self.use_api_key or (self.use_api_key is None and credentials.api_key))

    def headers(self, credentials: Credentials) -> dict[str, str]:
        """The headers that authenticate a request with ``credentials``."""
        from .tokens import auth_headers

        return auth_headers(self.provider, credentials, use_api_key=self.sends_api_key(credentials), home=self.home)

    def apply(self, headers: MutableMapping[str, str], credentials: Credentials) -> None:
        """Put ``credentials`` on a request's ``headers``, replacing any credential already there."""
        self._replace(headers, self.headers(credentials))

    # -- httpx-style auth flows (httpx.Auth and httpx2.Auth share this protocol) ------------

    def sync_auth_flow(self, request: Any) -> Generator[Any, Any, None]:
        credentials = self.current()
        self.apply(request.headers, credentials)
        response = yield request
        if response.status_code == 401:
            self.apply(request.headers, self.after_401(credentials))
            yield request

    async def async_auth_flow(self, request: Any) -> AsyncGenerator[Any, Any]:
        from anyio import to_thread

        credentials = await to_thread.run_sync(self.current)
        headers = await to_thread.run_sync(self.headers, credentials)
        self._replace(request.headers, headers)
        response = yield request
        if response.status_code == 401:
            fresh = await to_thread.run_sync(self.after_401, credentials)
            self._replace(request.headers, await to_thread.run_sync(self.headers, fresh))
            yield request

    @staticmethod
    def _replace(headers: MutableMapping[str, str], new: dict[str, str]) -> None:
        for name in [n for n in headers if n.lower() in CREDENTIAL_HEADERS]:
            del headers[name]
        headers.update(new)
