"""One ``requests`` session for every call to a provider, with errors people can read.

Providers receive an :class:`HttpClient` in their hooks instead of making sessions of
their own, so timeouts, the User-Agent, proxies and CA bundles (``requests`` honours
``HTTPS_PROXY``, ``REQUESTS_CA_BUNDLE`` …) behave the same for all of them.

Errors become :class:`~oauth_core.errors.IdPError` (the server answered with an error;
its OAuth ``error`` code is kept in ``.code``) or :class:`~oauth_core.errors.NetworkError`
(nobody answered). Messages name the host and the error code, never a request body.
``requests`` is imported on first use, not at start-up.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from .errors import IdPError, NetworkError, scrub

DEFAULT_TIMEOUT = (10.0, 60.0)  # (connect, read) seconds
USER_AGENT = "oauth-hub/0.1"


def error_code_and_description(body: Any) -> tuple[str | None, str | None]:
    """Pull an error code and text out of the shapes providers use.

    RFC 6749: ``{"error": "invalid_grant", "error_description": "..."}``;
    the style many HTTP APIs use: ``{"error": {"code"|"type": ..., "message": ...}}``.
    """
    if not isinstance(body, dict):
        return None, None
    error = body.get("error")
    if isinstance(error, str):
        desc = body.get("error_description") or body.get("message")
        return error, desc if isinstance(desc, str) else None
    if isinstance(error, dict):
        code = error.get("code") or error.get("type")
        message = error.get("message")
        return (code if isinstance(code, str) else None), (message if isinstance(message, str) else None)
    return None, None


class HttpClient:
    """A thin wrapper over one ``requests.Session``."""

    def __init__(self, *, timeout: tuple[float, float] = DEFAULT_TIMEOUT, user_agent: str = USER_AGENT) -> None:
        self.timeout = timeout
        self.user_agent = user_agent
        self._session: Any = None

    def __repr__(self) -> str:
        return f"HttpClient(timeout={self.timeout!r})"

    @property
    def session(self) -> Any:
        if self._session is None:
            import requests

            self._session = requests.Session()
            self._session.headers["User-Agent"] = self.user_agent
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def request(
        self,
        method: str,
        url: str,
        *,
        form: Mapping[str, str] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        what: str = "request",
        retries: int = 0,
        idempotent: bool = True,
    ) -> Any:
        """Send a request and return the decoded JSON answer (or ``{}`` for an empty body).

        ``what`` names the step for messages ("token exchange", "model list").
        ``retries`` retries 5xx answers and connection failures with exponential
        backoff; 4xx answers are final. ``idempotent=False`` (a refresh: the server may
        rotate the refresh token the moment it processes the request) retries only what
        shows the request was not processed: a connection that could not be made, and
        502/503/504 from a gateway. Never a read timeout or a 500.
        """
        import requests

        host = urlsplit(url).netloc or url
        attempt = 0
        while True:
            try:
                response = self.session.request(
                    method, url, data=form, json=json, headers=dict(headers or {}), params=params,
                    timeout=self.timeout, allow_redirects=False,
                )
            except requests.exceptions.RequestException as exc:
                unsent = isinstance(exc, (requests.exceptions.ConnectTimeout, requests.exceptions.ProxyError)) or (
                    isinstance(exc, requests.exceptions.ConnectionError)
                    and not isinstance(exc, requests.exceptions.ReadTimeout)
                    and "Read timed out" not in str(exc) and "Connection aborted" not in str(exc))
                if attempt < retries and (idempotent or unsent):
                    attempt += 1
                    time.sleep(min(0.5 * 2 ** (attempt - 1), 8.0))
                    continue
                raise NetworkError(
                    f"Could not reach {host} for the {what} ({_describe_network_error(exc)}). "
                    "Check your network or proxy settings and try again."
                ) from None
            retryable = response.status_code >= 500 if idempotent else response.status_code in (502, 503, 504)
            if retryable and attempt < retries:
                attempt += 1
                time.sleep(min(0.5 * 2 ** (attempt - 1), 8.0))
                continue
            return self._decode(response, host, what)

    def _decode(self, response: Any, host: str, what: str) -> Any:
        try:
            body = response.json() if response.content else {}
        except ValueError:
            body = None
        if 200 <= response.status_code < 300:
            if body is None:
                raise IdPError(
                    f"{host} answered the {what} with something that is not JSON (HTTP {response.status_code}).",
                    status=response.status_code,
                )
            return body
        code, description = error_code_and_description(body)
        detail = f"HTTP {response.status_code}"
        if code:
            detail += f", {code}"
        if description:
            detail += f"{': ' if code else ', '}{scrub(description, 200)}"
        raise IdPError(
            f"{host} refused the {what} ({detail}).",
            status=response.status_code,
            code=code,
        )

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.request("POST", url, **kwargs)


def _describe_network_error(exc: Exception) -> str:
    import requests

    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS certificate check failed; set REQUESTS_CA_BUNDLE if a proxy re-signs traffic"
    if isinstance(exc, requests.exceptions.ProxyError):
        return "the proxy refused the connection"
    if isinstance(exc, requests.exceptions.Timeout):
        return "timed out"
    if isinstance(exc, requests.exceptions.ConnectionError):
        text = str(exc)
        if "Name or service not known" in text or "getaddrinfo" in text or "nodename" in text:
            return "host name could not be resolved"
        if "Connection refused" in text or "Errno 111" in text:
            return "connection refused"
        return "connection failed"
    return type(exc).__name__
