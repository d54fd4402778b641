"""Confidential clients: RFC 6749 §2.3.1 client authentication, and secrets kept out of `config show`.

The OIDC provider signs in against FakeOIDC configured as a confidential client, which
refuses a missing, wrong or doubled client authentication the way a real server does
(401 ``invalid_client``).
"""

from __future__ import annotations

import base64
from urllib.parse import unquote_plus

import pytest

import oauth_core
from oauth_core.client_auth import authenticate_client, basic_authorization, client_auth_method
from oauth_core.errors import ConfigError
from oauth_core.testing.fake_oidc import REVOKE_PATH, TOKEN_PATH, FakeOIDC

from .conftest import write_config

SECRET = "s3cr:et%+ with spaces/ünï"  # every character that hand-written Basic auth gets wrong


def decode_basic(header: str) -> tuple[str, str]:
    """What a server does with client_secret_basic (RFC 6749 §2.3.1): base64, split, form-decode."""
    scheme, _, value = header.partition(" ")
    assert scheme == "Basic"
    user, _, password = base64.b64decode(value).decode("utf-8").partition(":")
    return unquote_plus(user), unquote_plus(password)


def test_basic_authorization_form_encodes_both_halves():
    header = basic_authorization("my client:1", SECRET)
    assert base64.b64decode(header.split()[1]).decode() == "my+client%3A1:s3cr%3Aet%25%2B+with+spaces%2F%C3%BCn%C3%AF"
    assert decode_basic(header) == ("my client:1", SECRET)


@pytest.mark.parametrize(("settings", "method"), [
    ({}, "none"),
    ({"client_secret": "x"}, "client_secret_basic"),
    ({"client_secret": "x", "token_endpoint_auth_methods_supported": ["client_secret_post"]}, "client_secret_post"),
    ({"client_secret": "x", "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"]},
     "client_secret_basic"),
    ({"client_secret": "x", "token_endpoint_auth_method": "client_secret_post"}, "client_secret_post"),
    ({"client_secret": "x", "token_endpoint_auth_method": "none"}, "none"),
])
def test_the_method_follows_the_settings(settings, method):
    assert client_auth_method({"name": "p", "client_id": "c", **settings}) == method


def test_a_method_that_needs_a_secret_says_how_to_set_it():
    with pytest.raises(ConfigError, match=r"p authenticates with client_secret_post but has no client secret.*"
                                          r"oauth-hub config set p.client_secret -"):
        client_auth_method({"name": "p", "token_endpoint_auth_method": "client_secret_post"})
    with pytest.raises(ConfigError, match="'magic' is not one of none, client_secret_basic, client_secret_post"):
        client_auth_method({"name": "p", "token_endpoint_auth_method": "magic", "client_secret": "x"})


def test_each_request_uses_exactly_one_method():
    form = {"grant_type": "refresh_token", "refresh_token": "rt", "client_id": "stale", "client_secret": "stale"}
    basic = authenticate_client({"client_id": "c", "client_secret": SECRET}, form, {"Accept": "application/json"})
    assert basic["form"] == {"grant_type": "refresh_token", "refresh_token": "rt"}
    assert decode_basic(basic["headers"]["Authorization"]) == ("c", SECRET)
    assert basic["headers"]["Accept"] == "application/json"
    post = authenticate_client({"client_id": "c", "client_secret": SECRET,
                                "token_endpoint_auth_method": "client_secret_post"}, form)
    assert post == {"form": {"grant_type": "refresh_token", "refresh_token": "rt", "client_id": "c",
                             "client_secret": SECRET}, "headers": {}}
    public = authenticate_client({"client_id": "c"}, form)
    assert public == {"form": {"grant_type": "refresh_token", "refresh_token": "rt", "client_id": "c"}, "headers": {}}
    assert oauth_core.authenticate_client is authenticate_client  # a public name for plugins


@pytest.fixture
def confidential():
    with FakeOIDC(client_id="work-app", client_secret=SECRET) as server:
        yield server


def set_secret(cli, value: str):
    return cli("config", "set", "work.client_secret", "-", stdin=value + "\n")


@pytest.mark.parametrize("method", ["", "client_secret_basic", "client_secret_post"])
def test_oidc_login_refresh_logout_as_a_confidential_client(cli, home, confidential, method):
    added = cli("config", "add-oidc", "work", "--issuer", confidential.issuer, "--client-id", "work-app")
    assert added.returncode == 0, added.stderr
    assert set_secret(cli, SECRET).returncode == 0
    if method:
        assert cli("config", "set", "work.token_endpoint_auth_method", method).returncode == 0

    assert cli("login", "work").returncode == 0, cli.visited()
    assert cli("refresh", "work").returncode == 0
    assert cli("logout", "work").returncode == 0

    token_requests = confidential.requests_to(TOKEN_PATH)
    assert [r.form["grant_type"] for r in token_requests] == ["authorization_code", "refresh_token"]
    for request in [*token_requests, *confidential.requests_to(REVOKE_PATH)]:
        assert request.status == 200
        if method == "client_secret_post":
            assert "authorization" not in request.headers
            assert (request.form["client_id"], request.form["client_secret"]) == ("work-app", SECRET)
        else:  # basic is the default for a client with a secret
            assert decode_basic(request.headers["authorization"]) == ("work-app", SECRET)
            assert "client_secret" not in request.form and "client_id" not in request.form
    assert len(confidential.requests_to(REVOKE_PATH)) == 1


def test_a_wrong_secret_is_refused_by_the_idp_and_nothing_is_stored(cli, home, confidential):
    assert cli("config", "add-oidc", "work", "--issuer", confidential.issuer, "--client-id", "work-app",
               ).returncode == 0
    assert set_secret(cli, "not-the-secret").returncode == 0
    result = cli("login", "work")
    assert result.returncode == 1 and "invalid_client" in result.stderr
    assert "not-the-secret" not in result.stderr
    assert not (home / "work_oauth.json").exists()


def test_a_refresh_refused_for_the_clients_credentials_keeps_the_sign_in(cli, home, confidential):
    assert cli("config", "add-oidc", "work", "--issuer", confidential.issuer, "--client-id", "work-app",
               ).returncode == 0
    assert set_secret(cli, SECRET).returncode == 0
    assert cli("login", "work").returncode == 0
    before = (home / "work_oauth.json").read_bytes()
    assert set_secret(cli, "rotated-by-the-admin").returncode == 0
    result = cli("refresh", "work")
    assert result.returncode == 1
    assert "refused work's client credentials (invalid_client)" in result.stderr and "sign-in has ended" not in \
        result.stderr
    assert (home / "work_oauth.json").read_bytes() == before


def test_config_show_masks_secrets_and_get_prints_one_on_request(cli, home, confidential):
    assert cli("config", "add-oidc", "work", "--issuer", confidential.issuer, "--client-id", "work-app",
               "--no-check").returncode == 0
    stored = set_secret(cli, SECRET)
    assert stored.returncode == 0 and SECRET not in stored.stderr and "client_secret = ********" in stored.stderr
    assert SECRET in (home / "config.toml").read_text()  # the file (mode 0600) holds it

    human = cli("config", "show", "work")
    assert SECRET not in human.stdout and 'client_secret = "********"' in human.stdout
    everything = cli("config", "show", "--json")
    assert SECRET not in everything.stdout
    assert everything.json["work"]["client_secret"] == "********"
    assert everything.json["work"]["client_id"] == "work-app"  # only secrets are masked
    assert cli("config", "get", "work.client_secret").stdout.strip() == SECRET


def test_providers_mark_their_own_secret_settings(cli, home, tmp_path):
    from .test_plugin_loading import make_dist

    site = tmp_path / "site"
    make_dist(site, "oauth-hub-vault", {"oauth_hub.providers": {"vault": "vault_provider"}}, {"vault_provider": """
from oauth_core import hookimpl

@hookimpl
def provider_defaults():
    return {"port": 0, "api_token": "", "region": "eu", "secret_settings": ["api_token"]}
"""})
    cli.env["PYTHONPATH"] = str(site)
    write_config(home, "vault", api_token="tok-0123456789abcdef", region="us")
    shown = cli("config", "show", "vault", "--json")
    assert shown.returncode == 0, shown.stderr
    settings = shown.json["vault"]
    assert settings["api_token"] == "********" and settings["region"] == "us"
    assert "tok-0123456789abcdef" not in shown.stdout
    assert cli("config", "get", "vault.api_token").stdout.strip() == "tok-0123456789abcdef"
