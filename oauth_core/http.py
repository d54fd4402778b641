"""One ``requests`` session for every call to a provider, with errors people can read.

Providers receive an :class:`HttpClient` in their hooks instead of making sessions of
their own, so timeouts, the User-Agent, proxies and CA bundles (``requests`` honours
``HTTPS_PROXY``, ``REQUESTS_CA_BUNDLE`` …) behave the same for all of them.

Errors become :class:`~oauth_core.errors.IdPError` (the server answered with an error;
its OAuth ``error`` code is kept in ``.code``), :class:`~oauth_core.errors.BadAnswer`
(it answered "OK" with something unusable) or :class:`~oauth_core.errors.NetworkError`
(nobody answered in time). Messages name the host and the error code, never a request
body. ``requests`` is imported on first use, not at start-up.

Every call has an overall deadline (connect, send and the *whole* answer), not only a
timeout per socket read, which a server dripping one byte a second never trips; and an
answer larger than :data:`MAX_ANSWER` is refused as it arrives (by its Content-Length,
or once that many bytes came), so a hostile or broken server can neither hold a refresh
(and the sign-in's lock) for ten minutes nor fill memory and the token file.
A successful answer must be JSON in UTF-8, as RFC 8259 requires between systems:
bytes that are not are refused rather than decoded into garbage tokens.
"""

from __future__ import annotations

import contextlib
import json as jsonlib
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from .errors import BadAnswer, IdPError, NetworkError, scrub

DEFAULT_TIMEOUT = (10.0, 60.0)  # (connect, read) seconds, for each socket operation
DEFAULT_DEADLINE = 30.0  # seconds for one whole call: connect, send, and the complete answer
MAX_ANSWER = 1 << 20  # bytes: far above any real token, JWKS or model-list answer
USER_AGENT = "oauth-hub/0.1"


def _back_off(attempt: int) -> None:
    """Wait before retry ``attempt`` (1, 2, …): 0.5 s, doubling, at most 8 s."""
    time.sleep(min(0.5 * 2 ** (attempt - 1), 8.0))


class _DeadlinePassed(Exception):
    """The call did not finish within its deadline."""


class _TooLarge(Exception):
    """The answer is larger than the cap."""


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
    """A thin wrapper over one ``requests.Session``: deadlines, a size cap, readable errors.

    ``timeout`` bounds each socket operation (connect, read), ``deadline`` the whole
    call, ``max_answer`` the answer's size in bytes (after any content decoding).
    """

    def __init__(
        self, *, timeout: tuple[float, float] = DEFAULT_TIMEOUT, user_agent: str = USER_AGENT,
        deadline: float = DEFAULT_DEADLINE, max_answer: int = MAX_ANSWER,
    ) -> None:
        self.timeout = timeout
        self.user_agent = user_agent
        self.deadline = deadline
        self.max_answer = max_answer
        #: Called on the request's own thread with the raw body of each 2xx answer the moment
        #: it is complete, before this client returns it. The engine sets it around a refresh
        #: to put the answer on disk before anything else can happen (see oauth_core.tokens).
        self.keep_answer: Callable[[bytes], None] | None = None
        self._session: Any = None

    def __repr__(self) -> str:
        return f"HttpClient(timeout={self.timeout!r}, deadline={self.deadline!r})"

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
        deadline: float | None = None,
        max_bytes: int | None = None,
    ) -> Any:
        """Send a request and return the decoded JSON answer (or ``{}`` for an empty body).

        ``what`` names the step for messages ("token exchange", "model list").
        ``retries`` retries 5xx answers and connection failures with exponential
        backoff; 4xx answers are final. ``idempotent=False`` (a refresh: the server may
        rotate the refresh token the moment it processes the request) retries only what
        shows the request was not processed: a connection that could not be made, and
        502/503/504 from a gateway. Never a read timeout, a passed deadline or a 500.
        ``deadline`` and ``max_bytes`` override the client's for this call.
        """
        import requests

        host = urlsplit(url).netloc or url
        limit = self.max_answer if max_bytes is None else max_bytes
        seconds = self.deadline if deadline is None else deadline
        attempt = 0
        while True:
            try:
                status, body = self._exchange(
                    method, url, seconds, limit,
                    data=form, json=json, headers=dict(headers or {}), params=params,
                )
            except _TooLarge:
                raise BadAnswer(
                    f"{host} answered the {what} with more than {_size(limit)}, far more than any real answer; "
                    "it was refused and nothing was changed. Try again later.", status=None,
                ) from None
            except _DeadlinePassed:
                if attempt < retries and idempotent:
                    attempt += 1
                    _back_off(attempt)
                    continue
                raise NetworkError(
                    f"{host} did not answer the {what} completely within {seconds:g} seconds. "
                    "Check your network or proxy settings and try again."
                ) from None
            except requests.exceptions.RequestException as exc:
                unsent = isinstance(exc, (requests.exceptions.ConnectTimeout, requests.exceptions.ProxyError)) or (
                    isinstance(exc, requests.exceptions.ConnectionError)
                    and not isinstance(exc, requests.exceptions.ReadTimeout)
                    and "Read timed out" not in str(exc) and "Connection aborted" not in str(exc))
                if attempt < retries and (idempotent or unsent):
                    attempt += 1
                    _back_off(attempt)
                    continue
                raise NetworkError(
                    f"Could not reach {host} for the {what} ({_describe_network_error(exc)}). "
                    "Check your network or proxy settings and try again."
                ) from None
            retryable = status >= 500 if idempotent else status in (502, 503, 504)
            if retryable and attempt < retries:
                attempt += 1
                _back_off(attempt)
                continue
            return self._decode(status, body, host, what)

    def _exchange(self, method: str, url: str, deadline: float, limit: int, **kwargs: Any) -> tuple[int, bytes]:
        """Status and body of one request, within ``deadline`` seconds and ``limit`` bytes.

        The request runs on a worker thread that this one waits for: a socket timeout
        bounds each read, but only a clock outside the reads can bound them all (and
        the time to connect, and headers dripped a byte at a time). A call that misses
        its deadline is abandoned: its connection is shut down where it can be reached,
        and its session is never used again.
        """
        session = self.session
        connect, read = self.timeout
        box: dict[str, Any] = {}
        done = threading.Event()

        def work() -> None:
            try:
                response = session.request(method, url, stream=True, allow_redirects=False,
                                           timeout=(min(connect, deadline), min(read, deadline)), **kwargs)
                box["response"] = response
                status, body = int(response.status_code), _read_capped(response, limit)
                keep = self.keep_answer
                if keep is not None and 200 <= status < 300:
                    with contextlib.suppress(Exception):  # the engine keeps the answer again if this failed
                        keep(body)
                box["result"] = (status, body)
            except BaseException as exc:  # handed to the waiting thread
                box["error"] = exc
            finally:
                done.set()

        threading.Thread(target=work, name="oauth-hub-http", daemon=True).start()
        if not done.wait(max(deadline, 0.0)):
            self._session = None  # the abandoned call keeps the old one; the next call gets a new one
            _shut(box.get("response"))
            raise _DeadlinePassed
        if "error" in box:
            raise box["error"]
        return box["result"]

    def _decode(self, status: int, body: bytes, host: str, what: str) -> Any:
        if 200 <= status < 300:
            if not body:
                return {}
            try:
                return jsonlib.loads(body.decode("utf-8"))
            except UnicodeDecodeError:
                problem = "text that is not UTF-8"
            except ValueError:
                problem = "something that is not JSON"
            except RecursionError:
                problem = "JSON nested too deeply to be an answer"
            raise BadAnswer(f"{host} answered the {what} with {problem} (HTTP {status}); nothing was changed. "
                            "Try again later.", status=status)
        try:
            parsed = jsonlib.loads(body.decode("utf-8", "replace")) if body else None
        except (ValueError, RecursionError):
            parsed = None
        code, description = error_code_and_description(parsed)
        detail = f"HTTP {status}"
        if code:
            detail += f", {code}"
        if description:
            detail += f"{': ' if code else ', '}{scrub(description, 200)}"
        raise IdPError(f"{host} refused the {what} ({detail}).", status=status, code=code)

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.request("POST", url, **kwargs)


def _read_capped(response: Any, limit: int) -> bytes:
    """The whole body, refused (:class:`_TooLarge`) as soon as it is known to exceed ``limit``."""
    length = response.headers.get("Content-Length")
    if length is not None and length.strip().isdigit() and int(length) > limit:
        response.close()
        raise _TooLarge
    chunks = []
    total = 0
    for chunk in response.iter_content(1 << 16):  # decoded: a gzip bomb is measured by what it unpacks to
        total += len(chunk)
        if total > limit:
            response.close()
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _shut(response: Any) -> None:
    """Wake a thread blocked reading ``response``: shut its socket down, then close it."""
    if response is None:
        return
    import socket

    sock = getattr(getattr(getattr(response, "raw", None), "connection", None), "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(Exception):
        response.close()


def _size(limit: int) -> str:
    return f"{limit >> 20} MiB" if limit >= 1 << 20 and not limit % (1 << 20) else f"{limit} bytes"


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
