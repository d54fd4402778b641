"""The Acme provider and exporter, tested the way oauth-hub tests its own: the real CLI,
a real (fake) identity server on 127.0.0.1, and a scripted browser. Nothing is mocked.

The fake is a *confidential* client's server: it refuses any token or revocation
request that does not prove the client secret (401 ``invalid_client``).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tomllib
from urllib.parse import unquote_plus

import pytest

from oauth_core.testing.browser import browser_command
from oauth_core.testing.fake_oidc import FakeOIDC

SECRET = "acme-secret:with%odd+chars"  # what a hand-made Basic header gets wrong


@pytest.fixture
def idp():
    with FakeOIDC(client_id="oauth-hub-acme", client_secret=SECRET) as server:
        yield server


@pytest.fixture
def home(tmp_path, idp):
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    settings = {"authorize_url": idp.authorization_endpoint, "token_url": idp.token_endpoint,
                "revoke_url": idp.revocation_endpoint}
    for key, value in settings.items():
        assert oauth_hub(home, "config", "set", f"acme.{key}", value).returncode == 0
    stored = oauth_hub(home, "config", "set", "acme.client_secret", "-", stdin=SECRET + "\n")
    assert stored.returncode == 0 and SECRET not in stored.stderr
    return home


def oauth_hub(home, *args, stdin=None):
    env = dict(os.environ, OAUTH_HUB_HOME=str(home), BROWSER=browser_command(), NO_COLOR="1")
    return subprocess.run([sys.executable, "-m", "oauth_hub", *args], env=env, capture_output=True, text=True,
                          timeout=60, input=stdin)


def client_of(request):
    """The client id and secret a token request proved, read the way the server reads them."""
    scheme, _, value = request.headers["authorization"].partition(" ")
    assert scheme == "Basic" and "client_secret" not in request.form
    user, _, password = base64.b64decode(value).decode().partition(":")
    return unquote_plus(user), unquote_plus(password)


def test_listed_with_its_version(home):
    rows = {row["name"]: row for row in json.loads(oauth_hub(home, "providers", "--json").stdout)}
    assert rows["acme"]["distribution"] == "oauth-hub-acme"
    assert rows["acme"]["version"] == "0.4.0"
    assert rows["acme"]["loaded"] is True
    assert {"browser login", "refresh", "revocation", "models"} <= set(rows["acme"]["capabilities"])
    tools = {row["name"]: row for row in json.loads(oauth_hub(home, "export", "--list", "--json").stdout)}
    assert tools["acme-cli"]["format"] == "toml" and tools["acme-cli"]["error"] is None


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

    # Every request to the token and revocation endpoints proved the client secret.
    proved = [client_of(r) for r in idp.requests_to("/token") + idp.requests_to("/revoke")]
    assert len(proved) == 3 and set(proved) == {("oauth-hub-acme", SECRET)}


def test_the_secret_is_masked(home):
    shown = oauth_hub(home, "config", "show", "acme", "--json")
    assert SECRET not in shown.stdout and json.loads(shown.stdout)["acme"]["client_secret"] == "********"


MY_CONFIG = """\
# Acme CLI settings, by hand
editor = "vim"  # keep

[models.local]  # my own model
model = "llama"
"""


def test_export_to_the_acme_cli_keeps_the_file_and_logout_removes_ours(home, tmp_path):
    assert oauth_hub(home, "login", "acme").returncode == 0
    target = tmp_path / "acme" / "config.toml"
    target.parent.mkdir()
    target.write_text(MY_CONFIG)
    export = oauth_hub(home, "export", "acme", "--to", "acme-cli", "--output", str(target))
    assert export.returncode == 0, export.stderr

    data = tomllib.loads(target.read_text())
    ours = {name: entry for name, entry in data["models"].items() if entry.get("oauth_source") == "oauth-hub:acme"}
    assert sorted(ours) == ["acme-acme-large", "acme-acme-small"]
    assert all(entry["api_key"] == "${OAUTH_HUB_SERVE_KEY}" and entry["wire_api"] == "chat" for entry in ours.values())
    assert data["models"]["local"] == {"model": "llama"} and data["editor"] == "vim"
    assert "# keep" in target.read_text() and "# my own model" in target.read_text()

    assert oauth_hub(home, "logout", "acme").returncode == 0
    after = target.read_text()
    assert tomllib.loads(after) == {"editor": "vim", "models": {"local": {"model": "llama"}}}
    assert after.startswith("# Acme CLI settings, by hand\n") and "# my own model" in after
