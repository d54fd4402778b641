"""The HTTP plumbing the fake providers share: one loopback server, one request log.

Why one module: :mod:`~oauth_core.testing.fake_openai`,
:mod:`~oauth_core.testing.fake_anthropic` and :mod:`~oauth_core.testing.fake_oidc`
must all behave alike as servers (keep-alive, per-connection timeouts, no logging,
a clean stop, the same request log and fault injection), and only differ where the
real providers do: routes, strictness, tokens and error shapes. Keeping the server
here means a fix to the plumbing reaches every fake, and a provider file reads as
a description of its provider.

A fake subclasses :class:`FakeServer`, fills ``self._routes`` (and, for routes
with a variable tail, ``self._prefix_routes``), sets ``_handler_class`` and
``_label``, and implements the error hooks (``_not_found``, ``_method_not_allowed``,
``_length_required``, ``_bad_body_length``, ``_internal_error``,
``_injected_failure``) in its provider's error shape.

Private: the public names live in the fake modules, which re-export what moved
here (``RecordedRequest``, ``s256``).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self
from urllib.parse import parse_qs, urlencode, urlsplit

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
#: Larger bodies are refused before they are read: no fake endpoint needs one.
MAX_BODY = 1 << 20
#: ``Request.json`` when there was no JSON object to parse (None is valid JSON).
MISSING: Any = object()
#: RFC 6749 5.1: token answers and errors must not be cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

# RFC 7636 4.1: a verifier is 43..128 characters of the unreserved set.
VERIFIER_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
# An S256 challenge is base64url without padding; the RFC's full 43..128 range is
# accepted so the error can name the real problem.
CHALLENGE_RE = re.compile(r"^[A-Za-z0-9\-_]{43,128}$")


def _path_of(path_or_url: str) -> str:
    """The path of a URL (``http://127.0.0.1:1/a/b?x`` → ``/a/b``); a path as it is."""
    if path_or_url.startswith(("http://", "https://")):
        return urlsplit(path_or_url).path
    return path_or_url


def s256(verifier: str) -> str:
    """PKCE S256 transform: base64url-nopad(SHA-256(verifier))."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


# ---------------------------------------------------------------------- records


@dataclass
class RecordedRequest:
    """One request as the fake saw it, for assertions in tests.

    ``headers`` keys are lower-cased (HTTP header names are case-insensitive).
    ``query`` and ``form`` keep the first value of a repeated parameter.
    ``json`` is the parsed body when it was a JSON object, else None.
    ``status`` is filled in once the response has been chosen.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    form: dict[str, str] | None = None
    json: dict[str, Any] | None = None
    status: int | None = None
    #: Wall-clock time (``time.time()``) when the whole answer had been written to the
    #: socket; ``None`` if it never was (the client went away, the answer was cut short).
    answered_at: float | None = None


@dataclass
class Fault:
    """One ``fail_next`` entry: answered ``times`` more times, then dropped."""

    status: int
    body: dict[str, Any] | str | bytes | None
    times: int
    delay: float
    headers: dict[str, str]
    content_type: str | None = None
    drip: float = 0.0
    cut_after: int | None = None
    declared_length: int | None = None
    chunked: bool = False


@dataclass
class Hold:
    """One ``hold_next`` entry: the real answer is computed, then kept back until released."""

    release: threading.Event
    arrived: threading.Event
    timeout: float


@dataclass
class Request:
    """What a route handler gets: the parsed request.

    ``form`` is set for a form-encoded body (None when it is not UTF-8), ``json``
    for a JSON body that parses (:data:`MISSING` otherwise); each fake decides
    which encodings an endpoint accepts.
    """

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Any  # http.client.HTTPMessage: case-insensitive .get()
    body: bytes
    content_type: str
    form: dict[str, list[str]] | None = None
    json: Any = MISSING


@dataclass
class Stall:
    """An item of a streamed body: go silent for ``seconds``, like a model that thinks.

    While silent the fake watches the connection; if the client hangs up meanwhile the
    stream ends there and the fake records it in ``aborted_streams`` (what a test of
    "the gateway cancels the upstream when its client leaves" counts).
    """

    seconds: float


@dataclass
class Break:
    """An item of a streamed body: the backend dies here (the connection closes mid-answer,
    without the stream's end), as when a server restarts or a proxy times out."""


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)
    #: When set, the body is sent with chunked transfer encoding, one HTTP chunk
    #: per item, flushed as the iterator yields (server-sent events). A
    #: :class:`Stall` item pauses the stream.
    stream: Iterable[bytes | Stall | Break] | None = None
    #: Faults of the transport (see ``FakeServer.fail_next``): seconds between bytes,
    #: bytes after which the connection is dropped, a Content-Length that lies.
    drip: float = 0.0
    cut_after: int | None = None
    declared_length: int | None = None


Route = Callable[[Request], Response]


class ReplyError(Exception):
    """Raised by helpers to short-circuit a handler with a finished response."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


# ---------------------------------------------------------------------- responses


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, json.dumps(payload).encode(), JSON, dict(headers or {}))


def oauth_error(status: int, code: str, description: str, headers: dict[str, str] | None = None) -> ReplyError:
    """RFC 6749 5.2: ``{"error", "error_description"}``, never cached."""
    return ReplyError(
        json_response(status, {"error": code, "error_description": description}, {**NO_STORE, **(headers or {})})
    )


def html_page(status: int, title: str, body_html: str, headers: dict[str, str] | None = None) -> Response:
    """An HTML page; ``body_html`` must already be escaped."""
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body>"
        f"<h1>{html.escape(title)}</h1>{body_html}</body></html>"
    )
    return Response(status, page.encode(), "text/html; charset=utf-8", dict(headers or {}))


def text_page(status: int, title: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """An HTML page with one paragraph of plain ``message``."""
    return html_page(status, title, f"<p>{html.escape(message)}</p>", headers)


# ---------------------------------------------------------------------- parameters


def single(params: dict[str, list[str]], name: str) -> str | None:
    """One value of a parameter; a repeated parameter is an error (RFC 6749 3.1, 3.2)."""
    values = params.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise ValueError(name)
    return values[0]


def str_param(params: dict[str, Any], name: str) -> str:
    """A required string body parameter, or an ``invalid_request`` error."""
    value = params.get(name)
    if value is None or value == "":
        raise oauth_error(400, "invalid_request", f"Missing required parameter: {name}.")
    if not isinstance(value, str):
        raise oauth_error(400, "invalid_request", f"Parameter {name} must be a string.")
    return value


def add_query(uri: str, params: dict[str, str]) -> str:
    """Append params to a redirect URI, keeping any query it already has (RFC 6749 3.1.2)."""
    sep = "&" if urlsplit(uri).query else ("" if uri.endswith("?") else "?")
    return uri + sep + urlencode(params)


def check_overrides(overrides: dict[str, Any], allowed: frozenset[str]) -> None:
    """Validate ``mint_tokens(**overrides)`` in place: ``expires_in`` is an alias of
    ``access_token_ttl``, and a misspelt knob is a TypeError rather than ignored."""
    if "expires_in" in overrides:
        overrides["access_token_ttl"] = overrides.pop("expires_in")
    unknown = set(overrides) - allowed
    if unknown:
        raise TypeError(f"unknown override(s): {', '.join(sorted(unknown))}")


# ---------------------------------------------------------------------- the fake


class FakeServer:
    """Lifecycle, request log, clock, fault injection and dispatch of a fake provider.

    All state lives behind ``self._lock`` because the server answers each
    connection on its own thread while the test thread reads and tweaks the
    same state.
    """

    #: The request handler class (a subclass per fake, with its own server_version).
    _handler_class: ClassVar[type[RequestHandler]]
    #: The fake's name in thread names and error messages.
    _label: ClassVar[str]

    def __init__(self, *, host: str, port: int, connection_timeout: float, clock_offset: float) -> None:
        self.clock_offset = clock_offset
        self.host = host
        self.connection_timeout = connection_timeout
        #: Every request received, in arrival order.
        self.requests: list[RecordedRequest] = []
        #: Paths of streamed answers whose client hung up before the stream ended, in order.
        self.aborted_streams: list[str] = []
        #: Paths of streamed answers sent to the end.
        self.finished_streams: list[str] = []

        self._requested_port = port
        self._lock = threading.RLock()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._faults: dict[str, list[Fault]] = {}
        self._holds: dict[str, list[Hold]] = {}
        #: path -> method -> handler.
        self._routes: dict[str, dict[str, Route]] = {}
        #: Like _routes, for any path that starts with the key (tried when no exact match).
        self._prefix_routes: dict[str, dict[str, Route]] = {}

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Bind the socket and serve on a daemon thread. Returns self."""
        if self._server is not None:
            return self
        server = Server((self.host, self._requested_port), self._handler_class)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.01},  # stop() waits up to one interval
            name=f"{self._label}:{server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open keep-alive connections so no thread lingers."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        with self._lock:
            conns = list(self._connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (the ephemeral one when constructed with port=0)."""
        if self._server is None:
            raise RuntimeError(f"{self._label} is not started")
        return int(self._server.server_address[1])

    @property
    def issuer(self) -> str:
        """Base URL of the fake, standing in for the provider's sign-in host."""
        return f"http://{self.host}:{self.port}"

    # ------------------------------------------------------------------ test knobs

    def now(self) -> float:
        """The fake's clock: wall time plus ``clock_offset`` (for expiry tests)."""
        return time.time() + self.clock_offset

    def fail_next(
        self,
        path: str,
        status: int,
        body: dict[str, Any] | str | bytes | None = None,
        times: int = 1,
        delay: float = 0,
        headers: dict[str, str] | None = None,
        *,
        content_type: str | None = None,
        drip: float = 0.0,
        cut_after: int | None = None,
        declared_length: int | None = None,
        chunked: bool = False,
    ) -> None:
        """Answer the next ``times`` requests to ``path`` with ``status``/``body``.

        ``path`` is matched without the query string; a full URL (``fake.token_url``)
        stands for its path, so tests need not know where a fake serves a host. A dict
        body is sent as JSON, a str as text/plain, bytes as they are (``content_type``, JSON by
        default: e.g. a body that is not UTF-8), None as a generic error in the
        provider's own shape. With ``delay`` the answer is sent after sleeping that
        many seconds (to test client timeouts). Faults for one path queue up in call
        order. Faults of the transport, as hostile or broken servers send them:

        - ``drip``: the headers at once, then the body one byte every ``drip`` seconds;
        - ``cut_after``: only that many body bytes, then the connection is closed;
        - ``declared_length``: a Content-Length header with this value, whatever the body
          (``-1``: none at all, the body ends when the connection is closed);
        - ``chunked``: chunked transfer encoding (64 KiB chunks), no Content-Length.
        """
        if times < 1:
            raise ValueError("times must be >= 1")
        path = _path_of(path)
        fault = Fault(status, body, times, delay, dict(headers or {}), content_type, drip, cut_after, declared_length,
                      chunked)
        with self._lock:
            self._faults.setdefault(path, []).append(fault)

    def hold_next(self, path: str, *, timeout: float = 60.0) -> Hold:
        """Compute the next answer to ``path`` as usual (a refresh rotates), then keep it back.

        Returns a :class:`Hold`: its ``arrived`` event is set once the request has been
        processed and the answer is waiting; the answer is sent when the test sets
        ``release`` (or after ``timeout`` seconds). For faults that strike between a
        server's decision and the client's receipt of it: a crash, a disk filling up.
        """
        hold = Hold(threading.Event(), threading.Event(), timeout)
        with self._lock:
            self._holds.setdefault(path, []).append(hold)
        return hold

    def count(self, path: str, grant_type: str | None = None) -> int:
        """How many requests hit ``path`` (optionally with this ``grant_type`` in the body)."""
        reqs = self.requests_to(path)
        if grant_type is None:
            return len(reqs)
        return sum(1 for r in reqs if self._recorded_grant_type(r) == grant_type)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """The recorded requests to ``path`` (a path or a full URL; query excluded), oldest first."""
        path = _path_of(path)
        with self._lock:
            return [r for r in self.requests if r.path == path]

    @staticmethod
    def _recorded_grant_type(record: RecordedRequest) -> Any:
        """The ``grant_type`` :meth:`count` matches: from the form body, else the JSON one."""
        params = record.form if record.form is not None else (record.json or {})
        return params.get("grant_type")

    # ------------------------------------------------------------------ dispatch

    def _handle(self, req: Request) -> tuple[Response, float]:
        """Pick the response for a request; returns it and a delay to apply."""
        with self._lock:
            queue = self._faults.get(req.path)
            if queue:
                fault = queue[0]
                fault.times -= 1
                if fault.times <= 0:
                    queue.pop(0)
                return self._fault_response(fault), fault.delay
        methods = self._routes.get(req.path)
        if methods is None:
            methods = next((m for p, m in self._prefix_routes.items() if req.path.startswith(p)), None)
        if methods is None:
            return self._not_found(req), 0.0
        handler = methods.get(req.method)
        if handler is None:
            resp = self._method_not_allowed(req)
            resp.headers["Allow"] = ", ".join(sorted(methods))
            return resp, 0.0
        try:
            return handler(req), 0.0
        except ReplyError as reply:
            return reply.response, 0.0

    def _fault_response(self, fault: Fault) -> Response:
        if isinstance(fault.body, bytes):
            resp = Response(fault.status, fault.body, fault.content_type or JSON)
        elif isinstance(fault.body, str):
            resp = Response(fault.status, fault.body.encode(), fault.content_type or "text/plain; charset=utf-8")
        elif fault.body is None:
            resp = self._injected_failure(fault.status)
        else:
            resp = json_response(fault.status, fault.body)
        resp.headers.update(fault.headers)
        resp.drip, resp.cut_after, resp.declared_length = fault.drip, fault.cut_after, fault.declared_length
        if fault.chunked:
            data = resp.body
            resp.stream = (data[i:i + (1 << 16)] for i in range(0, len(data), 1 << 16))
        return resp

    def _take_hold(self, path: str) -> Hold | None:
        with self._lock:
            queue = self._holds.get(path)
            return queue.pop(0) if queue else None

    # Error hooks: each fake answers these in its provider's error shape.

    def _not_found(self, req: Request) -> Response:
        """No route for ``req.path``."""
        raise NotImplementedError

    def _method_not_allowed(self, req: Request) -> Response:
        """A route exists but not for ``req.method`` (the caller adds ``Allow``)."""
        raise NotImplementedError

    def _length_required(self) -> Response:
        """411 for a chunked request body (no endpoint of a real provider takes one)."""
        raise NotImplementedError

    def _bad_body_length(self, status: int) -> Response:
        """413 for a body over MAX_BODY, 400 for a Content-Length that is not a length."""
        raise NotImplementedError

    def _internal_error(self) -> Response:
        """500 when a route handler raised: a bug in the fake, answered rather than hung."""
        raise NotImplementedError

    def _injected_failure(self, status: int) -> Response:
        """The body of a ``fail_next`` fault given without one."""
        raise NotImplementedError


def serve_until_interrupted(fake: FakeServer) -> None:
    """Block until Ctrl+C, then stop ``fake`` (for the fakes' ``main``)."""
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


# ---------------------------------------------------------------------- HTTP plumbing


class Server(ThreadingHTTPServer):
    """Threaded server; daemon threads so a stuck connection never blocks exit.

    The listen backlog is the system's maximum, as on real API front ends: with
    socketserver's default of 5, a burst of new connections loses handshakes and
    waits for retransmits, which would make the fakes the bottleneck of any
    concurrency test or benchmark.
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = socket.SOMAXCONN
    fake: FakeServer


class RequestHandler(BaseHTTPRequestHandler):
    """Parses the request, records it, and hands it to the fake's ``_handle``."""

    protocol_version = "HTTP/1.1"  # keep-alive, like the real services
    sys_version = ""
    # Headers and body go out in separate writes; with Nagle on, the body waits
    # for the client's delayed ACK (~40 ms) on a reused connection.
    disable_nagle_algorithm = True
    server: Server

    def setup(self) -> None:
        # Per-connection socket timeout: an idle or stuck client frees its
        # thread instead of wedging the server.
        self.timeout = self.server.fake.connection_timeout
        super().setup()
        with self.server.fake._lock:
            self.server.fake._connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.fake._lock:
                self.server.fake._connections.discard(self.connection)

    def log_message(self, *args: Any) -> None:
        """Silent: request lines carry authorization codes, state and tokens."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    # Other methods are answered too (405 with Allow), instead of http.server's 501.
    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        fake = self.server.fake
        split = urlsplit(self.path)
        query = parse_qs(split.query, keep_blank_values=True)
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.close_connection = True
            self._send(fake._length_required())
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            self._send(fake._bad_body_length(413 if length > 0 else 400))
            return
        body = self.rfile.read(length) if length else b""

        req = Request(self.command, split.path, query, self.headers, body, ctype)
        if ctype == FORM:
            try:
                req.form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
            except UnicodeDecodeError:
                req.form = None
        elif ctype == JSON:
            try:
                req.json = json.loads(body.decode("utf-8")) if body else MISSING
            except (UnicodeDecodeError, ValueError):
                req.json = MISSING

        record = RecordedRequest(
            method=self.command,
            path=split.path,
            query={k: v[0] for k, v in query.items()},
            headers={k.lower(): v for k, v in self.headers.items()},
            form={k: v[0] for k, v in req.form.items()} if req.form is not None else None,
            json=req.json if isinstance(req.json, dict) else None,
        )
        with fake._lock:
            fake.requests.append(record)

        try:
            response, delay = fake._handle(req)
        except ReplyError as reply:
            response, delay = reply.response, 0.0
        except Exception:  # never kill the connection thread with a traceback
            response, delay = fake._internal_error(), 0.0
        record.status = response.status
        if delay > 0:
            time.sleep(delay)
        hold = fake._take_hold(split.path)
        if hold is not None:
            hold.arrived.set()
            hold.release.wait(hold.timeout)
        sent = self._send_stream(response) if response.stream is not None else self._send(response)
        if sent:
            record.answered_at = time.time()

    def _send(self, response: Response) -> bool:
        """Write the answer; whether all of it went out."""
        body = response.body if self.command != "HEAD" else b""
        cut = response.cut_after is not None and response.cut_after < len(body)
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            length = response.declared_length if response.declared_length is not None else len(response.body)
            if length >= 0:
                self.send_header("Content-Length", str(length))
            else:  # no length: the body ends when the connection does (HTTP/1.1 allows it)
                self.close_connection = True
            for name, value in response.headers.items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if cut:
                body = body[: response.cut_after]
                self.close_connection = True
            if response.drip > 0:
                self.wfile.flush()
                for i in range(len(body)):
                    time.sleep(response.drip)
                    self.wfile.write(body[i:i + 1])
                    self.wfile.flush()
            elif body:
                self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return False
        if response.declared_length is not None and response.declared_length not in (-1, len(body)):
            self.close_connection = True
            return False
        return not cut

    def _send_stream(self, response: Response) -> bool:
        """Chunked transfer encoding, one chunk per item, each written at once."""
        assert response.stream is not None
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Transfer-Encoding", "chunked")
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.flush()
            for chunk in response.stream:
                if isinstance(chunk, Break):
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if isinstance(chunk, Stall):
                    if self._client_left_within(chunk.seconds):
                        raise ConnectionResetError
                    continue
                if not chunk:
                    continue
                self.wfile.write(f"{len(chunk):X}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True
            with self.server.fake._lock:
                self.server.fake.aborted_streams.append(self.path.split("?", 1)[0])
            return False
        with self.server.fake._lock:
            self.server.fake.finished_streams.append(self.path.split("?", 1)[0])
        return True

    def _client_left_within(self, seconds: float) -> bool:
        """Wait up to ``seconds``; True as soon as the client closes its end."""
        import select

        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([self.connection], [], [], min(left, 0.05))
            if readable:
                try:
                    if self.connection.recv(1, socket.MSG_PEEK) == b"":
                        return True
                except OSError:
                    return True
                time.sleep(min(left, 0.05))  # pipelined bytes: not a hang-up; keep waiting
        return False
