"""The generic OIDC provider: configuration only, against a strict OpenID Connect fake."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from oauth_core import tokens
from oauth_core.errors import SignInEnded
from oauth_core.testing.fake_oidc import FakeOIDC

from .conftest import write_config
from .test_plugins import make_dist


@pytest.fixture
def oidc():
    with FakeOIDC() as server:
        yield server


@pytest.fixture
def work(cli, home, oidc):
    """`oauth-hub config add-oidc work …`, as a person would set it up."""
    result = cli("config", "add-oidc", "work", "--issuer", oidc.issuer, "--client-id", oidc.client_id)
    assert result.returncode == 0, result.stderr
    assert "oauth-hub login work" in result.stderr
    return "work"


def stored(home) -> dict:
    return json.loads((home / "work_oauth.json").read_text())


def test_add_oidc_writes_the_table(cli, home, oidc, work):
    import tomllib

    table = tomllib.loads((home / "config.toml").read_text())["providers"]["work"]
    # No scopes key: they are chosen from the IdP's scopes_supported at each login.
    assert table == {"type": "oidc", "issuer": oidc.issuer, "client_id": oidc.client_id, "port": 0,
                     "redirect_path": "/callback"}
    rows = {row["name"]: row for row in cli("providers", "--json").json}
    assert rows["work"]["loaded"] and rows["work"]["source"] == "config"


def test_add_oidc_refuses_an_unreachable_issuer_and_writes_nothing(cli, home):
    result = cli("config", "add-oidc", "work", "--issuer", "http://127.0.0.1:9", "--client-id", "x")
    assert result.returncode == 1
    assert "Could not reach 127.0.0.1:9" in result.stderr and "Nothing was added" in result.stderr
    assert "work" not in (home / "config.toml").read_text()


def test_add_oidc_refuses_a_builtin_name(cli, home, oidc):
    result = cli("config", "add-oidc", "chatgpt", "--issuer", oidc.issuer, "--client-id", "x")
    assert result.returncode == 1 and "installed provider" in result.stderr


def test_login_verifies_the_id_token_and_everything_works(cli, home, oidc, work):
    result = cli("login", "work")
    assert result.returncode == 0, result.stderr
    authorize = urlsplit(cli.visited()[0])
    query = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    assert f"{authorize.scheme}://{authorize.netloc}{authorize.path}" == oidc.authorization_endpoint
    assert query["code_challenge_method"] == "S256" and query["nonce"] and query["state"]
    assert query["redirect_uri"].startswith("http://127.0.0.1:") and query["redirect_uri"].endswith("/callback")
    assert oidc.count(urlsplit(oidc.jwks_uri).path) >= 1  # the discovered JWKS, not a guessed path

    data = stored(home)
    claims = oidc.verify_jwt(data["id_token"])
    assert claims["nonce"] == query["nonce"]
    assert data["account"]["email"] == oidc.email and data["account"]["account_id"] == oidc.subject
    row = cli("status", "work", "--json").json[0]
    assert row["logged_in"] and row["email"] == oidc.email and row["models"] == []

    # Refresh rotates the refresh token.
    assert cli("refresh", "work").returncode == 0
    assert stored(home)["refresh_token"] != data["refresh_token"]
    assert cli("token", "work").stdout.strip() == stored(home)["access_token"]
    assert "export WORK_ACCESS_TOKEN=" in cli("env", "work").stdout

    # Logout revokes (RFC 7009) at the discovered endpoint.
    out = cli("logout", "work")
    assert out.returncode == 0 and "Revoked" in out.stderr
    assert oidc.count(urlsplit(oidc.revocation_endpoint).path) == 1


def _answer_with(oidc, *, forge=False, **claims):
    answer = oidc.mint_tokens(nonce="not-this-logins-nonce")
    body = oidc.verify_jwt(answer["id_token"])
    body.update(claims)
    answer["id_token"] = oidc.forge(body) if forge else oidc.sign(body)
    return answer


@pytest.mark.parametrize(("forge", "claims", "message"), [
    (True, {}, "bad signature"),
    (False, {}, "does not carry this login's nonce"),
    (False, {"aud": "another-client"}, "issued for another client"),
])
def test_a_tampered_or_replayed_id_token_is_refused(cli, home, oidc, work, forge, claims, message):
    oidc.fail_next(urlsplit(oidc.token_endpoint).path, 200, _answer_with(oidc, forge=forge, **claims))
    result = cli("login", "work")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert message in last and "oauth-hub login work" in last
    assert not (home / "work_oauth.json").exists()


def test_callback_from_another_issuer_is_refused(home, oidc, work):
    from oauth_core.errors import LoginError
    from oauth_core.login import _check_issuer
    from oauth_core.provider import Provider
    from oauth_core.store import Store

    provider = Provider.load("work", Store(home))
    from oauth_core.http import HttpClient

    provider.resolve(HttpClient())
    assert provider.settings["require_iss"] is True  # the fake advertises RFC 9207
    _check_issuer(provider, {"iss": oidc.issuer}, "x")
    with pytest.raises(LoginError, match="came back from 'https://evil.example'"):
        _check_issuer(provider, {"iss": "https://evil.example"}, "x")
    with pytest.raises(LoginError, match="without the issuer"):
        _check_issuer(provider, {}, "x")


def test_reused_refresh_token_ends_the_sign_in(cli, home, oidc, work):
    import requests

    assert cli("login", "work").returncode == 0
    data = stored(home)
    spent = requests.post(oidc.token_endpoint, data={"grant_type": "refresh_token", "client_id": oidc.client_id,
                                                     "refresh_token": data["refresh_token"]}, timeout=5)
    assert spent.status_code == 200
    before = (home / "work_oauth.json").read_bytes()
    with pytest.raises(SignInEnded, match="oauth-hub login work"):
        tokens.refresh_credentials("work", home=home, force=True)
    assert (home / "work_oauth.json").read_bytes() == before


def test_config_errors_are_clear(cli, home, oidc):
    write_config(home, "typo", type="odic", issuer=oidc.issuer, client_id="x")
    result = cli("login", "typo")
    assert result.returncode == 1 and "unknown type 'odic' (known: oidc)" in result.stderr
    write_config(home, "bare", type="oidc")
    result = cli("login", "bare")
    assert result.returncode == 1 and "config add-oidc bare" in result.stderr


# -- loading control ---------------------------------------------------------------------


def test_load_plugins_env_limits_third_party_providers(cli, tmp_path):
    site = tmp_path / "site"
    make_dist(site, "oauth-hub-one", {"one": "one_provider"},
              {"one_provider": "from oauth_core.hookspecs import hookimpl\n\n@hookimpl\ndef provider_defaults():\n"
                               "    return {'port': 1999}\n"})
    make_dist(site, "oauth-hub-two", {"two": "two_provider"}, {"two_provider": "raise ImportError('boom')\n"})
    cli.env["PYTHONPATH"] = str(site)

    def names(value=None):
        env = {} if value is None else {"OAUTH_HUB_LOAD_PLUGINS": value}
        return {row["name"] for row in cli("providers", "--json", env=env).json}

    builtins = {"chatgpt", "claude_code", "copilot", "openrouter"}
    assert {"one", "two"} | builtins <= names()
    assert names("") == builtins  # built-ins only
    assert names("one") == {"one"} | builtins  # the broken one is not even imported


def test_a_third_party_package_cannot_take_over_a_builtin_name(cli, tmp_path, chatgpt_home, idp):
    site = tmp_path / "site"
    make_dist(site, "oauth-hub-impostor", {"chatgpt": "impostor"},
              {"impostor": "raise SystemExit('the impostor was imported')\n"})
    cli.env["PYTHONPATH"] = str(site)
    human = cli("providers")
    assert human.returncode == 0  # a shadowed name is reported, but nothing is broken
    assert "FAILED" not in human.stdout and "note: oauth-hub-impostor 1.2.3 is not used" in human.stdout
    rows = cli("providers", "--json").json
    chatgpt = [r for r in rows if r["name"] == "chatgpt"]
    assert len(chatgpt) == 2
    used = next(r for r in chatgpt if r["loaded"])
    shadowed = next(r for r in chatgpt if not r["loaded"])
    assert used["distribution"] == "oauth-hub" and used["source"] == "built-in"
    assert shadowed["distribution"] == "oauth-hub-impostor"
    assert shadowed["error"] is None and shadowed["status"] == "not used"
    assert shadowed["note"] == "not used: the built-in provider of that name wins"
    login = cli("login", "chatgpt")
    assert login.returncode == 0  # the built-in ran; importing the impostor would have exited
    assert "impostor" not in login.stderr
