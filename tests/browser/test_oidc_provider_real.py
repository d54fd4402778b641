"""The harness for a real IdP: panva's oidc-provider, signed in to through headless Chromium.

No oauth-hub provider is involved yet: a minimal relying party in the test (the engine's
loopback :class:`CallbackServer` on a free port, token requests with ``requests``) proves
that the node server, its dev login and consent pages, and the Chromium driver work
together for authorization code + PKCE, with refresh rotation and revocation, before
``oauth-hub login <oidc name>`` runs on top of them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
import requests

from oauth_core.errors import LoginError
from oauth_core.idtoken import IdTokenError
from oauth_core.idtoken import verify as engine_verify
from oauth_core.loopback import CallbackServer
from oauth_core.pkce import PkcePair, b64url, new_state
from oauth_core.testing.chromium import drive_oidc_login, read_netlog, read_result

pytestmark = pytest.mark.browser

SCOPE = "openid email profile offline_access"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def http():
    with requests.Session() as session:
        session.trust_env = False  # everything is on loopback: no proxy
        yield session


@dataclass
class Flow:
    """One authorization request: what the relying party keeps until the callback."""

    url: str
    redirect_uri: str
    state: str
    nonce: str
    pkce: PkcePair
    server: CallbackServer


@pytest.fixture
def start_flow(oidc_provider, http):
    """Start a loopback receiver on a free port and build the authorize URL for it."""
    discovery = http.get(oidc_provider.discovery_url, timeout=10).json()
    servers: list[CallbackServer] = []

    def start(**extra: str) -> Flow:
        state, nonce, pkce = new_state(), b64url(os.urandom(16)), PkcePair.generate()
        server = CallbackServer(path="/callback", state=state, ports=[free_port()], provider="oidc-provider",
                                cancel_stale=False)
        server.start()
        servers.append(server)
        # Registered: http://127.0.0.1:8765/callback. A native client may use any port.
        redirect_uri = f"http://127.0.0.1:{server.port}/callback"
        query = {
            "response_type": "code", "client_id": oidc_provider.client_id, "redirect_uri": redirect_uri,
            "scope": SCOPE, "state": state, "nonce": nonce,
            "code_challenge": pkce.challenge, "code_challenge_method": "S256", **extra,
        }
        url = f"{discovery['authorization_endpoint']}?{urlencode(query)}"
        return Flow(url=url, redirect_uri=redirect_uri, state=state, nonce=nonce, pkce=pkce, server=server)

    yield start
    for server in servers:
        server.close()


def token_request(http, oidc_provider, **form: str) -> requests.Response:
    return http.post(f"{oidc_provider.issuer}/token", data={"client_id": oidc_provider.client_id, **form},
                     timeout=10)


def exchange(http, oidc_provider, flow: Flow, code: str) -> dict:
    answer = token_request(http, oidc_provider, grant_type="authorization_code", code=code,
                           redirect_uri=flow.redirect_uri, code_verifier=flow.pkce.verifier)
    assert answer.status_code == 200, answer.text
    return answer.json()


def jwks(http, oidc_provider) -> dict:
    return http.get(f"{oidc_provider.issuer}/jwks", timeout=10).json()


def test_discovery_describes_a_pkce_client_with_revocation(oidc_provider, http, start_flow):
    config = http.get(oidc_provider.discovery_url, timeout=10).json()
    assert config["issuer"] == oidc_provider.issuer
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert config["revocation_endpoint"] == f"{oidc_provider.issuer}/token/revocation"
    assert config["authorization_response_iss_parameter_supported"] is True
    assert {"openid", "email", "profile", "offline_access"} <= set(config["scopes_supported"])
    assert "refresh_token" in config["grant_types_supported"]

    # PKCE is required of this client: no challenge, no code (an error at the callback).
    flow = start_flow()
    query = {k: v[0] for k, v in parse_qs(urlsplit(flow.url).query).items()}
    del query["code_challenge"], query["code_challenge_method"]
    answer = http.get(f"{config['authorization_endpoint']}?{urlencode(query)}", allow_redirects=False, timeout=10)
    assert answer.status_code in (302, 303)
    location = urlsplit(answer.headers["Location"])
    assert f"http://{location.netloc}{location.path}" == flow.redirect_uri
    error = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert error["error"] == "invalid_request" and "PKCE" in error["error_description"]
    assert error["state"] == flow.state

    # An unregistered path is refused without a redirect, even on loopback.
    query = {**query, "redirect_uri": "http://127.0.0.1:8765/elsewhere", "code_challenge": "x" * 43,
             "code_challenge_method": "S256"}
    answer = http.get(f"{config['authorization_endpoint']}?{urlencode(query)}", allow_redirects=False, timeout=10)
    assert answer.status_code == 400


def test_chromium_signs_in_and_a_reused_refresh_token_revokes_the_grant(oidc_provider, http, start_flow,
                                                                         chromium_executable, screenshot_dir):
    flow = start_flow()
    outcome = drive_oidc_login(flow.url, login="alice", screenshot_dir=screenshot_dir,
                               netlog=screenshot_dir / "netlog.json", executable=chromium_executable)
    assert outcome.ok, f"{outcome}\n{oidc_provider.log()}"
    assert outcome.steps == ["login", "consent", "callback"]
    assert outcome.final_url == flow.redirect_uri and "You're signed in" in outcome.text
    callback = flow.server.wait(timeout=5)
    assert callback.params["iss"] == oidc_provider.issuer  # RFC 9207
    assert callback.params["state"] == flow.state

    requests_made, _ = read_netlog(screenshot_dir / "netlog.json")
    to_callback = [r for r in requests_made if r.url.startswith(f"http://127.0.0.1:{flow.server.port}/")]
    assert [r.path for r in to_callback] == ["/callback"] and to_callback[0].status == 200

    tokens = exchange(http, oidc_provider, flow, callback.code)
    assert {"access_token", "refresh_token", "id_token"} <= set(tokens)
    assert tokens["token_type"].lower() == "bearer"
    # oidc-provider grants offline_access only with prompt=consent (OIDC Core 11); the
    # refresh token comes anyway, because server.mjs's issueRefreshToken says so.
    assert set(tokens["scope"].split()) == {"openid", "email", "profile"}

    # The ID token: signed by the published key, for this client, with our nonce, and
    # the email claims in it (conformIdTokenClaims: false).
    keys = jwks(http, oidc_provider)
    header = jwt.get_unverified_header(tokens["id_token"])
    key = jwt.PyJWKSet.from_dict(keys)[header["kid"]]
    claims = jwt.decode(tokens["id_token"], key=key, algorithms=["RS256"], audience=oidc_provider.client_id,
                        issuer=oidc_provider.issuer)
    assert claims["sub"] == "alice" and claims["nonce"] == flow.nonce
    assert claims["email"] == "alice@example.test" and claims["email_verified"] is True
    # The engine's own verifier accepts it as well, and rejects a wrong nonce.
    assert engine_verify(tokens["id_token"], jwks=keys, issuer=oidc_provider.issuer,
                         audience=oidc_provider.client_id, nonce=flow.nonce)["sub"] == "alice"
    with pytest.raises(IdTokenError):
        engine_verify(tokens["id_token"], jwks=keys, issuer=oidc_provider.issuer, audience=oidc_provider.client_id,
                      nonce="not-the-nonce")

    me = http.get(f"{oidc_provider.issuer}/me", headers={"Authorization": f"Bearer {tokens['access_token']}"},
                  timeout=10)
    assert me.status_code == 200 and me.json()["email"] == "alice@example.test"

    # Refresh rotates the refresh token.
    first = tokens["refresh_token"]
    rotated = token_request(http, oidc_provider, grant_type="refresh_token", refresh_token=first)
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refresh_token"] != first and second["access_token"] != tokens["access_token"]
    assert jwt.decode(second["id_token"], key=key, algorithms=["RS256"], audience=oidc_provider.client_id,
                      issuer=oidc_provider.issuer)["email"] == "alice@example.test"

    # Using the rotated-out token again is treated as theft: refused, and the whole
    # grant dies, so the new refresh token and access token stop working too.
    reuse = token_request(http, oidc_provider, grant_type="refresh_token", refresh_token=first)
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    dead = token_request(http, oidc_provider, grant_type="refresh_token", refresh_token=second["refresh_token"])
    assert dead.status_code == 400 and dead.json()["error"] == "invalid_grant"
    me = http.get(f"{oidc_provider.issuer}/me", headers={"Authorization": f"Bearer {second['access_token']}"},
                  timeout=10)
    assert me.status_code == 401
    assert "grant revoked" in oidc_provider.log()


def run_browser_command(url: str, env_overrides: dict[str, str], **extra: str) -> subprocess.CompletedProcess:
    """Run the helper exactly as Python's webbrowser runs ``$BROWSER`` (``%s`` = the URL)."""
    env = {**os.environ, **env_overrides, **extra}
    command = [sys.executable, "-m", "oauth_core.testing.chromium", url]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=90)


def test_browser_command_signs_in_and_revocation_ends_the_refresh_token(oidc_provider, http, start_flow,
                                                                         chromium_browser_env, screenshot_dir):
    flow = start_flow()
    done = run_browser_command(flow.url, chromium_browser_env, OAUTH_HUB_TEST_OIDC_LOGIN="bob@example.org")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # stdout belongs to the login command that started the browser
    outcome = read_result(screenshot_dir)
    assert outcome is not None and outcome.ok and outcome.steps == ["login", "consent", "callback"]
    assert (screenshot_dir / "signed-in.png").stat().st_size > 2_000
    callback = flow.server.wait(timeout=5)

    tokens = exchange(http, oidc_provider, flow, callback.code)
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert claims["sub"] == "bob@example.org" and claims["email"] == "bob@example.org"

    revoked = http.post(f"{oidc_provider.issuer}/token/revocation", timeout=10,
                        data={"client_id": oidc_provider.client_id, "token": tokens["refresh_token"],
                              "token_type_hint": "refresh_token"})
    assert revoked.status_code == 200
    refresh = token_request(http, oidc_provider, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"

    # The code is single-use (a replay also revokes what it was exchanged for, RFC 6749 4.1.2).
    again = token_request(http, oidc_provider, grant_type="authorization_code", code=callback.code,
                          redirect_uri=flow.redirect_uri, code_verifier=flow.pkce.verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_denied_consent_fails_the_browser_with_a_screenshot(oidc_provider, start_flow, chromium_browser_env,
                                                            screenshot_dir):
    flow = start_flow()
    done = run_browser_command(flow.url, chromium_browser_env, OAUTH_HUB_TEST_OIDC_CONSENT="deny")
    assert done.returncode == 1, done.stderr
    assert "sign-in failed" in done.stderr and str(screenshot_dir / "failure.png") in done.stderr
    assert "code=" not in done.stderr and "state=" not in done.stderr  # no query strings in messages
    outcome = read_result(screenshot_dir)
    assert outcome is not None and not outcome.ok and outcome.steps == ["login", "deny", "callback"]
    assert outcome.final_url == flow.redirect_uri
    assert (screenshot_dir / "failure.png").read_bytes()[:4] == b"\x89PNG"
    assert (screenshot_dir / "failure.html").exists()
    with pytest.raises(LoginError, match="access_denied"):
        flow.server.wait(timeout=5)
