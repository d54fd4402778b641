"""``oauth-hub serve``: a local endpoint that forwards to a provider's API with fresh credentials.

Most agent tools can send one static key to one base URL and nothing else. A sign-in
without an API key (a subscription) needs more: a rotating access token, refreshed
every few hours, and headers the provider insists on. ``serve`` does that part for them:

    client ──► http://127.0.0.1:4141/<provider>/<rest> ──► <upstream base>/<rest>

Each request gets the provider's own authentication headers (its ``request_headers``
hook, exactly what :class:`~oauth_core.auth.OAuthHubAuth` sends), built from credentials
that :func:`~oauth_core.tokens.get_credentials` refreshes when due, under the same
cross-process lock every other tool uses. If the upstream still answers 401, the
sign-in is refreshed once (a refresh another process just made is reused) and the
request is sent once more. Responses are relayed as they arrive, one upstream read at
a time, so server-sent events reach the client without waiting for the end.

It is pass-through, not translation: each route speaks whatever API its upstream base
speaks, and a client must use that dialect (see :func:`upstream_base`).

Who may use it. The server binds a loopback address only. Clients present a local key
(``Authorization: Bearer <key>`` or ``x-api-key: <key>``); it is compared in constant
time, stripped, and never forwarded. A request whose ``Host`` is not this server's own
loopback address and port is refused, which stops web pages that rebind a DNS name to
127.0.0.1. The key is random per run by default; ``stable_key()`` keeps one in the home
(mode 0600, beside the tokens it protects) so exported tool configs keep working across
restarts.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from .credentials import Credentials
from .errors import NotLoggedIn, OAuthHubError, ProviderNotFound, SignInEnded
from .store import Store, read_private, write_private

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4141  # fixed by default, so the base URLs written by `oauth-hub export` stay valid
KEY_ENV = "OAUTH_HUB_SERVE_KEY"  # the variable exported configs read the local key from
KEY_FILE = "serve_key"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
MAX_BODY = 64 << 20  # a request body larger than this is refused (413)
READ_SIZE = 64 << 10
UPSTREAM_TIMEOUT = (10.0, 600.0)  # connect, and the longest silence allowed mid-response

_HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te",
    "trailer", "trailers", "transfer-encoding", "upgrade",
})
# Never forwarded upstream: framing (requests sets it), the local key, cookies and the
# client's Accept-Encoding (we ask for identity, so bytes can be relayed as they come).
_DROP_REQUEST = _HOP_BY_HOP | {"host", "content-length", "authorization", "x-api-key", "accept-encoding", "cookie",
                               "expect"}
# Never relayed back: framing (we choose our own), our own Server/Date, upstream cookies.
_DROP_RESPONSE = _HOP_BY_HOP | {"content-length", "content-encoding", "set-cookie", "server", "date"}


# -- the local key ------------------------------------------------------------------


def new_key() -> str:
    """A fresh random local key (256 bits)."""
    return secrets.token_urlsafe(32)


def stable_key(home: str | Path | None = None) -> str:
    """The local key kept in ``<home>/serve_key``, created (mode 0600) on first use.

    A per-run key is safest but changes at every start, so configs that name it go
    stale; this one lives next to the refresh tokens, so anyone who can read it could
    already read those.
    """
    store = Store(home)
    path = store.home / KEY_FILE
    raw = read_private(path)  # never through a symbolic link
    key = raw.decode("utf-8", "replace").strip() if raw is not None else ""
    if len(key) >= 32:
        return key
    store.ensure()
    key = new_key()
    write_private(path, (key + "\n").encode("utf-8"))
    return key


def local_base_url(port: int = DEFAULT_PORT, host: str = DEFAULT_HOST) -> str:
    """``http://127.0.0.1:PORT``: what tools are pointed at."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


# -- where a provider's requests go --------------------------------------------------


def upstream_base(provider: Any, credentials: Credentials, store: Store | None = None) -> str:
    """The base URL that API calls made with ``credentials`` go to, without a trailing slash.

    The provider's ``api_base(settings, credentials)`` hook decides (ChatGPT: the
    platform API with an API key, the ChatGPT backend with a subscription); without it,
    the ``api_base`` setting. ``/<provider>/<rest>`` is forwarded to ``<base>/<rest>``,
    and that route speaks the API the base speaks.
    """
    base = provider.call("api_base", required=False, credentials=credentials) or provider.settings.get("api_base")
    if not isinstance(base, str) or not base:
        raise OAuthHubError(f"Provider {provider.name!r} declares no api_base setting, so there is nowhere to "
                            f"send its requests. Set one with `oauth-hub config set {provider.name}.api_base URL`.")
    return base.rstrip("/")


# -- the server -----------------------------------------------------------------------


class ServeError(OAuthHubError):
    """The local endpoint cannot start (port taken, not a loopback address)."""


class ProxyServer(ThreadingHTTPServer):
    """A threaded HTTP server holding what every request needs: key, hosts, providers, a session."""

    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], *, key: str, home: str | Path | None,
                 log: Callable[[str], None] | None) -> None:
        self.key = key.encode("utf-8")
        self.store = Store(home)
        self.home = self.store.home
        self.log = log
        self._providers: dict[str, Any] = {}
        self._bases: dict[tuple[str, bool], tuple[Any, str]] = {}
        self._lock = threading.Lock()
        self._session: Any = None
        self.address_family = _family(address[0])
        super().__init__(address, _Handler)
        port = self.server_address[1]
        self.allowed_hosts = {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def base_url(self) -> str:
        return local_base_url(self.port, str(self.server_address[0]))

    @property
    def session(self) -> Any:
        """One ``requests`` session for all threads: pooled keep-alive connections, no cookie jar."""
        with self._lock:
            if self._session is None:
                from http.cookiejar import DefaultCookiePolicy

                import requests
                from requests.adapters import HTTPAdapter

                from .http import USER_AGENT

                session = requests.Session()
                session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
                adapter = HTTPAdapter(pool_connections=8, pool_maxsize=64)
                session.mount("https://", adapter)
                session.mount("http://", adapter)
                session.headers["User-Agent"] = USER_AGENT
                self._session = session
            return self._session

    def provider(self, name: str) -> Any:
        """The loaded provider (settings read once per run: restart serve after `config set`)."""
        with self._lock:
            loaded = self._providers.get(name)
        if loaded is None:
            from .provider import Provider
            from .tokens import known_name

            known_name(name, self.store)
            loaded = Provider.load(name, self.store)
            with self._lock:
                self._providers[name] = loaded
        return loaded

    def base_for(self, provider: Any, credentials: Credentials) -> str:
        """:func:`upstream_base`, cached per provider and sign-in mode (the models file is read once)."""
        mode = (provider.name, bool(credentials.api_key))
        signature = _signature(self.store.models_path(provider.name))
        with self._lock:
            cached = self._bases.get(mode)
        if cached is not None and cached[0] == signature:
            return cached[1]
        base = upstream_base(provider, credentials, self.store)
        with self._lock:
            self._bases[mode] = (signature, base)
        return base

    def routes(self) -> list[dict[str, Any]]:
        """One row per signed-in provider: its local base URL and where it forwards to."""
        from .tokens import load_credentials

        rows = []
        for name in self.store.signed_in_providers():
            row: dict[str, Any] = {"provider": name, "url": f"{self.base_url}/{name}", "upstream": None,
                                   "mode": None, "error": None}
            try:
                credentials = load_credentials(name, self.store)
                if credentials is None:
                    continue
                row["mode"] = "api_key" if credentials.api_key else "access_token"
                row["upstream"] = self.base_for(self.provider(name), credentials)
            except OAuthHubError as exc:
                row["error"] = str(exc)
            rows.append(row)
        return rows

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up is normal for a proxy; anything else gets one line, no traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)) or error is None:
            return
        if self.log is not None:
            self.log(f"error: {type(error).__name__}: {error}")

    def server_close(self) -> None:
        super().server_close()
        with self._lock:
            if self._session is not None:
                self._session.close()
                self._session = None


def _family(host: str) -> Any:
    import socket

    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def make_server(*, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, key: str | None = None,
                home: str | Path | None = None, log: Callable[[str], None] | None = None) -> ProxyServer:
    """Bind the local endpoint (``port=0``: any free port) without serving yet.

    Only loopback addresses are accepted: this endpoint hands out a live sign-in.
    """
    if host not in LOOPBACK:
        raise ServeError(f"oauth-hub serve listens on loopback only (127.0.0.1, localhost or ::1), not {host!r}.")
    if host == "localhost":
        host = "127.0.0.1"
    try:
        return ProxyServer((host, port), key=key or new_key(), home=home, log=log)
    except OSError as exc:
        from .portinfo import describe_holder

        holder = describe_holder(port) if port else None
        raise ServeError(
            f"Cannot listen on {local_base_url(port, host)} ({exc.strerror or exc}"
            f"{f'; {holder}' if holder else ''}). Stop the other server, or pass --port N "
            f"(and export with --serve-port N)."
        ) from None


def start_in_thread(server: ProxyServer) -> threading.Thread:
    """Serve on a daemon thread (tests, benchmarks, tools embedding oauth_core)."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name=f"oauth-hub-serve:{server.port}", daemon=True)
    thread.start()
    return thread


# -- one request ------------------------------------------------------------------------


class _Reject(Exception):
    """Answer with an error instead of forwarding."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # every relayed piece is flushed at once; Nagle would hold small ones back
    timeout = 300  # seconds a client may sit idle between requests (a stuck client cannot hold a thread forever)
    server_version = "oauth-hub-serve"
    sys_version = ""
    server: ProxyServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Silent: request lines can carry query strings; see ``_log`` for what is logged."""

    def do_GET(self) -> None:
        self._proxy()

    def do_POST(self) -> None:
        self._proxy()

    def do_PUT(self) -> None:
        self._proxy()

    def do_PATCH(self) -> None:
        self._proxy()

    def do_DELETE(self) -> None:
        self._proxy()

    def do_HEAD(self) -> None:
        self._proxy()

    def do_OPTIONS(self) -> None:
        self._proxy()

    # -- the steps -----------------------------------------------------------------

    def _proxy(self) -> None:
        started = time.perf_counter()
        status = 0
        try:
            self._check_host()
            self._check_key()
            name, rest = self._route()
            provider = self._provider(name)
            body = self._read_body()
            status = self._forward(provider, rest, body)
        except _Reject as reject:
            status = reject.status
            self._reply_error(reject.status, reject.code, reject.message)
        except Exception as exc:  # a bug must not kill the thread silently or leak a traceback to the client
            status = 500
            self._reply_error(500, "internal_error", f"oauth-hub serve failed: {type(exc).__name__}.")
        finally:
            self._log(status, started)

    def _check_host(self) -> None:
        host = (self.headers.get("Host") or "").strip().lower()
        if host not in self.server.allowed_hosts:
            raise _Reject(400, "bad_host", f"This endpoint answers only to Host {self.server.base_url[7:]} "
                                           "(or localhost with the same port).")

    def _check_key(self) -> None:
        presented = []
        authorization = self.headers.get("Authorization") or ""
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            presented.append(value.strip())
        if self.headers.get("x-api-key"):
            presented.append(self.headers["x-api-key"].strip())
        if not any(hmac.compare_digest(p.encode("utf-8"), self.server.key) for p in presented):
            raise _Reject(401, "invalid_local_key",
                          "Missing or wrong local key: send the key `oauth-hub serve` printed, as "
                          "'Authorization: Bearer <key>' or 'x-api-key: <key>'.")

    def _route(self) -> tuple[str, str]:
        if not self.path.startswith("/"):
            raise _Reject(400, "bad_path", "Send requests as /<provider>/<path>.")
        name, _, rest = self.path[1:].partition("/")
        if not name:
            raise _Reject(404, "no_provider", "Send requests as /<provider>/<path>, e.g. a provider you signed in to.")
        path = rest.partition("?")[0]
        if any(part in (".", "..") for part in unquote(path).replace("\\", "/").split("/")):
            raise _Reject(400, "bad_path", "Paths with '.' or '..' segments are not forwarded.")
        return name, rest

    def _provider(self, name: str) -> Any:
        try:
            return self.server.provider(name)
        except ProviderNotFound as exc:
            raise _Reject(404, "unknown_provider", str(exc)) from None
        except OAuthHubError as exc:
            raise _Reject(502, "provider_error", str(exc)) from None

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        raw = self.headers.get("Content-Length")
        if raw is None:
            return b""
        try:
            length = int(raw)
        except ValueError:
            length = -1
        if length < 0:
            raise _Reject(400, "bad_length", "Invalid Content-Length.")
        if length > MAX_BODY:
            raise _Reject(413, "too_large", f"Request bodies are limited to {MAX_BODY >> 20} MiB.")
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _Reject(400, "bad_chunk", "Malformed chunked request body.") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            total += size
            if total > MAX_BODY:
                raise _Reject(413, "too_large", f"Request bodies are limited to {MAX_BODY >> 20} MiB.")
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _credentials(self, name: str, stale: str | None = None) -> Credentials:
        from .tokens import get_credentials, refresh_credentials

        try:
            if stale is None:
                return get_credentials(name, home=self.server.home)
            return refresh_credentials(name, home=self.server.home, stale_token=stale)
        except (NotLoggedIn, SignInEnded) as exc:
            raise _Reject(503, "not_signed_in", str(exc)) from None
        except OAuthHubError as exc:
            raise _Reject(502, "refresh_failed", str(exc)) from None

    def _upstream_headers(self, provider: Any, credentials: Credentials) -> dict[str, str]:
        auth = provider.auth_headers(credentials, bool(credentials.api_key))
        listed = {t.strip().lower() for t in (self.headers.get("Connection") or "").split(",")}
        replaced = {k.lower() for k in auth}
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            lower = name.lower()
            if lower in _DROP_REQUEST or lower in listed or lower in replaced:
                continue
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        headers.update(auth)
        headers["Accept-Encoding"] = "identity"
        return headers

    def _send(self, provider: Any, credentials: Credentials, rest: str, body: bytes) -> Any:
        import requests

        url = f"{self.server.base_for(provider, credentials)}/{rest}"
        try:
            return self.server.session.request(
                self.command, url, data=body if body or self.command in ("POST", "PUT", "PATCH") else None,
                headers=self._upstream_headers(provider, credentials), stream=True, allow_redirects=False,
                timeout=UPSTREAM_TIMEOUT,
            )
        except requests.exceptions.RequestException as exc:
            from .http import _describe_network_error

            raise _Reject(502, "upstream_unreachable",
                          f"Could not reach {provider.name}'s API ({_describe_network_error(exc)}).") from None
        except OAuthHubError as exc:
            raise _Reject(502, "provider_error", str(exc)) from None

    def _forward(self, provider: Any, rest: str, body: bytes) -> int:
        credentials = self._credentials(provider.name)
        response = self._send(provider, credentials, rest, body)
        if response.status_code == 401:
            # The token was revoked or expired early: refresh once (another process's
            # fresh refresh is reused) and try once more. A second 401 is relayed as is.
            _discard(response)
            credentials = self._credentials(provider.name, stale=credentials.access_token or "")
            response = self._send(provider, credentials, rest, body)
        self._relay(response)
        return int(response.status_code)

    def _relay(self, response: Any) -> None:
        """Status and headers at once, then the body one upstream read at a time, flushed."""
        status = int(response.status_code)
        no_body = self.command == "HEAD" or status in (204, 304) or status < 200
        length = response.headers.get("Content-Length")
        plain = length is not None and not response.headers.get("Content-Encoding")
        chunked = not no_body and not plain and self.request_version == "HTTP/1.1"
        finished = False
        try:
            self.send_response(status, response.reason)
            for name, value in response.raw.headers.items():
                if name.lower() not in _DROP_RESPONSE:
                    self.send_header(name, value)
            if no_body:
                if length is not None and self.command == "HEAD":
                    self.send_header("Content-Length", length)
            elif plain:
                self.send_header("Content-Length", length)
            elif chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.flush()
            if not no_body:
                for data in _body(response):
                    self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data) if chunked else data)
                    self.wfile.flush()
                if chunked:
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
            finished = True
        except OSError:
            self.close_connection = True  # the client went away: drop the upstream too
        except Exception:  # the upstream broke mid-body: end the connection so the client sees it
            self.close_connection = True
        finally:
            if finished and not no_body:
                response.raw.release_conn()  # read to the end: the upstream connection can be reused
            else:
                _discard(response)

    def _reply_error(self, status: int, code: str, message: str) -> None:
        body = json.dumps({"type": "error", "error": {"type": code, "code": code, "message": message}}).encode()
        self.close_connection = True  # the request body may still be unread
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if status == 401:
                self.send_header("WWW-Authenticate", 'Bearer realm="oauth-hub serve"')
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except OSError:
            pass

    def _log(self, status: int, started: float) -> None:
        if self.server.log is None:
            return
        path = self.path.partition("?")[0] if self.path.startswith("/") else "-"
        self.server.log(f"{self.command} {path} -> {status or '-'} ({(time.perf_counter() - started) * 1000:.0f} ms)")


def _discard(response: Any) -> None:
    """Let go of an upstream response: drain a small body to keep the connection, else drop it."""
    try:
        length = int(response.headers.get("Content-Length") or -1)
    except ValueError:
        length = -1
    if 0 <= length <= READ_SIZE:
        try:
            response.content  # noqa: B018 - reading it lets requests reuse the connection
        except Exception:  # noqa: S110 - the connection is closed below either way
            pass
    response.close()


def _body(response: Any) -> Iterator[bytes]:
    """The response body as the upstream sends it: one read (or one chunk) at a time, never all at once."""
    raw = response.raw
    while True:
        data = raw.read1(READ_SIZE, decode_content=True)
        if not data:
            return
        yield data


def run(server: ProxyServer) -> None:
    """Serve until Ctrl+C, then close the socket."""
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()

