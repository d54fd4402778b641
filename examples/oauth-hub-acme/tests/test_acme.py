"""The Acme provider, tested the way oauth-hub tests its own: the real CLI, a real
(fake) identity server on 127.0.0.1, and a scripted browser. Nothing is mocked."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import tomli_w

from oauth_core.testing.browser import browser_command
from oauth_core.testing.fake_oidc import FakeOIDC


@pytest.fixture
def idp():
    with FakeOIDC(client_id="oauth-hub-acme") as server:
        yield server


@pytest.fixture
def home(tmp_path, idp):
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    table = {"authorize_url": idp.authorization_endpoint, "token_url": idp.token_endpoint,
             "revoke_url": idp.revocation_endpoint}
    (home / "config.toml").write_text(tomli_w.dumps({"providers": {"acme": table}}))
    return home


def oauth_hub(home, *args):
    env = dict(os.environ, OAUTH_HUB_HOME=str(home), BROWSER=browser_command(), NO_COLOR="1")
    return subprocess.run([sys.executable, "-m", "oauth_hub", *args], env=env, capture_output=True, text=True,
                          timeout=60)


def test_listed_with_its_version(home):
    rows = {row["name"]: row for row in json.loads(oauth_hub(home, "providers", "--json").stdout)}
    assert rows["acme"]["distribution"] == "oauth-hub-acme"
    assert rows["acme"]["version"] == "0.3.1"
    assert rows["acme"]["loaded"] is True


def test_login_status_refresh_logout(home, idp):
    result = oauth_hub(home, "login", "acme")
    assert result.returncode == 0, result.stderr
    stored = json.loads((home / "acme_oauth.json").read_text())
    assert stored["refresh_token"] and stored["account"]["email"]
    assert sorted(json.loads((home / "acme_models.json").read_text())) == ["acme-acme-large", "acme-acme-small"]

    status = json.loads(oauth_hub(home, "status", "acme", "--json").stdout)[0]
    assert status["logged_in"] and status["email"] == stored["account"]["email"]

    assert oauth_hub(home, "refresh", "acme").returncode == 0
    assert json.loads((home / "acme_oauth.json").read_text())["refresh_token"] != stored["refresh_token"]

    assert oauth_hub(home, "logout", "acme").returncode == 0
    assert idp.count("/revoke") == 1
    assert not (home / "acme_oauth.json").exists()
