"""A config-only OIDC provider against two real servers, as a new user would set it up.

django-oauth-toolkit (a minimal Django site: Django's login form, DOT's consent page,
PKCE required, refresh tokens rotated with reuse protection, scopes without
``offline_access``, no revocation or device endpoint in its discovery) and panva's
oidc-provider left at its defaults where a deployment would be (EdDSA ID tokens, the
email only at userinfo, RFC 9207 ``iss``, 30-second access tokens, device flow on).

Each story: `config add-oidc` with the defaults, `login` through headless Chromium,
`status` showing the email, `token` after the access token expired (the server's side
expires it through a control the test owns, so no test waits 30 seconds; the client's
side is told by moving the stored expiry into the past, as its clock would), `logout`
revoking at the server, and `login --device` approved in Chromium.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests

from oauth_core.testing.chromium import drive_oidc_login, read_result
from tests.test_login_remote import Running

pytestmark = pytest.mark.browser


def stored(home: Path, name: str) -> dict:
    return json.loads((home / f"{name}_oauth.json").read_text())


def expire_on_the_client(home: Path, name: str) -> None:
    """What the client's clock passing would do: the stored expiry lies in the past."""
    path = home / f"{name}_oauth.json"
    data = json.loads(path.read_text())
    data["expires_at"] = time.time() - 5
    path.write_text(json.dumps(data))


def login_in_chromium(cli, name: str, env: dict[str, str]) -> None:
    result = cli("login", name, env=env)
    outcome = read_result(env["OAUTH_HUB_TEST_SCREENSHOT_DIR"])
    assert result.returncode == 0, f"{result.stderr}\nbrowser: {outcome}"
    assert outcome is not None and outcome.ok and outcome.steps == ["login", "consent", "callback"]
    assert "Signed in to" in result.stderr


def callback_query(cli) -> dict[str, str]:
    """The query the browser brought back to the loopback callback (from Chromium's navigation log)."""
    callbacks = [url for url in cli.visited() if urlsplit(url).hostname == "127.0.0.1"
                 and urlsplit(url).path == "/callback"]
    assert callbacks, cli.visited()
    return {k: v[0] for k, v in parse_qs(urlsplit(callbacks[-1]).query).items()}


def authorize_query(cli) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(cli.visited()[0]).query).items()}


def userinfo_status(endpoint: str, access_token: str) -> int:
    return requests.get(endpoint, headers={"Authorization": f"Bearer {access_token}"}, timeout=10).status_code


def device_login(cli, name: str, *, login: str, password: str, expect_text: str, screenshots: Path,
                 chromium: str) -> tuple[Running, int]:
    """`login NAME --device`, the code typed into the server's page by Chromium."""
    running = Running(cli, "login", name, "--device")
    uri = running.wait_for(r"open this page on any device:\s+(\S+)").group(1)
    code = running.wait_for(r"enter the code:\s+(\S+)").group(1)
    outcome = drive_oidc_login(uri, user_code=code, login=login, password=password, expect_text=expect_text,
                               screenshot_dir=screenshots, executable=chromium, timeout=60)
    assert outcome.ok, outcome
    assert "code" in outcome.steps and outcome.steps[-1] == "done", outcome.steps  # typed, then approved
    return running, running.finish(timeout=60)


# -- django-oauth-toolkit ------------------------------------------------------------------


def test_django_oauth_toolkit(cli, home, dot_server, chromium_browser_env, chromium_executable, tmp_path):
    name = "dot"
    env = {**chromium_browser_env, "OAUTH_HUB_TEST_OIDC_LOGIN": dot_server.user,
           "OAUTH_HUB_TEST_OIDC_PASSWORD": dot_server.password}
    added = cli("config", "add-oidc", name, "--issuer", dot_server.issuer, "--client-id", dot_server.client_id)
    assert added.returncode == 0, added.stderr
    assert "Scopes:      openid profile email (from its scopes_supported)" in added.stderr
    assert "Revocation:  none advertised" in added.stderr

    # Log in: Django's login form and DOT's consent page, in Chromium.
    login_in_chromium(cli, name, env)
    query = authorize_query(cli)
    assert query["scope"] == "openid profile email" and query["code_challenge_method"] == "S256"
    first = stored(home, name)
    assert jwt.get_unverified_header(first["id_token"])["alg"] == "RS256"
    assert first["refresh_token"]

    status = cli("status", name)
    assert status.returncode == 0 and f"{name}: signed in as {dot_server.email}" in status.stdout

    # The access token expires (at the server, and for the client): `token` refreshes it.
    userinfo = f"{dot_server.issuer}/userinfo/"
    before = stored(home, name)
    assert dot_server.expire_access_tokens() >= 1
    assert userinfo_status(userinfo, before["access_token"]) == 401
    expire_on_the_client(home, name)
    token = cli("token", name)
    assert token.returncode == 0, token.stderr
    after = stored(home, name)
    assert token.stdout.strip() == after["access_token"] != before["access_token"]
    assert after["refresh_token"] != before["refresh_token"]  # rotated
    assert userinfo_status(userinfo, after["access_token"]) == 200
    # Reuse protection: the rotated-out refresh token is refused by the server.
    reused = requests.post(f"{dot_server.issuer}/token/", timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": before["refresh_token"], "client_id": dot_server.client_id})
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    assert cli("login", name, env=env).returncode == 0  # (reuse protection ended that family: sign in again)

    # Logout revokes at the endpoint DOT has but does not advertise, once it is configured.
    revoke = f"{dot_server.issuer}/revoke_token/"
    assert cli("config", "set", f"{name}.revocation_endpoint", revoke).returncode == 0
    refresh_token = stored(home, name)["refresh_token"]
    out = cli("logout", name)
    assert out.returncode == 0 and f"Revoked the {name} sign-in" in out.stderr
    assert "POST /o/revoke_token/ -> 200" in dot_server.log()
    spent = requests.post(f"{dot_server.issuer}/token/", timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": dot_server.client_id})
    assert spent.status_code == 400 and spent.json()["error"] == "invalid_grant"

    # Device sign-in: DOT has one client per grant type, and leaves the endpoint out of discovery.
    device = "dot-device"
    assert cli("config", "add-oidc", device, "--issuer", dot_server.issuer, "--client-id",
               dot_server.device_client_id).returncode == 0
    assert cli("config", "set", f"{device}.device_authorization_endpoint",
               f"{dot_server.issuer}/device-authorization/").returncode == 0
    running, code = device_login(cli, device, login=dot_server.user, password=dot_server.password,
                                 expect_text="Device Authorized", screenshots=tmp_path / "device",
                                 chromium=chromium_executable)
    assert code == 0, running.stderr
    assert cli("status", device).stdout.startswith(f"{device}: signed in as {dot_server.email}")


# -- panva oidc-provider, strict --------------------------------------------------------------


def test_oidc_provider_strict(cli, home, strict_oidc_provider, chromium_browser_env, chromium_executable, tmp_path):
    server = strict_oidc_provider
    name = "panva"
    added = cli("config", "add-oidc", name, "--issuer", server.issuer, "--client-id", server.client_id)
    assert added.returncode == 0, added.stderr
    assert "Scopes:      openid profile email offline_access (from its scopes_supported)" in added.stderr
    assert f"Device code: {server.issuer}/device/auth" in added.stderr

    login_in_chromium(cli, name, chromium_browser_env)
    assert callback_query(cli)["iss"] == server.issuer  # RFC 9207, checked before the page was written
    first = stored(home, name)
    assert jwt.get_unverified_header(first["id_token"])["alg"] == "EdDSA"
    assert "email" not in jwt.decode(first["id_token"], options={"verify_signature": False})
    assert first["refresh_token"]  # offline_access, granted with prompt=consent

    # The email is only at userinfo.
    status = cli("status", name)
    assert status.returncode == 0 and f"{name}: signed in as alice@example.test" in status.stdout
    assert "GET /me -> 200" in server.log()

    # 30-second access tokens: the server's clock moves past it (and oidc-provider's 15 seconds of
    # clock tolerance), and so does the client's view.
    before = stored(home, name)
    server.advance_clock(60)
    assert userinfo_status(f"{server.issuer}/me", before["access_token"]) == 401
    expire_on_the_client(home, name)
    token = cli("token", name)
    assert token.returncode == 0, token.stderr
    after = stored(home, name)
    assert token.stdout.strip() == after["access_token"] != before["access_token"]
    assert after["refresh_token"] != before["refresh_token"]
    assert jwt.get_unverified_header(after["id_token"])["alg"] == "EdDSA"  # verified again at the refresh
    assert userinfo_status(f"{server.issuer}/me", after["access_token"]) == 200

    out = cli("logout", name)
    assert out.returncode == 0 and f"Revoked the {name} sign-in" in out.stderr
    assert "POST /token/revocation -> 200" in server.log()
    spent = requests.post(f"{server.issuer}/token", timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": after["refresh_token"], "client_id": server.client_id})
    assert spent.status_code == 400 and spent.json()["error"] == "invalid_grant"

    running, code = device_login(cli, name, login="bob", password="any", expect_text="Sign-in Success",
                                 screenshots=tmp_path / "device", chromium=chromium_executable)
    assert code == 0, running.stderr
    assert cli("status", name).stdout.startswith(f"{name}: signed in as bob@example.test")
    assert stored(home, name)["refresh_token"]
