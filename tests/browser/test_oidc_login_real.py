"""`oauth-hub login NAME` for a config-only OIDC provider, against a real IdP in real Chromium.

The IdP is panva's oidc-provider (npm) on loopback as a native public client with PKCE
required and refresh-token rotation; the browser is Debian's headless Chromium driven by
Playwright through ``$BROWSER``, filling the IdP's own login and consent pages. Nothing
here was written by us except the relying party under test.
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from oauth_core.testing.chromium import read_result

pytestmark = pytest.mark.browser


def stored(home: Path) -> dict:
    return json.loads((home / "corp_oauth.json").read_text())


@pytest.fixture
def corp(cli, home, oidc_provider, chromium_browser_env):
    """A provider named `corp`, added the way the README says, pointing at the real IdP."""
    cli.env.update(chromium_browser_env)
    added = cli("config", "add-oidc", "corp", "--issuer", oidc_provider.issuer, "--client-id",
                oidc_provider.client_id, "--scopes", "openid email profile offline_access")
    assert added.returncode == 0, added.stderr
    return oidc_provider


def test_login_verify_refresh_rotate_logout(cli, home, corp, chromium_browser_env):
    result = cli("login", "corp")
    outcome = read_result(chromium_browser_env["OAUTH_HUB_TEST_SCREENSHOT_DIR"])
    assert result.returncode == 0, f"{result.stderr}\nbrowser: {outcome}"
    first = stored(home)
    assert first["id_token"] and first["refresh_token"]
    assert first["account"]["email"], "email comes from the verified ID token"

    row = cli("status", "corp", "--json").json[0]
    assert row["logged_in"] and row["email"] == first["account"]["email"]

    refreshed = cli("refresh", "corp")
    assert refreshed.returncode == 0, refreshed.stderr
    second = stored(home)
    assert second["refresh_token"] != first["refresh_token"], "refresh tokens rotate"
    assert second["access_token"] != first["access_token"]

    # Replaying the rotated-out refresh token is refused by the IdP (and revokes the grant).
    replay = requests.post(f"{corp.issuer}/token", timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": first["refresh_token"], "client_id": corp.client_id})
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    dead = cli("refresh", "corp")
    assert dead.returncode == 1
    assert "sign-in has ended" in dead.stderr and "oauth-hub login corp" in dead.stderr

    assert cli("login", "corp").returncode == 0  # a new login recovers
    out = cli("logout", "corp")
    assert out.returncode == 0 and "Revoked" in out.stderr
    assert not (home / "corp_oauth.json").exists()


class TamperingProxy:
    """Stands between oauth-hub and the IdP's token endpoint and alters the ID token.

    ``mode`` "tamper" changes a claim but keeps the signature (a forgery); "replay"
    hands back an ID token captured from an earlier login (genuine, but its nonce belongs
    to that login).
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.mode = "pass"
        self.captured: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answer = requests.post(proxy.upstream, data=body, timeout=10,
                                       headers={"Content-Type": self.headers["Content-Type"]})
                data = answer.json()
                if "id_token" in data:
                    data["id_token"] = proxy.alter(data["id_token"])
                raw = json.dumps(data).encode()
                self.send_response(answer.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/token"

    def alter(self, id_token: str) -> str:
        if self.mode == "pass":
            self.captured.append(id_token)
            return id_token
        if self.mode == "replay":
            return self.captured[0]
        header, payload, signature = id_token.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims["email"] = "attacker@example.com"
        forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        return f"{header}.{forged}.{signature}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(cli, home, corp):
    from tests.conftest import write_config

    tampering = TamperingProxy(f"{corp.issuer}/token")
    write_config(home, "corp", token_endpoint=tampering.url)  # config beats discovery
    yield tampering
    tampering.close()


@pytest.mark.parametrize(("mode", "message"), [
    ("tamper", "bad signature"),
    ("replay", "does not carry this login's nonce"),
])
def test_tampered_or_replayed_id_token_is_refused(cli, home, corp, proxy, mode, message):
    assert cli("login", "corp").returncode == 0  # through the proxy, untouched: captures an ID token
    (home / "corp_oauth.json").unlink()
    proxy.mode = mode
    result = cli("login", "corp")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: ") and message in last and "oauth-hub login corp" in last
    assert not (home / "corp_oauth.json").exists()
