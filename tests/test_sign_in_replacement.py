"""A new login revokes the sign-in it replaces, as the Codex CLI and Claude Code do.

The old refresh token would otherwise stay valid until it expires on its own, kept by
nobody. Best effort: a failed revocation is a warning, never a failed login.
"""

from __future__ import annotations

import json

import requests


def stored(home, provider: str) -> dict:
    return json.loads((home / f"{provider}_oauth.json").read_text())


def test_chatgpt_relogin_revokes_the_previous_refresh_token(cli, chatgpt_home, idp):
    assert cli("login", "chatgpt").returncode == 0
    old = stored(chatgpt_home, "chatgpt")
    assert idp.requests_to("/oauth/revoke") == []
    result = cli("login", "chatgpt")
    assert result.returncode == 0, result.stderr
    new = stored(chatgpt_home, "chatgpt")
    assert new["refresh_token"] != old["refresh_token"]
    (revoke,) = idp.requests_to("/oauth/revoke")
    assert revoke.json == {"token": old["refresh_token"], "token_type_hint": "refresh_token",
                           "client_id": "app_EMoamEEZ73f0CkXaXp7hrann"}
    refused = requests.post(f"{idp.issuer}/oauth/token", timeout=5, json={
        "client_id": idp.client_id, "grant_type": "refresh_token", "refresh_token": old["refresh_token"]})
    assert refused.status_code in (400, 401)
    kept = requests.post(f"{idp.issuer}/oauth/token", timeout=5, json={
        "client_id": idp.client_id, "grant_type": "refresh_token", "refresh_token": new["refresh_token"]})
    assert kept.status_code == 200  # the new sign-in is untouched


def test_claude_relogin_revokes_the_previous_refresh_token(cli, claude_home, anthropic):
    assert cli("login", "claude_code").returncode == 0
    old = stored(claude_home, "claude_code")
    assert cli("login", "claude_code", "--console").returncode == 0
    (revoke,) = anthropic.requests_to(anthropic.revoke_url)
    assert revoke.json == {"token": old["refresh_token"], "token_type_hint": "refresh_token",
                           "client_id": "9d1c250a-e61b-44d9-88ed-5944d1962f5e"}
    refused = requests.post(anthropic.token_url, timeout=5, json={
        "grant_type": "refresh_token", "client_id": anthropic.client_id, "refresh_token": old["refresh_token"]})
    assert refused.json()["error"] == "invalid_grant"
    assert stored(claude_home, "claude_code")["account"]["plan"] == "Console"


def test_a_failed_revocation_is_a_warning_and_the_login_stands(cli, chatgpt_home, idp):
    assert cli("login", "chatgpt").returncode == 0
    idp.fail_next("/oauth/revoke", 503, times=1)
    result = cli("login", "chatgpt")
    assert result.returncode == 0, result.stderr
    assert "Warning: Could not revoke the previous ChatGPT sign-in" in result.stderr
    assert "Signed in to chatgpt" in result.stderr


def test_a_first_login_revokes_nothing(cli, chatgpt_home, idp):
    assert cli("login", "chatgpt").returncode == 0
    assert idp.requests_to("/oauth/revoke") == []
