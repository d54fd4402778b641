"""The HTTP side of ``oauth-hub serve``: aiohttp on one event loop, loopback only, one local key.

Why asyncio (aiohttp) rather than a thread per connection (``benchmarks/bench_gateway.py``
measures both in one run): an idle or half-open connection costs a few kilobytes
instead of a thread, so hundreds of them cannot exhaust the process; a connection that
has not sent a whole request head within :data:`HEADER_TIMEOUT` is closed by the
loop's timer; when a client hangs up mid-answer its handler is cancelled at once,
which closes the upstream request too (a thread blocked reading a silent upstream
notices only at the upstream's next byte); and the upstream connection pool is shared
without locks. aiohttp's C parser (llhttp) refuses ambiguous framing (differing
``Content-Length`` headers, ``Content-Length`` with ``Transfer-Encoding``) with 400.

Routes: ``/v1/…`` is the translating gateway (:mod:`oauth_core.gateway.exchange`);
``/<provider>/<rest>`` forwards to the provider's upstream base as before (with its
default account; ``/<provider>@<account>/<rest>`` with another), with the provider's
``gateway_request`` rules applied when ``rest`` is one of its dialect paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from aiohttp import ClientSession, ClientTimeout, DummyCookieJar, TCPConnector, client_exceptions, web

from ..credentials import Credentials
from ..errors import NotLoggedIn, OAuthHubError, ProviderNotFound, SignInEnded
from ..store import ACCOUNT_SEP, Store, check_account, record_name
from . import dialects
from .backend import BackendRequest
from .catalog import Catalog
from .exchange import Exchange, GatewayError, error_response, json_response, parse_body
from .upstream import local_base_url, upstream_base
from .usage import UsageRecorder, clean_windows

#: Seconds a connection may take to send a whole request head (and may sit idle between requests).
HEADER_TIMEOUT = 10.0
MAX_BODY = 64 << 20
UPSTREAM_CONNECT_TIMEOUT = 10.0
UPSTREAM_READ_TIMEOUT = 600.0  # the longest silence allowed mid-answer (a model may think for minutes)

_HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te",
    "trailer", "trailers", "transfer-encoding", "upgrade",
})
# Never forwarded upstream: framing, the local key, cookies and the client's Accept-Encoding.
_DROP_REQUEST = _HOP_BY_HOP | {"host", "content-length", "authorization", "x-api-key", "accept-encoding", "cookie",
                               "expect"}
# Never relayed back: framing (we choose our own), our own Server/Date, upstream cookies.
_DROP_RESPONSE = _HOP_BY_HOP | {"content-length", "content-encoding", "set-cookie", "server", "date"}
_VERSION_HEADER = "anthropic-version"  # the Messages API's protocol marker: its clients always send it


def _local_error(status: int, code: str, message: str) -> web.Response:
    """An error of serve itself, readable by OpenAI and Anthropic clients alike."""
    body = {"type": "error", "error": {"type": code, "code": code, "message": message}}
    headers = {"WWW-Authenticate": 'Bearer realm="oauth-hub serve"'} if status == 401 else None
    return json_response(status, body, headers)


class Gateway:
    """Everything a request needs: the key, the store, loaded providers, the upstream session."""

    def __init__(self, *, key: str, home: str | Path | None, log: Callable[[str], None] | None,
                 port: int) -> None:
        self.key = key.encode("utf-8")
        self.store = Store(home)
        self.home = self.store.home
        self.log = log
        self.catalog = Catalog(self.store)
        self.usage = UsageRecorder(self.store)
        self.allowed_hosts = {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}
        self._providers: dict[str, Any] = {}
        self._session: ClientSession | None = None
        self._lock = threading.Lock()

    # -- shared resources ---------------------------------------------------------------

    async def start(self) -> None:
        cafile = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
        context = ssl.create_default_context(cafile=cafile if cafile and os.path.isfile(cafile) else None)
        # Proxies from the environment (HTTPS_PROXY, NO_PROXY…) are looked up here, once per
        # host: aiohttp's trust_env would do it (and a netrc lookup) in a thread for every request.
        self._proxies = urllib.request.getproxies_environment()
        self._proxy_for: dict[str, str | None] = {}
        self._session = ClientSession(
            connector=TCPConnector(limit=0, ssl=context, keepalive_timeout=30),
            timeout=ClientTimeout(total=None, connect=UPSTREAM_CONNECT_TIMEOUT, sock_read=UPSTREAM_READ_TIMEOUT),
            auto_decompress=True, cookie_jar=DummyCookieJar(),  # one session serves many callers: no cookies
        )

    def proxy(self, url: str) -> str | None:
        """The proxy for ``url`` from the environment, as requests and curl read it."""
        scheme, _, rest = url.partition("://")
        host = rest.split("/", 1)[0]
        key = f"{scheme}://{host}"
        if key not in self._proxy_for:
            bypass = urllib.request.proxy_bypass_environment(host.rsplit(":", 1)[0], self._proxies)
            self._proxy_for[key] = None if bypass else self._proxies.get(scheme)
        return self._proxy_for[key]

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def provider(self, name: str) -> Any:
        """The loaded provider (settings read once per run: restart serve after `config set`)."""
        with self._lock:
            loaded = self._providers.get(name)
        if loaded is None:
            from ..provider import Provider
            from ..tokens import known_name

            known_name(name, self.store)
            loaded = Provider.load(name, self.store)
            with self._lock:
                self._providers[name] = loaded
        return loaded

    def provider_or_error(self, name: str) -> Any:
        try:
            return self.provider(name)
        except ProviderNotFound as exc:
            raise GatewayError(404, str(exc)) from None
        except OAuthHubError as exc:
            raise GatewayError(502, str(exc)) from None

    async def credentials(self, name: str, stale: Credentials | None = None,
                          account: str | None = None) -> Credentials:
        """Valid credentials of ``name``'s ``account`` (default: its default account), refreshed (off the
        loop) when due.

        After a 401 answered ``stale``: a new API key when that is what was sent, else
        refreshed tokens (another process's fresh refresh is reused), for the account
        that was sent.
        """
        from ..tokens import get_credentials, needs_refresh, refresh_credentials, renew_api_key

        try:
            if stale is None:
                account = account or self.store.default_account(name)
                current = get_credentials(name, home=self.home, refresh=False, account=account)
                if not needs_refresh(current):
                    return current
                return await asyncio.to_thread(get_credentials, name, home=self.home, account=account)
            if stale.api_key:
                return await asyncio.to_thread(renew_api_key, name, home=self.home, stale_key=stale.api_key,
                                               account=stale.account_name)
            return await asyncio.to_thread(refresh_credentials, name, home=self.home,
                                           stale_token=stale.access_token or "", account=stale.account_name)
        except (NotLoggedIn, SignInEnded) as exc:
            # 401, not 5xx: only a new `oauth-hub login` fixes it, and tools retry every 5xx.
            raise GatewayError(401, str(exc)) from None
        except OAuthHubError as exc:
            raise GatewayError(502, str(exc)) from None

    def base_for(self, provider: Any, credentials: Credentials) -> str:
        return upstream_base(provider, credentials, self.store)

    @staticmethod
    def client_headers(request: web.Request) -> dict[str, str]:
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            lower = name.lower()
            if lower in ("authorization", "x-api-key", "cookie"):
                continue
            headers[lower] = f"{headers[lower]}, {value}" if lower in headers else value
        return headers

    def event_hook(self, provider: Any, dialect: str) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
        if not provider.has("gateway_response_event"):
            return None

        def apply(event: dict[str, Any]) -> dict[str, Any]:
            changed = provider.call("gateway_response_event", required=False, dialect=dialect, event=event)
            return changed if isinstance(changed, dict) else event

        return apply

    @contextlib.asynccontextmanager
    async def upstream(self, provider: Any, credentials: Credentials, method: str, rest: str, body: bytes | None,
                       headers: dict[str, str], *, auth_last: bool = False) -> AsyncIterator[Any]:
        """Send one request upstream with fresh credentials; on 401 refresh once and send once more."""
        assert self._session is not None
        for attempt in (1, 2):
            url = f"{self.base_for(provider, credentials)}/{rest}"
            auth = provider.auth_headers(credentials, bool(credentials.api_key))
            sent = {**headers, **auth} if auth_last else {**auth, **headers}
            if body is not None and not any(k.lower() == "content-type" for k in sent):
                sent["Content-Type"] = "application/json"
            try:
                answer = await self._session.request(method, url, data=body, headers=sent, allow_redirects=False,
                                                     proxy=self.proxy(url))
            except (TimeoutError, client_exceptions.ClientError, OSError) as exc:
                raise GatewayError(502, f"Could not reach {provider.name}'s API ({type(exc).__name__}: "
                                        f"{_describe(exc)}).") from None
            try:
                self.record_usage(provider, credentials, answer.headers)
                if answer.status == 401 and attempt == 1:
                    # Revoked or expired early: refresh once (another process's fresh refresh
                    # is reused) and try once more. A second 401 goes to the client.
                    answer.release()
                    credentials = await self.credentials(provider.name, stale=credentials)
                    continue
                yield answer
                return
            finally:
                answer.release()

    def record_usage(self, provider: Any, credentials: Credentials, headers: Any) -> None:
        """Keep the usage windows the backend reported, per account (``<record>_usage.json``)."""
        if not provider.has("gateway_rate_limits"):
            return
        windows = clean_windows(provider.call("gateway_rate_limits", required=False, headers=headers))
        if not windows:
            return
        account = credentials.account.get("account_id") or credentials.account.get("email")
        account = account if isinstance(account, str) else None
        record = record_name(provider.name, credentials.account_name)
        if self.usage.changed(record, account, windows):
            asyncio.get_running_loop().run_in_executor(None, self.usage.write, record, account, windows)

    # -- the request pipeline ----------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        status = 0
        try:
            response = await self._dispatch(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = 499  # the client hung up; the upstream request was closed with the handler
            raise
        except GatewayError as exc:
            status = exc.status
            return _local_error(exc.status, "gateway_error", exc.message)
        except Exception as exc:  # a bug must not leak a traceback to the client
            status = 500
            if self.log is not None:
                self.log(f"error: {type(exc).__name__}: {exc}")
            return _local_error(500, "internal_error", f"oauth-hub serve failed: {type(exc).__name__}.")
        finally:
            if self.log is not None:
                path = request.path if request.path.startswith("/") else "-"
                self.log(f"{request.method} {path} -> {status or '-'} "
                         f"({(time.perf_counter() - started) * 1000:.0f} ms)")

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        host = (request.headers.get("Host") or "").strip().lower()
        if host not in self.allowed_hosts:
            port = next(iter(self.allowed_hosts)).rsplit(":", 1)[1]
            return _local_error(400, "bad_host", f"This endpoint answers only to Host 127.0.0.1:{port} "
                                                 "(or localhost with the same port).")
        if not self._key_ok(request):
            return _local_error(401, "invalid_local_key",
                                "Missing or wrong local key: send the key `oauth-hub serve` printed, as "
                                "'Authorization: Bearer <key>' or 'x-api-key: <key>'.")
        path = request.raw_path.partition("?")[0]
        if any(part in (".", "..") for part in unquote(path).replace("\\", "/").split("/")):
            return _local_error(400, "bad_path", "Paths with '.' or '..' segments are not forwarded.")
        if path == "/v1" or path.startswith("/v1/"):
            return await self._gateway(request, path[3:])
        name, _, rest = request.raw_path[1:].partition("/")
        if not name:
            return _local_error(404, "no_provider", "Send requests to /v1/… (the gateway) or /<provider>/<path>.")
        return await self._raw(request, name, rest)

    def _key_ok(self, request: web.Request) -> bool:
        presented = []
        scheme, _, value = (request.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            presented.append(value.strip())
        if request.headers.get("x-api-key"):
            presented.append(request.headers["x-api-key"].strip())
        return any(hmac.compare_digest(p.encode("utf-8"), self.key) for p in presented)

    # -- /v1 ------------------------------------------------------------------------------

    async def _gateway(self, request: web.Request, path: str) -> web.StreamResponse:
        if path.startswith("/v1/"):  # an Anthropic client given .../v1 as its base URL
            path = path[3:]
        messages_client = _VERSION_HEADER in request.headers
        dialect = dialects.CLIENT_PATHS.get(path)
        if dialect is not None:
            if request.method != "POST":
                return error_response(dialect, 405, f"Use POST for /v1{path}.", {"Allow": "POST"})
            return await Exchange(self, request, dialect, await request.read()).run()
        if path in ("/models", "/models/") or path.startswith("/models/"):
            if request.method != "GET":
                return error_response("chat", 405, "Use GET for /v1/models.", {"Allow": "GET"})
            return self._models(unquote(path[len("/models/"):]), messages_client)
        shape = "messages" if messages_client else "chat"
        return error_response(shape, 404, f"The gateway has no /v1{path}: it answers /v1/models, "
                                          "/v1/chat/completions, /v1/responses and /v1/messages.")

    def _models(self, wanted: str, messages_client: bool) -> web.Response:
        rows = []
        for provider, account in self.catalog.records():
            try:
                loaded = self.provider(provider)
            except OAuthHubError:
                continue
            if not loaded.has("gateway_backend"):
                continue
            default = account == self.catalog.default_account(provider)
            for route in self.catalog.models(provider, account):
                rows.append((route.name(default), provider, route))
        if wanted:
            rows = [row for row in rows if row[0] == wanted or row[2].model == wanted]
            if not rows:
                return error_response("messages" if messages_client else "chat", 404,
                                      f"No signed-in provider offers the model {wanted!r}.")
        if messages_client:
            data = [{"type": "model", "id": ident, "display_name": str(route.entry.get("display_name") or ident),
                     "created_at": "1970-01-01T00:00:00Z"} for ident, _, route in rows]
            if wanted:
                return json_response(200, data[0])
            return json_response(200, {"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
                                       "last_id": data[-1]["id"] if data else None})
        data = [{"id": ident, "object": "model", "created": 0, "owned_by": provider} for ident, provider, _ in rows]
        if wanted:
            return json_response(200, data[0])
        return json_response(200, {"object": "list", "data": data})

    # -- /<provider>/<rest> ---------------------------------------------------------------------

    async def _raw(self, request: web.Request, name: str, rest: str) -> web.StreamResponse:
        name, at, account_name = unquote(name).partition(ACCOUNT_SEP)
        account: str | None = account_name if at else None
        try:
            if account is not None:
                check_account(account)
            provider = self.provider(name)
        except ProviderNotFound as exc:
            return _local_error(404, "unknown_provider", str(exc))
        except OAuthHubError as exc:
            return _local_error(502 if account is None else 404, "provider_error", str(exc))
        body = await request.read()
        credentials = await self.credentials(name, account=account)
        headers = self._forwarded_headers(request)
        adapted = self._adapt_raw(provider, credentials, request, rest, body, headers)
        if adapted is not None:
            outgoing, wanted_stream = adapted
            body = json.dumps(outgoing.body).encode()
            headers.update(outgoing.headers)
        send_body = body if body or request.method in ("POST", "PUT", "PATCH") else None
        async with self.upstream(provider, credentials, request.method, rest, send_body, headers,
                                 auth_last=adapted is None) as answer:
            if (adapted is not None and answer.status < 300 and outgoing.streams and not wanted_stream
                    and "text/event-stream" in answer.headers.get("Content-Type", "")):
                return await self._collect_raw(request, answer, outgoing)
            return await self._relay(request, answer)

    def _forwarded_headers(self, request: web.Request) -> dict[str, str]:
        listed = {t.strip().lower() for t in (request.headers.get("Connection") or "").split(",")}
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            lower = name.lower()
            if lower in _DROP_REQUEST or lower in listed:
                continue
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        return headers

    def _adapt_raw(self, provider: Any, credentials: Credentials, request: web.Request, rest: str, body: bytes,
                   headers: dict[str, str]) -> tuple[BackendRequest, bool] | None:
        """A raw call to one of the backend's dialect paths gets the provider's rules too."""
        if request.method != "POST" or not provider.has("gateway_backend"):
            return None
        backend = provider.call("gateway_backend", required=False, credentials=credentials, model=None) or {}
        path = rest.partition("?")[0].strip("/")
        dialect = next((d for d, p in backend.items() if str(p).strip("/") == path), None)
        if dialect is None:
            return None
        try:
            parsed = parse_body(body)
        except GatewayError:
            return None  # not JSON: let the backend say what is wrong with it
        outgoing = BackendRequest(dialect=dialect, path=path, model=str(parsed.get("model") or ""), body=parsed,
                                  client_headers={k.lower(): v for k, v in headers.items()}, client_dialect=dialect,
                                  client_stream=parsed.get("stream") is True)
        provider.call("gateway_request", required=False, credentials=credentials, request=outgoing)
        for name in [k for k in headers if k.lower() in {h.lower() for h in outgoing.headers}]:
            del headers[name]
        return outgoing, outgoing.client_stream

    async def _collect_raw(self, request: web.Request, answer: Any, outgoing: BackendRequest) -> web.StreamResponse:
        exchange = Exchange(self, request, outgoing.dialect, b"")
        try:
            return await exchange._collected(answer, outgoing.dialect, None, outgoing.body)
        except GatewayError as exc:
            return error_response(outgoing.dialect, exc.status, exc.message)

    async def _relay(self, request: web.Request, answer: Any) -> web.StreamResponse:
        """Status and headers at once, then the body as the upstream sends it."""
        status = answer.status
        headers = {k: v for k, v in answer.headers.items() if k.lower() not in _DROP_RESPONSE}
        response = web.StreamResponse(status=status, reason=answer.reason, headers=headers)
        if request.method == "HEAD" or status in (204, 304) or status < 200:
            length = answer.headers.get("Content-Length")
            if length is not None and request.method == "HEAD" and not answer.headers.get("Content-Encoding"):
                response.content_length = int(length)
            await response.prepare(request)
            return response
        length = answer.headers.get("Content-Length")
        if length is not None and not answer.headers.get("Content-Encoding"):
            response.content_length = int(length)
        await response.prepare(request)
        try:
            async for chunk in answer.content.iter_any():
                await response.write(chunk)
        except (TimeoutError, client_exceptions.ClientError):
            response.force_close()  # the upstream broke mid-body: end the connection so the client sees it
            return response
        await response.write_eof()
        return response


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.split(" [", 1)[0][:200]


# -- the server object ------------------------------------------------------------------------


class GatewayServer:
    """A bound listening socket and the event loop that serves it (on a thread of its own, or the caller's).

    Binding happens in the constructor, so a busy port fails at once with a clear error;
    :meth:`serve_forever` then runs the loop until :meth:`shutdown`.
    """

    def __init__(self, sock: socket.socket, *, key: str, home: str | Path | None,
                 log: Callable[[str], None] | None, header_timeout: float = HEADER_TIMEOUT) -> None:
        self.socket = sock
        self.server_address = sock.getsockname()[:2]
        self.header_timeout = header_timeout
        self.gateway = Gateway(key=key, home=home, log=log, port=self.port)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._ready = threading.Event()
        self._done = threading.Event()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def base_url(self) -> str:
        return local_base_url(self.port, str(self.server_address[0]))

    @property
    def home(self) -> Path:
        return self.gateway.home

    @property
    def key(self) -> bytes:
        return self.gateway.key

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Run the event loop on this thread until :meth:`shutdown` (or Ctrl+C)."""
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self._done.set()

    async def _main(self) -> None:
        self._stopped = asyncio.Event()
        app = web.Application(client_max_size=MAX_BODY, handler_args={"max_field_size": 64 << 10})
        app.router.add_route("*", "/{tail:.*}", self.gateway.handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, handler_cancellation=True,
                               keepalive_timeout=self.header_timeout, shutdown_timeout=1.0)
        await runner.setup()
        await self.gateway.start()
        site = web.SockSite(runner, self.socket, backlog=socket.SOMAXCONN)  # a burst must not lose handshakes
        await site.start()
        self._ready.set()
        try:
            await self._stopped.wait()
        finally:
            await runner.cleanup()
            await self.gateway.close()

    def wait_ready(self, timeout: float = 10.0) -> bool:
        return self._ready.wait(timeout)

    def shutdown(self) -> None:
        """Stop serving (from another thread) and wait for the loop to finish."""
        loop, stopped = self._loop, self._stopped
        if loop is None or stopped is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(stopped.set)
        self._done.wait(10)

    def server_close(self) -> None:
        with contextlib.suppress(OSError):
            self.socket.close()

    def routes(self) -> list[dict[str, Any]]:
        """One row per signed-in account: its raw route, where it forwards, the gateway's models."""
        from ..tokens import load_credentials

        rows = []
        store = self.gateway.store
        for name, account in store.records():
            default = account == store.default_account(name)
            owner = name if default else f"{name}{ACCOUNT_SEP}{account}"
            row: dict[str, Any] = {"provider": name, "account": account, "default": default,
                                   "url": f"{self.base_url}/{owner}", "upstream": None,
                                   "mode": None, "error": None, "gateway": None, "models": []}
            try:
                credentials = load_credentials(name, store, account)
                if credentials is None:
                    continue
                provider = self.gateway.provider(name)
                row["mode"] = "api_key" if credentials.api_key else "access_token"
                row["upstream"] = self.gateway.base_for(provider, credentials)
                backend = provider.call("gateway_backend", required=False, credentials=credentials, model=None)
                if backend:
                    row["gateway"] = list(backend)
                    row["models"] = [r.name(default) for r in self.gateway.catalog.models(name, account)]
            except OAuthHubError as exc:
                row["error"] = str(exc)
            rows.append(row)
        return rows


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` with the system's largest accept backlog."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(socket.SOMAXCONN)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


__all__ = ["HEADER_TIMEOUT", "Gateway", "GatewayServer", "bind"]
