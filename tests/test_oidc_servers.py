"""What real OpenID Connect servers need of the config-only `oidc` provider (issue 11).

Each test sets FakeOIDC up the way one real server behaves (django-oauth-toolkit's
scopes and missing revocation metadata, panva oidc-provider's claims kept out of the ID
token, EdDSA or ES512 signatures, no refresh token, device sign-in) and runs the real
`oauth-hub` command against it, configured only with `config add-oidc` and `config set`.
tests/browser/test_oidc_servers_real.py does the same against the real servers.
"""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests

from oauth_core.idtoken import ALGORITHMS
from oauth_core.testing.fake_oidc import DEVICE_PATH, REVOKE_PATH, TOKEN_PATH, USERINFO_PATH, FakeOIDC

from .test_login_remote import Running

PROVIDER = "work"


def add(cli, fake: FakeOIDC, *extra: str):
    result = cli("config", "add-oidc", PROVIDER, "--issuer", fake.issuer, "--client-id", fake.client_id, *extra)
    return result


def added(cli, fake: FakeOIDC, *extra: str) -> str:
    result = add(cli, fake, *extra)
    assert result.returncode == 0, result.stderr
    return result.stderr


def stored(home) -> dict:
    return json.loads((home / f"{PROVIDER}_oauth.json").read_text())


def authorize_query(cli) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(cli.visited()[0]).query).items()}


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


# -- scopes --------------------------------------------------------------------------------


def test_default_scopes_are_the_ones_the_server_lists(cli, home):
    # django-oauth-toolkit lists openid, profile, email and answers invalid_scope to offline_access.
    with FakeOIDC(scopes_supported=["openid", "profile", "email", "read"]) as fake:
        said = added(cli, fake)
        assert "Scopes:      openid profile email (from its scopes_supported)" in said
        result = cli("login", PROVIDER)
        assert result.returncode == 0, result.stderr
        query = authorize_query(cli)
        assert query["scope"] == "openid profile email"
        assert "prompt" not in query  # prompt=consent goes with offline_access only
    with FakeOIDC() as fake:  # one that lists offline_access gets it asked for
        (home / "config.toml").unlink()
        cli.browser_log.unlink()
        added(cli, fake)
        assert cli("login", PROVIDER).returncode == 0
        query = authorize_query(cli)
        assert query["scope"] == "openid profile email offline_access" and query["prompt"] == "consent"
        assert stored(home)["refresh_token"]


def test_an_invalid_scope_names_the_setting_in_the_terminal_and_on_the_page(cli, home, tmp_path):
    page = tmp_path / "page.txt"
    with FakeOIDC(scopes_supported=["openid", "profile", "email"]) as fake:
        added(cli, fake, "--scopes", "openid email offline_access")
        result = cli("login", PROVIDER, env={"OAUTH_HUB_TEST_BROWSER_PAGE": str(page)})
    assert result.returncode == 1
    error = last_line(result.stderr)
    assert "invalid_scope" in error and "offline_access" in error
    assert f'oauth-hub config set {PROVIDER}.scopes "openid email"' in error and "--scopes" in error
    assert "It lists: openid profile email." in error
    status, text = page.read_text().split("\n", 1)
    assert status == "400" and "signed in" not in text
    assert error.removeprefix("Error: ") in text  # the page says what the terminal says
    assert not (home / f"{PROVIDER}_oauth.json").exists()


# -- endpoints -------------------------------------------------------------------------------


ENDPOINT_SETTINGS = ("authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint",
                     "revocation_endpoint", "device_authorization_endpoint")


def test_every_endpoint_can_be_set_with_config_set(cli, home):
    with FakeOIDC() as fake:
        added(cli, fake)
        for key in ENDPOINT_SETTINGS:
            result = cli("config", "set", f"{PROVIDER}.{key}", f"https://proxy.example/{key}")
            assert result.returncode == 0, result.stderr
            assert cli("config", "get", f"{PROVIDER}.{key}").stdout.strip() == f"https://proxy.example/{key}"


def test_logout_uses_a_configured_revocation_endpoint_when_discovery_has_none(cli, home):
    # django-oauth-toolkit revokes at /o/revoke_token/ but its discovery does not say so.
    with FakeOIDC(omit_from_discovery=["revocation_endpoint"]) as fake:
        said = added(cli, fake)
        assert "Revocation:  none advertised" in said
        assert f"oauth-hub config set {PROVIDER}.revocation_endpoint URL" in said
        assert cli("login", PROVIDER).returncode == 0
        out = cli("logout", PROVIDER)
        assert "offers no way to revoke" in out.stderr and fake.count(REVOKE_PATH) == 0

        assert cli("login", PROVIDER).returncode == 0
        refresh_token = stored(home)["refresh_token"]
        assert cli("config", "set", f"{PROVIDER}.revocation_endpoint", fake.revocation_endpoint).returncode == 0
        out = cli("logout", PROVIDER)
        assert out.returncode == 0 and "Revoked" in out.stderr
        assert [r.form["token"] for r in fake.requests_to(REVOKE_PATH)] == [refresh_token]
        spent = requests.post(fake.token_endpoint, timeout=5, data={
            "grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": fake.client_id})
        assert spent.status_code == 400 and spent.json()["error"] == "invalid_grant"


# -- ID token algorithms -------------------------------------------------------------------


def test_the_accepted_algorithms_are_every_asymmetric_one_pyjwt_verifies():
    # ES521 is PyJWT's own alias of ES512, not a JOSE name no server would send.
    assert set(ALGORITHMS) == set(jwt.algorithms.requires_cryptography) - {"ES521"}
    assert not any(alg.startswith("HS") or alg == "none" for alg in ALGORITHMS)


@pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
                                 "ES256K", "EdDSA"])
def test_id_tokens_signed_with_any_asymmetric_algorithm_are_accepted(cli, home, alg):
    with FakeOIDC(signing_alg=alg) as fake:
        added(cli, fake)
        result = cli("login", PROVIDER)
        assert result.returncode == 0, result.stderr
        id_token = stored(home)["id_token"]
        assert jwt.get_unverified_header(id_token)["alg"] == alg
        assert fake.count(urlsplit(fake.jwks_uri).path) >= 1
        assert stored(home)["account"]["email"] == fake.email
        # And a token signed by another key of the same algorithm is still refused.
        answer = fake.mint_tokens()
        answer["id_token"] = fake.forge(fake.verify_jwt(answer["id_token"]))
        fake.fail_next(TOKEN_PATH, 200, answer)
        (home / f"{PROVIDER}_oauth.json").unlink()
        refused = cli("login", PROVIDER)
        assert refused.returncode == 1 and "bad signature" in last_line(refused.stderr)


def test_ed448_is_accepted_too(cli, home):
    from oauth_core.testing.jwt_keys import SigningKey

    with FakeOIDC(signing_key=SigningKey(alg="EdDSA", curve="Ed448")) as fake:
        added(cli, fake)
        assert cli("login", PROVIDER).returncode == 0
        assert stored(home)["account"]["email"] == fake.email


@pytest.mark.parametrize("offered", [["HS256"], ["none"], ["HS256", "HS512"]])
def test_add_oidc_refuses_a_server_whose_id_tokens_cannot_be_verified(cli, home, offered):
    with FakeOIDC(id_token_signing_alg_values=offered) as fake:
        result = add(cli, fake)
    assert result.returncode == 1
    error = last_line(result.stderr)
    assert f"signs ID tokens only with {', '.join(offered)}" in error
    assert "RS256" in error and f"config set {PROVIDER}.verify_id_token false" in error
    assert "Nothing was added" in error
    assert not (home / "config.toml").exists() or PROVIDER not in (home / "config.toml").read_text()


def test_add_oidc_accepts_a_server_that_offers_one_usable_algorithm(cli, home):
    with FakeOIDC(signing_alg="ES512", id_token_signing_alg_values=["HS256", "ES512"]) as fake:
        added(cli, fake)
        assert cli("login", PROVIDER).returncode == 0


# -- userinfo ----------------------------------------------------------------------------------


def test_the_email_comes_from_userinfo_when_the_id_token_has_none(cli, home):
    # panva's oidc-provider by default puts the scope's claims at userinfo only.
    with FakeOIDC(claims_in_id_token=False) as fake:
        added(cli, fake)
        assert cli("login", PROVIDER).returncode == 0
        assert "email" not in fake.verify_jwt(stored(home)["id_token"])
        [call] = fake.requests_to(USERINFO_PATH)
        assert call.headers["authorization"] == f"Bearer {stored(home)['access_token']}"
        status = cli("status", PROVIDER)
        assert f"{PROVIDER}: signed in as {fake.email}" in status.stdout
        assert stored(home)["account"] == {"email": fake.email, "account_id": fake.subject, "name": fake.name}
        # A refresh keeps what userinfo said, without asking again.
        assert cli("refresh", PROVIDER).returncode == 0
        assert stored(home)["account"]["email"] == fake.email and fake.count(USERINFO_PATH) == 1


def test_userinfo_about_another_subject_is_not_used(cli, home):
    with FakeOIDC(claims_in_id_token=False) as fake:
        added(cli, fake)
        fake.fail_next(USERINFO_PATH, 200, {"sub": "someone-else", "email": "attacker@example.com"})
        login = cli("login", PROVIDER)
        assert login.returncode == 0
        assert "userinfo endpoint answered about another user" in login.stderr  # a warning, not a failure
        assert stored(home)["account"] == {"account_id": fake.subject}
        shown = cli("status", PROVIDER).stdout
        # No email was learnt, so status names the ID token's subject, never the other user's address.
        assert f"signed in as {fake.subject}" in shown and "attacker@example.com" not in shown


# -- no refresh token ------------------------------------------------------------------------


def test_a_sign_in_without_refresh_token_warns_and_serves_the_token_until_it_expires(cli, home):
    with FakeOIDC(issue_refresh_token=False) as fake:
        added(cli, fake)
        login = cli("login", PROVIDER)
        assert login.returncode == 0, login.stderr
        assert "Warning: work issued no refresh token, so this sign-in ends in about 60 minutes; " \
               "then run `oauth-hub login work` again." in login.stderr
        data = stored(home)
        assert "refresh_token" not in data or data["refresh_token"] is None

        token = cli("token", PROVIDER)
        assert token.returncode == 0 and token.stdout.strip() == data["access_token"]
        assert "refresh:  none" in cli("status", PROVIDER).stdout
        # Two minutes left, when a refreshable sign-in would be refreshed: this one's token is still handed out.
        data["expires_at"] = time.time() + 120
        data["last_refresh"] = "2020-01-01T00:00:00Z"  # an old sign-in: a refreshable one would be due
        (home / f"{PROVIDER}_oauth.json").write_text(json.dumps(data))
        token = cli("token", PROVIDER)
        assert token.returncode == 0 and token.stdout.strip() == data["access_token"], token.stderr
        assert cli("status", PROVIDER, "--json").json[0]["can_refresh"] is False

        # The access token ran out: no refresh is tried, and the error says what to do.
        data["expires_at"] = time.time() - 10
        (home / f"{PROVIDER}_oauth.json").write_text(json.dumps(data))
        before = (home / f"{PROVIDER}_oauth.json").read_bytes()
        expired = cli("token", PROVIDER)
        assert expired.returncode == 1 and expired.stdout == ""
        assert last_line(expired.stderr) == (
            "Error: The work sign-in has expired and came without a refresh token, so it cannot be renewed. "
            "Run `oauth-hub login work` to sign in again.")
        assert fake.count(TOKEN_PATH, "refresh_token") == 0
        assert (home / f"{PROVIDER}_oauth.json").read_bytes() == before
        assert "expired (no refresh token: run `oauth-hub login work`)" in cli("status", PROVIDER).stdout


# -- status --json -----------------------------------------------------------------------------


def test_status_json_of_a_provider_not_signed_in_exits_1(cli, home):
    with FakeOIDC() as fake:
        added(cli, fake)
        result = cli("status", PROVIDER, "--json")
        assert result.returncode == 1 and result.json[0]["logged_in"] is False
        assert cli("status", PROVIDER).returncode == 1
        assert cli("login", PROVIDER).returncode == 0
        assert cli("status", PROVIDER, "--json").returncode == 0


# -- the callback page says what the terminal says -------------------------------------------


@pytest.mark.parametrize(("callback_iss", "message"), [
    ("https://evil.example", "came back from 'https://evil.example'"),
    ("", "came back without the issuer"),
])
def test_a_refused_callback_does_not_say_signed_in(cli, home, tmp_path, callback_iss, message):
    page = tmp_path / "page.txt"
    with FakeOIDC(callback_iss=callback_iss) as fake:
        added(cli, fake)
        result = cli("login", PROVIDER, env={"OAUTH_HUB_TEST_BROWSER_PAGE": str(page)})
        assert fake.count(TOKEN_PATH) == 0  # the code was never exchanged
    assert result.returncode == 1
    error = last_line(result.stderr)
    assert message in error
    status, text = page.read_text().split("\n", 1)
    assert status == "400" and "signed in" not in text.replace("sign in again", "")
    assert error.removeprefix("Error: ") in text


# -- device sign-in (RFC 8628) -----------------------------------------------------------------


def approve_at_page(verification_uri: str, user_code: str, decision: str = "approve") -> None:
    """What the person does on their phone: open the page, type the code, press a button."""
    page = requests.get(verification_uri, timeout=5)
    assert page.status_code == 200 and 'name="user_code"' in page.text
    answer = requests.post(verification_uri, data={"user_code": user_code, "decision": decision}, timeout=5)
    assert answer.status_code == 200, answer.text


def device_login(cli, fake: FakeOIDC, decision: str | None = "approve") -> tuple[Running, int]:
    login = Running(cli, "login", PROVIDER, "--device")
    code = login.wait_for(r"enter the code:\s+(\S+)").group(1)
    uri = login.wait_for(r"open this page on any device:\s+(\S+)").group(1)
    assert uri == fake.verification_uri
    if decision:
        approve_at_page(uri, code, decision)
    return login, login.finish(timeout=60)


@pytest.fixture
def device_fake():
    with FakeOIDC(device_interval=1) as fake:
        yield fake


def test_device_sign_in(cli, home, device_fake):
    added(cli, device_fake)
    login, code = device_login(cli, device_fake)
    assert code == 0, login.stderr
    assert stored(home)["account"]["email"] == device_fake.email
    assert device_fake.device_poll_answers[-1] == "tokens"
    assert set(device_fake.device_poll_answers[:-1]) <= {"authorization_pending"}
    [request] = device_fake.requests_to("/device_authorization")
    assert request.form == {"client_id": device_fake.client_id, "scope": "openid profile email offline_access"}


def test_device_sign_in_slows_down_when_told(cli, home, device_fake):
    added(cli, device_fake)
    device_fake.force_slow_down = 1
    login, code = device_login(cli, device_fake)
    assert code == 0, login.stderr
    # The fake answers slow_down again to a poll that comes sooner than interval + 5 s.
    assert device_fake.device_poll_answers.count("slow_down") == 1
    assert device_fake.device_poll_answers[-1] == "tokens"


def test_device_sign_in_denied(cli, home, device_fake):
    added(cli, device_fake)
    login, code = device_login(cli, device_fake, decision="deny")
    assert code == 1
    assert last_line(login.stderr) == ("Error: The sign-in was denied on the device page. "
                                       "Run `oauth-hub login work --device` to try again.")
    assert not (home / f"{PROVIDER}_oauth.json").exists()


def test_device_code_expired(cli, home, device_fake):
    added(cli, device_fake)
    login = Running(cli, "login", PROVIDER, "--device")
    login.wait_for("enter the code")
    device_fake.clock_offset += 3600  # the code's ten minutes pass at the server
    assert login.finish(timeout=60) == 1
    assert "The device code expired before it was approved" in last_line(login.stderr)
    assert device_fake.device_poll_answers[-1] == "expired_token"


def test_device_sign_in_needs_an_advertised_or_configured_endpoint(cli, home):
    with FakeOIDC(omit_from_discovery=["device_authorization_endpoint"], device_interval=1) as fake:
        said = added(cli, fake)
        assert "Device code: none advertised" in said
        result = cli("login", PROVIDER, "--device")
        assert result.returncode == 1
        assert f"oauth-hub config set {PROVIDER}.device_authorization_endpoint URL" in last_line(result.stderr)
        assert cli("config", "set", f"{PROVIDER}.device_authorization_endpoint",
                   fake.device_authorization_endpoint).returncode == 0
        login, code = device_login(cli, fake)
        assert code == 0, login.stderr
        assert fake.verification_uri.endswith(DEVICE_PATH)


# -- cosmetics -------------------------------------------------------------------------------


def test_the_wait_names_the_host_of_the_redirect_uri(cli, home):
    with FakeOIDC() as fake:
        added(cli, fake)
        assert cli("config", "set", f"{PROVIDER}.redirect_host", "localhost").returncode == 0
        result = cli("login", PROVIDER)
        assert result.returncode == 0, result.stderr
        assert authorize_query(cli)["redirect_uri"].startswith("http://localhost:")
        assert "Waiting for the sign-in on http://localhost:" in result.stderr
        assert "http://127.0.0.1:" not in result.stderr.split("Waiting for the sign-in on", 1)[1].splitlines()[0]


def test_an_http_error_without_an_oauth_body_names_the_status_once(cli, home):
    with FakeOIDC() as fake:
        fake.fail_next("/.well-known/openid-configuration", 404, "<html>Not Found</html>", times=3)
        result = add(cli, fake)
    assert result.returncode == 1
    error = last_line(result.stderr)
    assert "refused the OpenID discovery (HTTP 404)." in error and error.count("HTTP 404") == 1


def test_a_token_endpoint_invalid_scope_gets_the_advice_too(cli, home):
    with FakeOIDC() as fake:
        added(cli, fake)
        fake.fail_next(TOKEN_PATH, 400, {"error": "invalid_scope", "error_description": "offline_access"})
        result = cli("login", PROVIDER)
    assert result.returncode == 1
    error = last_line(result.stderr)
    assert "invalid_scope" in error and f"oauth-hub config set {PROVIDER}.scopes" in error
    assert "Nothing was saved" in error


def test_status_of_an_expired_token_reads_well(cli, home):
    with FakeOIDC() as fake:
        added(cli, fake)
        assert cli("login", PROVIDER).returncode == 0
        data = stored(home)
        data["expires_at"] = time.time() - 60
        (home / f"{PROVIDER}_oauth.json").write_text(json.dumps(data))
        fake.fail_next(TOKEN_PATH, 503, times=10)  # the refresh status tries cannot happen now
        status = cli("status", PROVIDER)
    assert "  token:    expired (refreshed on next use) (" in status.stdout
    assert "expires expired" not in status.stdout and "problem:" in status.stdout


def test_device_sign_in_of_a_confidential_client_authenticates_it(cli, home):
    with FakeOIDC(client_secret="s3cret: with %chars", device_interval=1) as fake:
        added(cli, fake)
        assert cli("config", "set", f"{PROVIDER}.client_secret", "-", stdin="s3cret: with %chars\n").returncode == 0
        login, code = device_login(cli, fake)
        assert code == 0, login.stderr
        for path in ("/device_authorization", TOKEN_PATH):
            assert all(r.headers["authorization"].startswith("Basic ") for r in fake.requests_to(path))
