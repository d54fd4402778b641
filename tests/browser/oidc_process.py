"""Starting panva's ``oidc-provider`` (tests/oidc_server/server.mjs) for a test.

The server binds a free port itself (``--port 0``) and prints ``ISSUER=<url>`` when it
listens, so there is no port race. It exits when its stdin closes, so a test run that
dies without cleaning up does not leave it behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

SERVER_DIR = Path(__file__).resolve().parents[1] / "oidc_server"
SERVER_SCRIPT = SERVER_DIR / "server.mjs"
DEFAULT_CLIENT_ID = "oauth-hub-test"
# A native client's loopback redirect URI matches any port (RFC 8252 section 7.3), so
# one registration serves every port a test binds.
DEFAULT_REDIRECT_URIS = ("http://127.0.0.1:8765/callback",)
START_TIMEOUT = 30.0


class OidcServerUnavailable(RuntimeError):
    """Node or the npm dependencies are missing: the test machine is not set up."""


def check_installed() -> str:
    """The path of ``node``; raises :class:`OidcServerUnavailable` with the fix when not ready."""
    node = shutil.which("node")
    if node is None:
        raise OidcServerUnavailable("node is not on PATH; the browser tests need Node.js 20 or newer.")
    if not (SERVER_DIR / "node_modules" / "oidc-provider" / "package.json").exists():
        raise OidcServerUnavailable(
            f"oidc-provider is not installed in {SERVER_DIR}: run scripts/install-test-deps.sh "
            f"(npm ci in tests/oidc_server)."
        )
    return node


@dataclass
class OidcServer:
    """A running oidc-provider with one native public client."""

    issuer: str
    client_id: str
    redirect_uris: list[str]
    process: subprocess.Popen
    log_path: Path
    config: dict = field(default_factory=dict)

    @property
    def port(self) -> int:
        return int(self.issuer.rsplit(":", 1)[1])

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def advance_clock(self, seconds: float) -> None:
        """Move the server's clock ahead (started with ``test_clock=True``): its tokens age at once."""
        import requests

        answer = requests.post(f"{self.issuer}/__test/clock", params={"advance": str(seconds)}, timeout=10)
        answer.raise_for_status()

    def log(self) -> str:
        """What the server wrote on stderr so far (warnings, request lines, errors)."""
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.close()  # the server exits on end-of-file...
            except OSError:
                pass
            try:
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.process.terminate()  # ...or on SIGTERM...
                try:
                    self.process.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    self.process.kill()  # ...or not at all.
                    self.process.wait(timeout=3)
        if self.process.stdout is not None:
            self.process.stdout.close()


def start_oidc_server(
    log_path: Path,
    *,
    client_id: str = DEFAULT_CLIENT_ID,
    redirect_uris: list[str] | tuple[str, ...] = DEFAULT_REDIRECT_URIS,
    access_token_ttl: int | None = None,
    id_token_ttl: int | None = None,
    refresh_token_ttl: int | None = None,
    log_requests: bool = True,
    port: int = 0,
    strict: bool = False,
    test_clock: bool = False,
) -> OidcServer:
    """Start the server and wait until it listens; raise with its log if it does not."""
    node = check_installed()
    command = [node, str(SERVER_SCRIPT), "--port", str(port), "--client-id", client_id]
    for uri in redirect_uris:
        command += ["--redirect-uri", uri]
    for flag, value in (("--access-token-ttl", access_token_ttl), ("--id-token-ttl", id_token_ttl),
                        ("--refresh-token-ttl", refresh_token_ttl)):
        if value is not None:
            command += [flag, str(value)]
    if log_requests:
        command.append("--log-requests")
    if strict:
        command.append("--strict")
    if test_clock:
        command.append("--test-clock")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OIDC_")}
    env["NO_COLOR"] = "1"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_file = open(log_path, "wb")  # noqa: SIM115 (the child keeps writing to it)
    try:
        process = subprocess.Popen(command, cwd=SERVER_DIR, env=env, stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=log_file, text=True)
    finally:
        log_file.close()

    lines: list[str] = []
    ready = threading.Event()

    def read_stdout() -> None:
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("CONFIG="):
                ready.set()
        ready.set()  # end of output: the server died

    threading.Thread(target=read_stdout, name="oidc-server-stdout", daemon=True).start()
    started = time.monotonic()
    ready.wait(START_TIMEOUT)
    issuer = next((line.split("=", 1)[1] for line in lines if line.startswith("ISSUER=")), None)
    config = next((json.loads(line.split("=", 1)[1]) for line in lines if line.startswith("CONFIG=")), None)
    server = OidcServer(issuer=issuer or "", client_id=client_id, redirect_uris=list(redirect_uris),
                        process=process, log_path=log_path, config=config or {})
    if issuer is None or config is None:
        server.stop()
        raise RuntimeError(
            f"oidc-provider did not start within {time.monotonic() - started:.0f}s "
            f"(exit code {process.returncode}); its output:\n" + "\n".join(lines) + "\n" + server.log()
        )
    return server
