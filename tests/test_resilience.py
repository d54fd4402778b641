"""A refresh must never spend a refresh token it cannot keep, nor hide a still-valid token."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from oauth_core import http as http_module
from oauth_core import tokens
from oauth_core.errors import NetworkError, OAuthHubError, SecurityNotice
from oauth_core.http import HttpClient
from oauth_core.testing.seed import seed_sign_in

REFRESH = "refresh_token"


def test_jwks_is_fetched_before_the_refresh_token_is_spent(chatgpt_home, idp):
    seed_sign_in("chatgpt", idp.mint_tokens(), home=chatgpt_home, expires_at=time.time() - 5)
    before = (chatgpt_home / "chatgpt_oauth.json").read_bytes()
    idp.fail_next("/.well-known/jwks.json", 500, {"error": "server_error"}, times=5)
    with pytest.raises(OAuthHubError, match="JWKS"):
        tokens.get_token("chatgpt", home=chatgpt_home)
    assert idp.count("/oauth/token", REFRESH) == 0, "the refresh token must not be spent"
    assert (chatgpt_home / "chatgpt_oauth.json").read_bytes() == before
    assert tokens.get_token("chatgpt", home=chatgpt_home)  # once the keys are back, all is well
    assert idp.count("/oauth/token", REFRESH) == 1


def test_a_due_but_valid_token_survives_an_outage(cli, chatgpt_home, idp):
    # Due by the five-minute margin (two minutes left of an hour), not by the eight-day rule.
    seeded = seed_sign_in("chatgpt", idp.mint_tokens(), home=chatgpt_home, expires_at=time.time() + 120,
                          last_refresh=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600)))
    idp.fail_next("/oauth/token", 503, {"error": "temporarily_unavailable"}, times=10)
    result = cli("token", "chatgpt")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == seeded.access_token
    assert "Note: Could not refresh the chatgpt sign-in" in result.stderr
    with pytest.warns(SecurityNotice):
        assert tokens.get_token("chatgpt", home=chatgpt_home) == seeded.access_token


class _Slow(BaseHTTPRequestHandler):
    """Answers POSTs after a delay (a server that processed the request but is slow to say so)."""

    hits = 0
    status = 200
    delay = 0.0

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        type(self).hits += 1
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        time.sleep(self.delay)
        body = b'{"error": "boom"}'
        try:
            self.send_response(self.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass


@pytest.fixture
def slow_server():
    _Slow.hits, _Slow.status, _Slow.delay = 0, 200, 0.0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/token"
    server.shutdown()
    server.server_close()


def test_a_non_idempotent_request_is_not_retried_after_a_read_timeout(slow_server, monkeypatch):
    monkeypatch.setattr(http_module, "time", SimpleNamespace(sleep=lambda s: None))  # no backoff waits
    _Slow.delay = 1.0
    client = HttpClient(timeout=(2.0, 0.3))
    with pytest.raises(NetworkError, match="timed out"):
        client.post(slow_server, json={}, what="token refresh", retries=3, idempotent=False)
    assert _Slow.hits == 1
    _Slow.hits = 0
    with pytest.raises(NetworkError):
        client.post(slow_server, json={}, what="model list", retries=2)  # idempotent: retried
    assert _Slow.hits == 3


@pytest.mark.parametrize(("status", "hits"), [(500, 1), (503, 4), (502, 4)])
def test_a_non_idempotent_request_is_retried_only_on_gateway_errors(slow_server, monkeypatch, status, hits):
    monkeypatch.setattr(http_module, "time", SimpleNamespace(sleep=lambda s: None))  # no backoff waits
    _Slow.status = status
    with pytest.raises(OAuthHubError, match=f"HTTP {status}"):
        HttpClient().post(slow_server, json={}, what="token refresh", retries=3, idempotent=False)
    assert _Slow.hits == hits
