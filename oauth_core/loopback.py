"""The loopback callback server that receives the browser's redirect.

It listens on 127.0.0.1 only (never 0.0.0.0 or ::), on a port the provider has
registered for its redirect URI, and serves exactly one path. What it accepts:

- ``GET <callback path>?code=…&state=…`` with the expected ``state``: the login's
  result. One only: later callbacks get a "already finished" page. The browser is
  shown our page, or sent on to the provider's own success page when it has one
  (``success_url``), as some vendors' CLIs do.
- the same with ``error=…``: a refusal by the provider, shown escaped, ending the login.
- a callback with the right ``state`` that the login's own ``validate`` check refuses
  (e.g. an ``iss`` naming another issuer, RFC 9207): the page says what the terminal
  says, and the login ends. The check runs before the page is written, so the browser
  never claims a sign-in the terminal refused.
- a callback whose ``state`` is wrong or missing: an error page, and the server keeps
  waiting for the real one (a forged request cannot end or hijack the login).
- ``GET /cancel``: a newer login (ours or the Codex CLI's) asking this stale one to
  give the port back, as Codex does.
- anything else (``/favicon.ico``, probes): 404, ignored.

Requests whose ``Host`` is not ``127.0.0.1:PORT`` or ``localhost:PORT`` are refused
(DNS rebinding), as is every method but GET. Each connection has its own thread and a
deadline for its whole request (not only for each read, which a client trickling bytes
would never hit), and the listen backlog is large, so idle, slow or junk connections
cannot keep the real callback out.
"""

from __future__ import annotations

import contextlib
import errno
import html
import io
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from .errors import LoginCancelled, LoginError, LoginTimeout, PortBusy, scrub

BIND_ADDRESS = "127.0.0.1"
CONNECTION_TIMEOUT = 10.0  # seconds a client may take to send its request


@dataclass
class CallbackResult:
    """What the login got back: the authorization code and the full callback query."""

    code: str
    params: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:  # the code is a short-lived secret
        return f"CallbackResult(code='…', params={sorted(self.params)!r})"


@dataclass(frozen=True)
class Verdict:
    """How a delivered callback was judged: an HTTP status and words for the person."""

    status: int
    title: str
    message: str
    location: str = ""  # an accepted callback's browser is redirected here when set

    @property
    def accepted(self) -> bool:
        return self.status == 200


@dataclass
class _Outcome:
    result: CallbackResult | None = None
    error: Exception | None = None


def first_values(query: str) -> dict[str, str]:
    """A query string as a dict of first values (repeated keys keep the first).

    More than 100 fields is junk, not a redirect: it reads as no parameters at all (so
    it is refused like any callback without the state) instead of raising ``parse_qs``'s
    ValueError, which dropped the browser's connection without a page and ended the
    paste reader (tests/test_properties.py::test_first_values_never_raises).
    """
    try:
        parsed = parse_qs(query, keep_blank_values=True, max_num_fields=100)
    except ValueError:
        return {}
    return {key: values[0] for key, values in parsed.items() if values}


class CallbackServer:
    """Waits for one authorization callback. Use as a context manager."""

    def __init__(
        self,
        *,
        path: str,
        state: str,
        ports: Sequence[int],
        provider: str = "the provider",
        login_hint: str = "oauth-hub login",
        busy_advice: str = "",
        cancel_stale: bool = True,
        cancel_attempts: int = 25,
        cancel_interval: float = 0.2,
        validate: Callable[[dict[str, str]], None] | None = None,
        success_url: str = "",
    ) -> None:
        self.path = path
        self.success_url = success_url
        self.state = state
        self.ports = list(ports)
        self.provider = provider
        self.login_hint = login_hint  # e.g. "oauth-hub login chatgpt", for messages
        self.busy_advice = busy_advice  # what else to try when every port is taken
        self.cancel_stale = cancel_stale
        self.cancel_attempts = cancel_attempts
        self.cancel_interval = cancel_interval
        #: Judges a callback whose state matched (error callbacks too) before its page is
        #: written: raising LoginError refuses it, with that message on the page and as
        #: the login's error.
        self.validate = validate
        self.port: int | None = None
        self.notices: list[str] = []
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._close_lock = threading.Lock()
        self._outcome = _Outcome()

    def __repr__(self) -> str:
        return f"CallbackServer(port={self.port!r}, path={self.path!r})"

    def __enter__(self) -> CallbackServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> int:
        """Bind the first usable port and serve in a background thread; return the port.

        A taken port is first asked to give way (``GET /cancel``, retried every
        ``cancel_interval`` seconds ``cancel_attempts`` times), then the next port the
        provider accepts is tried. Only the provider's ports are ever used.
        """
        for port in self.ports:
            # socket.bind raises OverflowError (not OSError) outside 0-65535: a port set to
            # 99999 in config.toml crashed the login with a traceback. 0 stays allowed (any
            # free port, for providers that accept one).
            if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
                raise LoginError(
                    f"{port!r} is not a port number (0-65535). Check the provider's port and fallback_ports "
                    f"settings (`oauth-hub config show`), then run `{self.login_hint}` again."
                )
        for port in self.ports:
            httpd = self._bind(port)
            if httpd is None and self.cancel_stale and _ask_to_cancel(port):
                for _ in range(self.cancel_attempts):
                    time.sleep(self.cancel_interval)
                    httpd = self._bind(port)
                    if httpd is not None:
                        self.notices.append(f"Port {port} was held by an older login; it was asked to stop.")
                        break
            if httpd is not None:
                if port != self.ports[0]:
                    self.notices.append(f"Port {self.ports[0]} is busy; using port {port} instead.")
                self._httpd = httpd
                self.port = httpd.server_address[1]
                self._thread = threading.Thread(
                    target=httpd.serve_forever, kwargs={"poll_interval": 0.1},
                    name=f"oauth-hub-callback-{self.port}", daemon=True,
                )
                self._thread.start()
                return self.port
        raise PortBusy(_busy_message(self.ports, self.login_hint, self.busy_advice))

    def _bind(self, port: int) -> _Server | None:
        try:
            httpd = _Server((BIND_ADDRESS, port), _Handler)
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return None
            raise LoginError(
                f"Cannot listen on {BIND_ADDRESS}:{port} for the sign-in callback ({exc.strerror or exc}). "
                f"Check that the loopback interface is up and run `{self.login_hint}` again{self.busy_advice}."
            ) from None
        httpd.flow = self
        return httpd

    def close(self) -> None:
        """Stop serving and release the port. Safe to call twice."""
        with self._close_lock:
            httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    # -- the result ----------------------------------------------------------------

    def wait(self, timeout: float, tick: Callable[[float], None] | None = None) -> CallbackResult:
        """Block until a valid callback, an error callback, a cancel, or ``timeout``.

        ``tick(seconds_left)`` is called about once a second so a UI can count down.
        """
        deadline = time.monotonic() + timeout
        while not self._done.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                raise LoginTimeout(
                    f"No sign-in arrived within {int(timeout)} seconds, so the login was stopped. "
                    f"Run `{self.login_hint}` again and finish signing in in the browser right away."
                )
            if tick is not None:
                tick(left)
            self._done.wait(min(1.0, left))
        with self._lock:
            if self._outcome.error is not None:
                raise self._outcome.error
            assert self._outcome.result is not None
            return self._outcome.result

    def submit(self, params: dict[str, str]) -> Verdict:
        """Judge a callback's query parameters.

        Shared by the HTTP handler and by a pasted redirect URL, so both are checked
        the same way: the state must match, one result only.
        """
        with self._lock:
            if self._done.is_set():
                return Verdict(409, "This sign-in has already finished", "You can close this tab.")
            if params.get("state") != self.state:
                return Verdict(
                    400, "This sign-in link does not match",
                    "It is not from the login running in your terminal (its state differs), so it was ignored. "
                    "Finish signing in from the link the terminal shows.",
                )
            if self.validate is not None:
                try:
                    self.validate(dict(params))
                except LoginError as exc:
                    self._outcome.error = exc
                    self._done.set()
                    return Verdict(400, "Sign-in refused", f"{exc}")
            if "error" in params:
                code = params.get("error") or "unknown_error"
                description = params.get("error_description", "")
                # Scrubbed for the page too: a pasted URL's verdict is printed in the terminal,
                # and an IdP that quotes a token must not get it into scrollback or CI logs.
                detail = scrub(f"{code}: {description}" if description else code, 200)
                self._outcome.error = LoginError(
                    f"{self.provider} refused the sign-in ({detail}). Run `{self.login_hint}` to try again."
                )
                self._done.set()
                return Verdict(400, "Sign-in was not completed",
                               f"{self.provider} reported: {detail}. Return to the terminal to try again.")
            code = params.get("code")
            if not code:
                return Verdict(400, "The callback carried no authorization code",
                               "Nothing was changed. Return to the terminal and try again.")
            self._outcome.result = CallbackResult(code=code, params=dict(params))
            self._done.set()
            return Verdict(
                200, "You're signed in",
                f"oauth-hub received your {self.provider} sign-in. You can close this tab and return to the terminal.",
                location=self.success_url,
            )

    @property
    def finished(self) -> bool:
        """Whether the login has its result (or was cancelled)."""
        return self._done.is_set()

    def cancel(self, reason: str) -> None:
        """End the wait with :class:`LoginCancelled` (used by ``/cancel`` and Ctrl+C)."""
        with self._lock:
            if not self._done.is_set():
                self._outcome.error = LoginCancelled(reason)
                self._done.set()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default listen backlog is 5. While junk connections churn on the port
    # (a local program probing it, a flood of reconnects), a full backlog makes the kernel
    # drop the browser's handshake, and the real callback waits a second or two for the
    # client's retransmit (measured by benchmarks/bench_loopback_junk.py: worst 1.03-2.06 s
    # under 200 junk connections with 5, 0.2 s with this). The kernel caps it at somaxconn.
    request_queue_size = socket.SOMAXCONN

    def handle_error(self, request: object, client_address: object) -> None:
        """Silent: a client that hangs up or sends junk is not the person's problem."""
    # A TIME_WAIT socket from the last login must not block this one. On Linux SO_REUSEADDR
    # never lets two listeners share a port, so a live listener still makes bind fail.
    allow_reuse_address = True
    flow: CallbackServer


class _DeadlineReader(io.RawIOBase):
    """Socket reads that share one deadline.

    A socket timeout bounds each read, so a client that trickles its request a byte at a
    time (slowloris) would hold a connection and a thread for as long as it likes: here
    the whole request has to arrive within the handler's ``timeout``
    (tests/test_security.py::test_a_trickling_client_is_cut_off).
    """

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request took too long to arrive")
        self._sock.settimeout(left)
        return self._sock.recv_into(buffer)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = CONNECTION_TIMEOUT  # for the whole request, not each read (see _DeadlineReader)
    protocol_version = "HTTP/1.1"
    server_version = "oauth-hub"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the plain socket file: closed, or the socket's fd outlives close()
        self.rfile = io.BufferedReader(_DeadlineReader(self.connection, time.monotonic() + self.timeout))

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Silent: a request line can hold an authorization code."""

    def _send(self, status: int, body: str, content_type: str = "text/html; charset=utf-8") -> None:
        data = body.encode("utf-8")
        self.connection.settimeout(self.timeout)  # the read deadline may have left it nearly spent
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.close_connection = True

    def _redirect(self, location: str) -> None:
        """``302`` to the provider's success page (a URL from settings, never from the request)."""
        self.connection.settimeout(self.timeout)
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def _host_ok(self) -> bool:
        port = self.server.server_address[1]
        host = (self.headers.get("Host") or "").strip().lower()
        return host in (f"127.0.0.1:{port}", f"localhost:{port}")

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        flow = self.server.flow
        if not self._host_ok():
            self._send(400, _page("Bad request", "This address only answers the login running on this computer."))
            return
        url = urlsplit(self.path)
        if url.path == flow.path:
            verdict = flow.submit(first_values(url.query))
            if verdict.accepted and verdict.location:
                self._redirect(verdict.location)
            else:
                self._send(verdict.status, _page(verdict.title, verdict.message))
        elif url.path == "/cancel" and self._from_a_web_page():
            # A page in the person's browser (an <img src=".../cancel">) must not be able
            # to end their login; a newer oauth-hub or Codex login sends none of these.
            self._send(403, _page("Forbidden", "Only a newer login on this computer may stop this one."))
        elif url.path == "/cancel":
            # Answer first, then stop: the waiting login may end the process the moment it is
            # cancelled, and the newer login retries the port only if it got this answer
            # (tests/test_login_remote.py::test_stale_oauth_hub_login_gives_way).
            self._send(200, _page("Login cancelled", "The waiting login was stopped."))
            with contextlib.suppress(OSError):
                self.wfile.flush()
            flow.cancel(
                f"A newer login on port {flow.port} asked this one to stop. Finish signing in there, "
                f"or run `{flow.login_hint}` again."
            )
            # Give the port back at once, rather than when the waiting thread gets round to it.
            threading.Thread(target=flow.close, daemon=True).start()
        else:
            self._send(404, _page("Not found", "Nothing here."))

    def _from_a_web_page(self) -> bool:
        site = (self.headers.get("Sec-Fetch-Site") or "none").lower()
        return site != "none" or bool(self.headers.get("Origin")) or bool(self.headers.get("Referer"))

    def _refuse_method(self) -> None:
        self._send(405, _page("Method not allowed", "Only GET is answered here."))

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _refuse_method  # noqa: N815


CANCEL_ANSWER_WAIT = 3.0  # seconds a stale login gets to answer /cancel (a busy machine is slow to)


def _ask_to_cancel(port: int) -> bool:
    """Send ``GET /cancel`` to whatever holds ``port``; True if something answered."""
    answered = False
    try:
        with socket.create_connection((BIND_ADDRESS, port), timeout=CANCEL_ANSWER_WAIT) as sock:
            sock.sendall(f"GET /cancel HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
            deadline = time.monotonic() + CANCEL_ANSWER_WAIT
            while time.monotonic() < deadline:  # read the whole answer so the server can finish cleanly
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answered = True
    except OSError:
        pass
    return answered


def _busy_message(ports: Sequence[int], login_hint: str, advice: str) -> str:
    from .portinfo import describe_holder

    held = []
    for port in ports:
        holder = describe_holder(port)
        held.append(f"{port} ({holder})" if holder else str(port))
    which = " and ".join(held)
    plural = "s" if len(ports) > 1 else ""
    return (
        f"Cannot listen for the sign-in callback: port{plural} {which} already in use, and the provider "
        f"accepts no other. Stop the program holding it and run `{login_hint}` again{advice}."
    )


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} · oauth-hub</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem;color:#222}}
h1{{font-size:1.4rem}}p{{line-height:1.5}}</style></head>
<body><h1>{title}</h1><p>{message}</p></body></html>
"""


def _page(title: str, message: str) -> str:
    """An HTML page; both strings are escaped, since they may echo what the IdP sent."""
    return _PAGE.format(title=html.escape(title), message=html.escape(message))
