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
from oauth_core.errors import OAuthHubError, SignInEnded
from oauth_core.testing.seed import seed_sign_in

from .conftest import write_config
from .test_login_remote import Running


def stored(home) -> dict:
    return json.loads((home / "claude_code_oauth.json").read_text())


def models(home) -> dict:
    return json.loads((home / "claude_code_models.json").read_text())


CLIENT_ID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
#: The scopes Claude Code 2.1.332 asks for, at either authorize host, in its order.
CLAUDE_CODE_SCOPES = ("org:create_api_key user:profile user:inference user:sessions:claude_code user:mcp_servers "
                      "user:file_upload user:plugins user:privacy_consents:write")
PRO_GRANT = ("user:profile user:inference user:sessions:claude_code user:mcp_servers user:file_upload user:plugins "
             "user:privacy_consents:write")
CONSOLE_GRANT = "org:create_api_key user:profile"


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def token_requests(anthropic, grant_type: str) -> list:
    return [r for r in anthropic.requests_to(anthropic.token_url) if (r.json or {}).get("grant_type") == grant_type]


def test_subscription_login_status_token_logout(cli, claude_home, anthropic):
    result = cli("login", "claude_code")
    assert result.returncode == 0, result.stderr
    # Not on a terminal and no choice given: the default, and how to choose the other.
    assert "Signing in with Claude account with a subscription" in result.stderr
    assert "--variant console" in result.stderr

    visited = cli.visited()
    authorize = urlsplit(visited[0])
    assert f"{authorize.scheme}://{authorize.netloc}{authorize.path}" == anthropic.authorize_url  # claude.com/cai
    query = query_of(visited[0])
    assert list(query) == ["code", "client_id", "response_type", "redirect_uri", "scope", "code_challenge",
                           "code_challenge_method", "state"]  # Claude Code's order
    assert query["code"] == "true" and query["response_type"] == "code"
    assert query["client_id"] == CLIENT_ID
    assert query["scope"] == CLAUDE_CODE_SCOPES
    assert query["code_challenge_method"] == "S256"
    assert re.fullmatch(r"http://localhost:\d+/callback", query["redirect_uri"])
    # After the callback the browser is sent on to Anthropic's success page, as Claude Code does.
    assert visited[1].startswith(query["redirect_uri"] + "?")
    assert visited[2] == anthropic.success_url

    # JSON code exchange carrying state, nothing else.
    (exchange,) = token_requests(anthropic, "authorization_code")
    assert set(exchange.json) == {"grant_type", "code", "redirect_uri", "client_id", "code_verifier", "state"}
    assert exchange.json["state"] == query["state"] and exchange.json["redirect_uri"] == query["redirect_uri"]

    # A Pro/Max sign-in never asks for an API key: it stays in subscription mode.
    assert anthropic.requests_to(anthropic.create_api_key_url) == []
    assert "Warning" not in result.stderr
    data = stored(claude_home)
    assert stat.S_IMODE((claude_home / "claude_code_oauth.json").stat().st_mode) == 0o600
    assert data["access_token"].startswith("sk-ant-oat01-") and not data.get("api_key")
    assert data["account"]["email"] == anthropic.email
    assert data["account"]["scope"] == PRO_GRANT
    assert data["expires_at"] > time.time() + 28000

    # The profile and roles were read, as Claude Code reads them: status shows the plan.
    (profile,) = anthropic.requests_to(anthropic.profile_url)
    assert profile.headers["authorization"] == f"Bearer {data['access_token']}"
    assert profile.headers["user-agent"] == "claude-code/2.1.332"
    assert len(anthropic.requests_to(anthropic.roles_url)) == 1
    assert data["account"]["plan"] == "Max" and data["account"]["organization_role"] == "admin"
    assert "Plan:     Max" in result.stderr

    entries = models(claude_home)
    assert entries and all(name.startswith("claude-code-") for name in entries)
    listed = {m["id"] for m in anthropic.models}
    assert {e["name"] for e in entries.values()} == listed
    entry = next(iter(entries.values()))
    assert entry["type"] == "claude_code" and entry["auth"] == "oauth_bearer"
    assert entry["custom_endpoint"]["headers"]["anthropic-beta"] == "oauth-2025-04-20"
    models_call = anthropic.requests_to("/v1/models")[-1]
    assert models_call.headers["authorization"] == f"Bearer {data['access_token']}"
    # Claude Code's identity on API calls.
    assert models_call.headers["anthropic-beta"] == "claude-code-20250219,oauth-2025-04-20"
    assert models_call.headers["user-agent"] == "claude-cli/2.1.332 (external, cli)"
    assert models_call.headers["x-app"] == "cli"
    assert models_call.headers["anthropic-version"] == "2023-06-01"

    row = cli("status", "claude_code", "--json").json[0]
    assert row["logged_in"] and row["email"] == anthropic.email and row["has_api_key"] is False
    assert row["plan"] == "Max"
    assert sorted(row["models"]) == sorted(entries)
    assert "plan:     Max" in cli("status", "claude_code").stdout
    assert cli("token", "claude_code").stdout.strip() == data["access_token"]
    assert cli("token", "claude_code", "--api-key").returncode == 1

    env = cli("env", "claude_code").stdout
    assert f"export CLAUDE_CODE_OAUTH_TOKEN={data['access_token']}" in env and "ANTHROPIC_API_KEY" not in env

    out = cli("logout", "claude_code")
    assert out.returncode == 0, out.stderr
    assert "Revoked the claude_code sign-in" in out.stderr
    (revoke,) = anthropic.requests_to(anthropic.revoke_url)
    assert revoke.json == {"token": data["refresh_token"], "token_type_hint": "refresh_token", "client_id": CLIENT_ID}
    assert revoke.headers["content-type"] == "application/json"
    dead = requests.post(anthropic.token_url, json={"grant_type": "refresh_token", "client_id": CLIENT_ID,
                                                    "refresh_token": data["refresh_token"]}, timeout=5)
    assert dead.json()["error"] == "invalid_grant"
    assert sorted(p.name for p in claude_home.iterdir()) == ["config.toml"]


@pytest.mark.parametrize("flag", [["--console"], ["--variant", "console"]])
def test_console_account_gets_an_api_key(cli, claude_home, anthropic, flag):
    anthropic.plan = None  # an API-billing organisation, no subscription
    result = cli("login", "claude_code", *flag)
    assert result.returncode == 0, result.stderr
    authorize = urlsplit(cli.visited()[0])
    assert f"{authorize.scheme}://{authorize.netloc}{authorize.path}" == anthropic.console_authorize_url
    assert query_of(cli.visited()[0])["scope"] == CLAUDE_CODE_SCOPES  # the same request as Pro/Max
    data = stored(claude_home)
    assert data["account"]["scope"] == CONSOLE_GRANT
    # The grant lacks user:inference, so the login created a key (no body, the bearer).
    (create,) = anthropic.requests_to(anthropic.create_api_key_url)
    assert create.headers["authorization"] == f"Bearer {data['access_token']}"
    assert create.json is None and create.headers.get("content-length", "0") == "0"
    assert data["api_key"] in anthropic.issued_api_keys
    assert data["account"]["plan"] == "Console"
    models_call = anthropic.requests_to("/v1/models")[-1]
    assert models_call.headers["x-api-key"] == data["api_key"]
    assert "authorization" not in models_call.headers
    entry = next(iter(models(claude_home).values()))
    assert entry["type"] == "anthropic" and entry["custom_endpoint"]["api_key"] == "$ANTHROPIC_API_KEY"
    assert cli("status", "claude_code", "--json").json[0]["plan"] == "Console"
    assert cli("token", "claude_code", "--api-key").stdout.strip() == data["api_key"]
    assert f"export ANTHROPIC_API_KEY={data['api_key']}" in cli("env", "claude_code").stdout


def test_an_unreadable_profile_is_a_warning_and_the_sign_in_stands(cli, claude_home, anthropic):
    anthropic.fail_next(anthropic.profile_url, 503)
    result = cli("login", "claude_code")
    assert result.returncode == 0, result.stderr
    assert "Warning: Could not read the account's profile" in result.stderr and "HTTP 503" in result.stderr
    data = stored(claude_home)
    assert data["access_token"] and "plan" not in data["account"]
    assert "Plan:     unknown" in result.stderr


def test_an_unknown_or_contradictory_variant_is_refused(cli, claude_home, chatgpt_home, anthropic):
    result = cli("login", "claude_code", "--variant", "enterprise")
    assert result.returncode == 1
    assert "no sign-in called 'enterprise'" in result.stderr and "subscription, console" in result.stderr
    result = cli("login", "claude_code", "--console", "--variant", "subscription")
    assert result.returncode == 2 and "contradict" in result.stderr
    result = cli("login", "chatgpt", "--console")
    assert result.returncode == 1 and "only one kind of sign-in" in result.stderr
    assert cli.visited() == [] and not (claude_home / "claude_code_oauth.json").exists()


def test_on_a_terminal_the_kind_of_sign_in_is_asked(cli, claude_home, anthropic):
    """A person at a terminal who gives no flag picks from a numbered list (here: 2, Console)."""
    import os
    import pty
    import select
    import subprocess

    main, secondary = pty.openpty()
    proc = subprocess.Popen([*cli.command, "login", "claude_code"], env=cli.env, stdin=secondary,
                            stdout=secondary, stderr=secondary, close_fds=True)
    os.close(secondary)
    seen = b""
    answered = False
    deadline = time.monotonic() + 40
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(main, 4096)
                except OSError:  # the other end closed: the process is done
                    break
                seen += chunk
                if not answered and b"Choose" in seen:
                    os.write(main, b"2\n")
                    answered = True
            elif proc.poll() is not None:
                break
        assert proc.wait(20) == 0, seen.decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(main)
    text = seen.decode(errors="replace")
    assert "1. Claude account with a subscription" in text and "2. Anthropic Console account" in text
    assert cli.visited()[0].startswith(anthropic.console_authorize_url + "?")
    assert stored(claude_home)["account"]["plan"] == "Console"


def test_manual_login_pastes_code_hash_state(cli, claude_home, anthropic):
    login = Running(cli, "login", "claude_code", "--manual", "--no-browser")
    url = login.wait_for(r"(http://\S+/oauth/authorize\?\S+)").group(1)
    assert anthropic.manual_redirect_uri.startswith("http://127.0.0.1:")
    assert "/platform.claude.com/oauth/code/callback" in anthropic.manual_redirect_uri
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
    (exchange,) = token_requests(anthropic, "authorization_code")
    assert exchange.json["code"] == code and exchange.json["state"] == state
    assert exchange.json["redirect_uri"] == anthropic.manual_redirect_uri
    assert stored(claude_home)["access_token"]


def test_manual_mode_is_refused_for_a_provider_without_one(cli, chatgpt_home, idp):
    result = cli("login", "chatgpt", "--manual")
    assert result.returncode == 1
    assert "no copy-the-code sign-in" in result.stderr and "--device" in result.stderr


@pytest.mark.parametrize("console", [False, True])
def test_refresh_sends_the_granted_scopes_and_keeps_identity(claude_home, anthropic, console):
    anthropic.refresh_omits = ("refresh_token",)
    seeded = seed_sign_in("claude_code", anthropic.mint_tokens(console=console), home=claude_home,
                          expires_at=time.time() - 5)
    granted = CONSOLE_GRANT if console else PRO_GRANT
    assert seeded.account["email"] == anthropic.email and seeded.account["scope"] == granted
    token = tokens.get_token("claude_code", home=claude_home)
    assert token != seeded.access_token
    (refresh,) = token_requests(anthropic, "refresh_token")
    # As Claude Code 2.1.x: JSON with the granted scopes (asking for the requested ones
    # would be refused: a Pro/Max grant has no org:create_api_key), and no beta header.
    assert refresh.json == {"grant_type": "refresh_token", "refresh_token": seeded.refresh_token,
                            "client_id": CLIENT_ID, "scope": granted}
    assert "anthropic-beta" not in refresh.headers
    assert refresh.status == 200
    after = stored(claude_home)
    assert after["refresh_token"] == seeded.refresh_token  # omitted from the answer: kept
    assert after["account"]["email"] == anthropic.email
    assert after["expires_at"] > time.time() + 28000


@pytest.mark.parametrize(("status", "body"), [
    (400, {"error": "invalid_request", "error_description": "Malformed request."}),
    (400, {"error": "invalid_scope", "error_description": "Requested scope is not allowed."}),
    (401, {"error": "invalid_client", "error_description": "Client authentication failed."}),
    (429, {"error": "rate_limited", "error_description": "Slow down."}),
])
def test_only_invalid_grant_ends_the_sign_in(claude_home, anthropic, status, body):
    """Any other refusal of a refresh is reported, and the stored sign-in is kept as it was."""
    seed_sign_in("claude_code", anthropic.mint_tokens(), home=claude_home, expires_at=time.time() - 5)
    before = (claude_home / "claude_code_oauth.json").read_bytes()
    anthropic.fail_next(anthropic.token_url, status, body)
    with pytest.raises(OAuthHubError) as info:
        tokens.get_token("claude_code", home=claude_home)
    assert not isinstance(info.value, SignInEnded)
    assert body["error"] in str(info.value) and "has ended" not in str(info.value)
    assert (claude_home / "claude_code_oauth.json").read_bytes() == before
    # The sign-in still works once the service answers again.
    assert tokens.get_token("claude_code", home=claude_home).startswith("sk-ant-oat01-")


def test_invalid_grant_at_401_ends_the_sign_in_too(claude_home, anthropic):
    seed_sign_in("claude_code", anthropic.mint_tokens(), home=claude_home, expires_at=time.time() - 5)
    before = (claude_home / "claude_code_oauth.json").read_bytes()
    anthropic.fail_next(anthropic.token_url, 401, {"error": "invalid_grant", "error_description": "Refresh token "
                                                                                                 "expired"})
    with pytest.raises(SignInEnded, match="oauth-hub login claude_code"):
        tokens.get_token("claude_code", home=claude_home)
    assert (claude_home / "claude_code_oauth.json").read_bytes() == before


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
    assert calls[1].headers["anthropic-beta"] == "claude-code-20250219,oauth-2025-04-20"
    assert calls[1].headers["user-agent"] == "claude-cli/2.1.332 (external, cli)"
    assert calls[1].headers["x-app"] == "cli"


def test_defaults_are_claude_code_2_1_endpoints_and_configurable(claude_home):
    from oauth_core.provider import Provider
    from oauth_core.store import Store

    defaults = Provider.load("claude_code", Store(claude_home.parent / "empty")).settings
    assert defaults["authorize_url"] == "https://claude.com/cai/oauth/authorize"
    assert defaults["console_authorize_url"] == "https://platform.claude.com/oauth/authorize"
    assert defaults["token_url"] == "https://platform.claude.com/v1/oauth/token"
    assert defaults["revoke_url"] == "https://platform.claude.com/v1/oauth/token/revoke"
    assert defaults["manual_redirect_uri"] == "https://platform.claude.com/oauth/code/callback"
    assert defaults["success_url"] == "https://platform.claude.com/oauth/code/success?app=claude-code"
    assert defaults["profile_url"] == "https://api.anthropic.com/api/oauth/profile"
    assert defaults["roles_url"] == "https://api.anthropic.com/api/oauth/claude_cli/roles"
    assert defaults["create_api_key_url"] == "https://api.anthropic.com/api/oauth/claude_cli/create_api_key"
    assert defaults["scopes"] == defaults["console_scopes"] == CLAUDE_CODE_SCOPES
    assert defaults["port"] == 0 and defaults["redirect_host"] == "localhost"
    write_config(claude_home, "claude_code", token_url="https://example.test/v1/oauth/token")
    assert Provider.load("claude_code", Store(claude_home)).settings["token_url"] == "https://example.test/v1/oauth/token"


def test_the_retired_token_host_fails_the_login_and_saves_nothing(cli, claude_home, anthropic):
    """console.anthropic.com answers 404 now; the HTTP client follows no redirect."""
    write_config(claude_home, "claude_code", token_url=anthropic.retired_token_url)
    result = cli("login", "claude_code")
    assert result.returncode == 1
    assert "HTTP 404" in result.stderr and "Nothing was saved" in result.stderr
    assert not (claude_home / "claude_code_oauth.json").exists()


def test_a_console_key_refused_with_401_is_renewed_before_the_refresh_token_is_spent(claude_home, anthropic):
    anthropic.plan = None
    seeded = seed_sign_in("claude_code", anthropic.mint_tokens(console=True), home=claude_home,
                          api_key=anthropic.mint_api_key())
    anthropic.issued_api_keys.discard(seeded.api_key)  # revoked in the Console
    response = requests.get(f"{anthropic.api_base}/v1/models", auth=OAuthHubAuth("claude_code", home=claude_home),
                            timeout=5)
    assert response.status_code == 200, response.text
    calls = anthropic.requests_to("/v1/models")
    assert [c.status for c in calls] == [401, 200]
    new_key = stored(claude_home)["api_key"]
    assert new_key != seeded.api_key and new_key in anthropic.issued_api_keys
    assert calls[1].headers["x-api-key"] == new_key
    assert len(anthropic.requests_to(anthropic.create_api_key_url)) == 1
    assert token_requests(anthropic, "refresh_token") == []  # the refresh token was not spent
    assert stored(claude_home)["refresh_token"] == seeded.refresh_token
