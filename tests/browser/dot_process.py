"""Starting django-oauth-toolkit (tests/dot_server/serve.py) for a test.

Like :mod:`tests.browser.oidc_process`: the server binds a free port itself and prints
``ISSUER=`` and ``CONFIG=`` lines when it listens, and exits when its stdin closes.
Django and django-oauth-toolkit come from the test extra (``pip install -e '.[test]'``).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

SERVER_SCRIPT = Path(__file__).resolve().parents[1] / "dot_server" / "serve.py"
START_TIMEOUT = 120.0  # migrating a fresh database takes a while on a busy 2-core machine


class DotServerUnavailable(RuntimeError):
    """Django or django-oauth-toolkit is not installed."""


def check_installed() -> None:
    missing = [name for name in ("django", "oauth2_provider") if importlib.util.find_spec(name) is None]
    if missing:
        raise DotServerUnavailable(
            f"{' and '.join(missing)} not installed: pip install -e '.[test]' (it brings django and "
            f"django-oauth-toolkit)."
        )


@dataclass
class DotServer:
    """A running django-oauth-toolkit site with a user and two public clients."""

    issuer: str
    process: subprocess.Popen
    log_path: Path
    config: dict = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return self.issuer.removesuffix("/o")

    @property
    def client_id(self) -> str:
        return self.config["client_id"]

    @property
    def device_client_id(self) -> str:
        return self.config["device_client_id"]

    @property
    def user(self) -> str:
        return self.config["user"]

    @property
    def password(self) -> str:
        return self.config["password"]

    @property
    def email(self) -> str:
        return self.config["email"]

    def expire_access_tokens(self) -> int:
        """Every access token issued so far expires now, at the server (needs ``test_controls``)."""
        answer = requests.post(f"{self.base_url}/__test/expire-access-tokens", timeout=10)
        answer.raise_for_status()
        return int(answer.json()["expired"])

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.close()
            except OSError:
                pass
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.terminate()
                try:
                    self.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()


def start_dot_server(directory: Path, *, access_token_ttl: int = 300, test_controls: bool = True) -> DotServer:
    """Start the site with its database in ``directory``; raise with its log if it does not listen."""
    check_installed()
    directory.mkdir(parents=True, exist_ok=True)
    log_path = directory / "dot-server.log"
    command = [sys.executable, str(SERVER_SCRIPT), "--db", str(directory / "db.sqlite3"),
               "--access-token-ttl", str(access_token_ttl)]
    if test_controls:
        command.append("--test-controls")
    log_file = open(log_path, "wb")  # noqa: SIM115 (the child keeps writing to it)
    try:
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log_file,
                                   text=True)
    finally:
        log_file.close()
    lines: list[str] = []
    ready = threading.Event()

    def read_stdout() -> None:
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("CONFIG="):
                ready.set()
        ready.set()

    threading.Thread(target=read_stdout, name="dot-server-stdout", daemon=True).start()
    started = time.monotonic()
    ready.wait(START_TIMEOUT)
    issuer = next((line.split("=", 1)[1] for line in lines if line.startswith("ISSUER=")), None)
    config = next((json.loads(line.split("=", 1)[1]) for line in lines if line.startswith("CONFIG=")), None)
    server = DotServer(issuer=issuer or "", process=process, log_path=log_path, config=config or {})
    if issuer is None or config is None:
        server.stop()
        raise RuntimeError(
            f"django-oauth-toolkit did not start within {time.monotonic() - started:.0f}s "
            f"(exit code {process.returncode}); its output:\n" + "\n".join(lines) + "\n" + server.log()
        )
    return server
