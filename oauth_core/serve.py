"""``oauth-hub serve``: a local endpoint that forwards to a provider's API with fresh credentials.

Most agent tools can send one static key to one base URL and nothing else. A sign-in
without an API key (a subscription) needs more: a rotating access token, refreshed
every few hours, and headers the provider insists on. ``serve`` does that part for them:

    client ──► http://127.0.0.1:4141/v1/…              ──► whichever provider serves the model
    client ──► http://127.0.0.1:4141/<provider>/<rest> ──► <upstream base>/<rest>

``/v1`` is one OpenAI- and Anthropic-compatible base URL for every signed-in provider:
requests are routed by model name and translated between dialects where the backend
speaks another (:mod:`oauth_core.gateway`). ``/<provider>/<rest>`` forwards as is,
except that a call to one of the backend's dialect paths gets the provider's request
rules too (a raw Responses call without ``store: false`` must not fail).

Each request gets the provider's own authentication headers (its ``request_headers``
hook, exactly what :class:`~oauth_core.auth.OAuthHubAuth` sends), built from credentials
that :func:`~oauth_core.tokens.get_credentials` refreshes when due, under the same
cross-process lock every other tool uses. If the upstream still answers 401, the
sign-in is refreshed once (a refresh another process just made is reused) and the
request is sent once more. Responses are relayed as they arrive, one upstream read at
a time, so server-sent events reach the client without waiting for the end.

Who may use it. The server binds a loopback address only. Clients present a local key
(``Authorization: Bearer <key>`` or ``x-api-key: <key>``); it is compared in constant
time, stripped, and never forwarded. A request whose ``Host`` is not this server's own
loopback address and port is refused, which stops web pages that rebind a DNS name to
127.0.0.1. The key is random per run by default; ``stable_key()`` keeps one in the home
(mode 0600, beside the tokens it protects) so exported tool configs keep working across
restarts.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import OAuthHubError
from .gateway.upstream import DEFAULT_HOST, DEFAULT_PORT, local_base_url, upstream_base
from .store import Store, read_private, write_private

KEY_ENV = "OAUTH_HUB_SERVE_KEY"  # the variable exported configs read the local key from
KEY_FILE = "serve_key"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


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


# `local_base_url` (where tools point) and `upstream_base` (where a provider's requests go)
# live in the gateway, which needs them and must not import this module; re-exported here.
__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "KEY_ENV", "KEY_FILE", "LOOPBACK", "ServeError", "local_base_url",
           "make_server", "new_key", "run", "stable_key", "start_in_thread", "upstream_base"]


# -- the server -----------------------------------------------------------------------


class ServeError(OAuthHubError):
    """The local endpoint cannot start (port taken, not a loopback address)."""


def make_server(*, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, key: str | None = None,
                home: str | Path | None = None, log: Callable[[str], None] | None = None,
                header_timeout: float | None = None) -> Any:
    """Bind the local endpoint (``port=0``: any free port) without serving yet.

    Only loopback addresses are accepted: this endpoint hands out a live sign-in. The
    server is :class:`oauth_core.gateway.server.GatewayServer` (aiohttp, imported here
    and not before, so other commands start fast).
    """
    if host not in LOOPBACK:
        raise ServeError(f"oauth-hub serve listens on loopback only (127.0.0.1, localhost or ::1), not {host!r}.")
    if host == "localhost":
        host = "127.0.0.1"
    from .gateway.server import HEADER_TIMEOUT, GatewayServer, bind

    try:
        sock = bind(host, port)
    except OSError as exc:
        from .portinfo import describe_holder

        holder = describe_holder(port) if port else None
        raise ServeError(
            f"Cannot listen on {local_base_url(port, host)} ({exc.strerror or exc}"
            f"{f'; {holder}' if holder else ''}). Stop the other server, or pass --port N "
            f"(and export with --serve-port N)."
        ) from None
    return GatewayServer(sock, key=key or new_key(), home=home, log=log,
                         header_timeout=HEADER_TIMEOUT if header_timeout is None else header_timeout)


def start_in_thread(server: Any) -> threading.Thread:
    """Serve on a daemon thread (tests, benchmarks, tools embedding oauth_core); returns once listening."""
    thread = threading.Thread(target=server.serve_forever, name=f"oauth-hub-serve:{server.port}", daemon=True)
    thread.start()
    server.wait_ready()
    return thread


def run(server: Any) -> None:
    """Serve until Ctrl+C, then close the socket."""
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
