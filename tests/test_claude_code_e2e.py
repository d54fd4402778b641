"""`oauth-hub login claude_code` end to end against the fake Anthropic IdP and API."""

from __future__ import annotations

import html
import json
import re
import stat
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from oauth_core import tokens
from oauth_core.auth import OAuthHubAuth
from oauth_core.errors import SignInEnded
from oauth_core.testing.seed import seed_sign_in

from .conftest import write_config
from .test_login_remote import Running


def stored(home) -> dict:
    return json.loads((home / "claude_code_oauth.json").read_text())


def models(home) -> dict:
    return json.loads((home / "claude_code_models.json").read_text())


def test_subscription_login_status_token_logout(cli, claude_home, anthropic):
    result = cli("login", "claude_code")
    assert result.returncode == 0, result.stderr

    authorize = urlsplit(cli.visited()[0])
    query = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    assert query["code"] == "true" and query["response_type"] == "code"
    assert query["client_id"] == "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
    assert query["scope"] == "org:create_api_key user:profile user:inference"
    assert query["code_challenge_method"] == "S256"
    assert re.fullmatch(r"http://localhost:(87[6-9]\d)/callback", query["redirect_uri"])

    # JSON code exchange carrying state.
    (exchange,) = [r for r in anthropic.requests_to("/v1/oauth/token") if r.json]
    assert exchange.json["grant_type"] == "authorization_code" and exchange.json["state"] == query["state"]
    assert exchange.json["redirect_uri"] == query["redirect_uri"]

    # A Pro/Max account: the API key is refused, which is a warning, not a failure.
    assert "Warning: No API key" in result.stderr and "permission_error" in result.stderr
    data = stored(claude_home)
    assert stat.S_IMODE((claude_home / "claude_code_oauth.json").stat().st_mode) == 0o600
    assert data["access_token"].startswith("sk-ant-oat01-") and not data.get("api_key")
    assert data["account"]["email"] == anthropic.email
    assert data["expires_at"] > time.time() + 28000

    entries = models(claude_home)
    assert entries and all(name.startswith("claude-code-") for name in entries)
    listed = {m["id"] for m in anthropic.models}
    assert {e["name"] for e in entries.values()} == listed
    entry = next(iter(entries.values()))
    assert entry["type"] == "claude_code" and entry["auth"] == "oauth_bearer"
    assert entry["custom_endpoint"]["headers"]["anthropic-beta"] == "oauth-2025-04-20"
    models_call = anthropic.requests_to("/v1/models")[-1]
    assert models_call.headers["authorization"] == f"Bearer {data['access_token']}"
    assert "oauth-2025-04-20" in models_call.headers["anthropic-beta"]

    row = cli("status", "claude_code", "--json").json[0]
    assert row["logged_in"] and row["email"] == anthropic.email and row["has_api_key"] is False
    assert sorted(row["models"]) == sorted(entries)
    assert cli("token", "claude_code").stdout.strip() == data["access_token"]
    assert cli("token", "claude_code", "--api-key").returncode == 1

    env = cli("env", "claude_code").stdout
    assert f"export CLAUDE_CODE_OAUTH_TOKEN={data['access_token']}" in env and "ANTHROPIC_API_KEY" not in env

    out = cli("logout", "claude_code")
    assert out.returncode == 0, out.stderr
    assert "offers no way to revoke" in out.stderr
    assert sorted(p.name for p in claude_home.iterdir()) == ["config.toml"]


def test_console_account_gets_an_api_key(cli, claude_home, anthropic):
    anthropic.api_key_allowed = True
    result = cli("login", "claude_code")
    assert result.returncode == 0, result.stderr
    data = stored(claude_home)
    assert data["api_key"] in anthropic.issued_api_keys
    models_call = anthropic.requests_to("/v1/models")[-1]
    assert models_call.headers["x-api-key"] == data["api_key"]
    assert "authorization" not in models_call.headers
    entry = next(iter(models(claude_home).values()))
    assert entry["type"] == "anthropic" and entry["custom_endpoint"]["api_key"] == "$ANTHROPIC_API_KEY"
    assert cli("token", "claude_code", "--api-key").stdout.strip() == data["api_key"]
    assert f"export ANTHROPIC_API_KEY={data['api_key']}" in cli("env", "claude_code").stdout


def test_manual_login_pastes_code_hash_state(cli, claude_home, anthropic):
    login = Running(cli, "login", "claude_code", "--manual", "--no-browser")
    url = login.wait_for(r"(http://\S+/oauth/authorize\?\S+)").group(1)
    login.wait_for("the page shows a code")
    assert parse_qs(urlsplit(url).query)["redirect_uri"] == [anthropic.manual_redirect_uri]
    page = requests.get(url, timeout=5)  # follows to the page that shows code#state
    assert page.status_code == 200
    shown = html.unescape(re.search(r"<code[^>]*>([^<]+)</code>", page.text).group(1)).strip()
    assert "#" in shown
    code, state = shown.split("#", 1)
    login.paste(f"{code}#wrong-state")
    login.wait_for("does not match")
    login.paste(shown)
    assert login.finish() == 0, login.stderr
    (exchange,) = [r for r in anthropic.requests_to("/v1/oauth/token") if r.json]
    assert exchange.json["code"] == code and exchange.json["state"] == state
    assert exchange.json["redirect_uri"] == anthropic.manual_redirect_uri
    assert stored(claude_home)["access_token"]


def test_manual_mode_is_refused_for_a_provider_without_one(cli, chatgpt_home, idp):
    result = cli("login", "chatgpt", "--manual")
    assert result.returncode == 1
    assert "no copy-the-code sign-in" in result.stderr and "--device" in result.stderr


def test_refresh_sends_json_with_beta_header_and_keeps_identity(claude_home, anthropic):
    anthropic.refresh_omits = ("refresh_token",)
    seeded = seed_sign_in("claude_code", anthropic.mint_tokens(), home=claude_home, expires_at=time.time() - 5)
    assert seeded.account["email"] == anthropic.email
    token = tokens.get_token("claude_code", home=claude_home)
    assert token != seeded.access_token
    (refresh,) = [r for r in anthropic.requests_to("/v1/oauth/token") if (r.json or {}).get("grant_type") ==
                  "refresh_token"]
    assert refresh.json == {"grant_type": "refresh_token", "client_id": "9d1c250a-e61b-44d9-88ed-5944d1962f5e",
                            "refresh_token": seeded.refresh_token}
    assert refresh.headers["anthropic-beta"] == "oauth-2025-04-20"
    after = stored(claude_home)
    assert after["refresh_token"] == seeded.refresh_token  # omitted from the answer: kept
    assert after["account"]["email"] == anthropic.email
    assert after["expires_at"] > time.time() + 28000


def test_reused_refresh_token_ends_the_sign_in(claude_home, anthropic):
    seeded = seed_sign_in("claude_code", anthropic.mint_tokens(), home=claude_home, expires_at=time.time() - 5)
    first = requests.post(anthropic.token_url, json={"grant_type": "refresh_token", "client_id": anthropic.client_id,
                                                     "refresh_token": seeded.refresh_token}, timeout=5)
    assert first.status_code == 200
    before = (claude_home / "claude_code_oauth.json").read_bytes()
    with pytest.raises(SignInEnded, match="oauth-hub login claude_code"):
        tokens.get_token("claude_code", home=claude_home)
    assert (claude_home / "claude_code_oauth.json").read_bytes() == before


def test_requests_auth_uses_the_oauth_headers_and_refreshes_on_401(claude_home, anthropic):
    seeded = seed_sign_in("claude_code", anthropic.mint_tokens(), home=claude_home)
    anthropic.expire_access_tokens()
    response = requests.get(f"{anthropic.api_base}/v1/models", auth=OAuthHubAuth("claude_code", home=claude_home),
                            timeout=5)
    assert response.status_code == 200, response.text
    calls = anthropic.requests_to("/v1/models")
    assert [c.status for c in calls] == [401, 200]
    assert calls[0].headers["authorization"] == f"Bearer {seeded.access_token}"
    assert calls[1].headers["anthropic-version"] == "2023-06-01"
    assert "oauth-2025-04-20" in calls[1].headers["anthropic-beta"]


def test_endpoints_are_configurable(claude_home):
    from oauth_core.provider import Provider
    from oauth_core.store import Store

    write_config(claude_home, "claude_code", token_url="https://platform.claude.com/v1/oauth/token")
    settings = Provider.load("claude_code", Store(claude_home)).settings
    assert settings["token_url"] == "https://platform.claude.com/v1/oauth/token"
    defaults = Provider.load("claude_code", Store(claude_home.parent / "empty")).settings
    assert defaults["authorize_url"] == "https://claude.ai/oauth/authorize"
    assert defaults["fallback_ports"] == list(range(8766, 8796))
