"""``oauth-hub import codex|claude-code``: another program's sign-in, taken over.

The files are written in the reference clients' own formats (Codex 0.171's ``auth.json``
as its source's ``AuthDotJson`` / ``TokenData`` serialise it, with chrono's nanosecond
``last_refresh``; Claude Code 2.1.332's ``.credentials.json`` with ``claudeAiOauth``),
holding tokens the strict fakes issued, so the imported sign-in must really work:
the fake accepts its refresh token exactly once, from oauth-hub.
"""

from __future__ import annotations

import json
import os
import stat
import time

import pytest


def write_private(path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
    os.chmod(path, 0o600)


def codex_auth_json(answer: dict, account_id: str, api_key: str | None = None) -> dict:
    return {
        "auth_mode": "chatgpt",
        "OPENAI_API_KEY": api_key,
        "tokens": {"id_token": answer["id_token"], "access_token": answer["access_token"],
                   "refresh_token": answer["refresh_token"], "account_id": account_id},
        "last_refresh": "2026-11-30T09:15:02.123456789Z",
    }


@pytest.fixture
def codex_home(tmp_path):
    return tmp_path / "codex-home"


def test_import_codex_turns_its_auth_json_into_a_working_sign_in(cli, chatgpt_home, subscription, codex_home):
    answer = subscription.mint_tokens(email="codex@example.com", account_id="acct-codex", plan="pro")
    auth = codex_home / "auth.json"
    write_private(auth, codex_auth_json(answer, "acct-codex"))

    result = cli("import", "codex", "--account", "cx", env={"CODEX_HOME": str(codex_home)})
    assert result.returncode == 0, result.stderr
    assert "codex login" in result.stderr and "end it for both" in result.stderr
    assert not auth.exists()  # taken over: the Codex CLI can no longer refresh it behind oauth-hub's back

    record = json.loads((chatgpt_home / "chatgpt@cx_oauth.json").read_text())
    assert record["refresh_token"] == answer["refresh_token"]
    assert record["account"]["email"] == "codex@example.com" and record["account"]["plan"] == "pro"
    assert record["last_refresh"] == "2026-11-30T09:15:02Z"
    assert stat.S_IMODE(os.stat(chatgpt_home / "chatgpt@cx_oauth.json").st_mode) == 0o600
    assert (chatgpt_home / "chatgpt@cx_models.json").exists()
    assert cli("token", "chatgpt", "--account", "cx").stdout.strip() == answer["access_token"]
    # The first account of the provider is its default.
    assert cli("token", "chatgpt").stdout.strip() == answer["access_token"]

    refreshed = cli("refresh", "chatgpt", "--account", "cx")
    assert refreshed.returncode == 0, refreshed.stderr
    assert subscription.count("/oauth/token", "refresh_token") == 1
    token_requests = [r.json or r.form for r in subscription.requests_to("/oauth/token")]
    assert [b["refresh_token"] for b in token_requests if b.get("grant_type") == "refresh_token"] \
        == [answer["refresh_token"]]
    assert cli("token", "chatgpt", "--account", "cx").stdout.strip() != answer["access_token"]


def test_import_codex_keeps_its_api_key_and_reads_the_older_id_token_object(cli, chatgpt_home, idp, codex_home):
    answer = idp.mint_tokens()
    data = codex_auth_json(answer, "acct-fake-0001", api_key="sk-from-codex-0123456789")
    data.pop("auth_mode")  # files older Codex versions wrote have none
    data["tokens"]["id_token"] = {"email": "user@example.com", "chatgpt_plan_type": "plus"}  # pre-JWT shape
    write_private(codex_home / "auth.json", data)
    result = cli("import", "codex", env={"CODEX_HOME": str(codex_home)})
    assert result.returncode == 0, result.stderr
    assert cli("token", "chatgpt", "--api-key").stdout.strip() == "sk-from-codex-0123456789"
    exchanges = [r for r in idp.requests_to("/oauth/token")
                 if (r.json or r.form or {}).get("grant_type") != "refresh_token"]
    assert exchanges == []  # the key Codex had is kept: no token exchange for a new one


def test_import_never_replaces_another_persons_sign_in_without_being_told(cli, chatgpt_home, idp, codex_home):
    # `oauth-hub import codex` goes to the default account. When that already holds
    # someone else, replacing it would revoke that sign-in without a word: refused, and
    # nothing changes on either side.
    assert cli("login", "chatgpt").returncode == 0  # user@example.com, acct-fake-0001
    mine = (chatgpt_home / "chatgpt_oauth.json").read_bytes()
    answer = idp.mint_tokens(email="codex@example.com", account_id="acct-codex")
    write_private(codex_home / "auth.json", codex_auth_json(answer, "acct-codex"))
    theirs = (codex_home / "auth.json").read_bytes()
    env = {"CODEX_HOME": str(codex_home)}

    refused = cli("import", "codex", env=env)
    assert refused.returncode == 1, refused.stderr
    assert refused.stderr.count("\n") == 1 and refused.stderr.startswith("Error: ")
    assert "user@example.com" in refused.stderr and "codex@example.com" in refused.stderr
    assert "oauth-hub import codex --account NAME" in refused.stderr
    assert (chatgpt_home / "chatgpt_oauth.json").read_bytes() == mine
    assert (codex_home / "auth.json").read_bytes() == theirs
    assert idp.count("/oauth/revoke") == 0

    taken = cli("import", "codex", "--account", "cx", env=env)
    assert taken.returncode == 0, taken.stderr
    assert (chatgpt_home / "chatgpt_oauth.json").read_bytes() == mine
    assert cli("token", "chatgpt@cx").stdout.strip() == answer["access_token"]

    # The same person again (a newer Codex sign-in of acct-fake-0001) may replace main.
    again = idp.mint_tokens()
    write_private(codex_home / "auth.json", codex_auth_json(again, "acct-fake-0001"))
    replaced = cli("import", "codex", env=env)
    assert replaced.returncode == 0, replaced.stderr
    assert cli("token", "chatgpt").stdout.strip() == again["access_token"]


def test_import_codex_refuses_what_it_cannot_take_over(cli, chatgpt_home, idp, codex_home):
    missing = cli("import", "codex", env={"CODEX_HOME": str(codex_home)})
    assert missing.returncode == 1 and "has no sign-in in" in missing.stderr and "CODEX_HOME" in missing.stderr
    write_private(codex_home / "auth.json", {"auth_mode": "apikey", "OPENAI_API_KEY": "sk-only"})
    before = (codex_home / "auth.json").read_bytes()
    only_key = cli("import", "codex", env={"CODEX_HOME": str(codex_home)})
    assert only_key.returncode == 1 and "nothing to take over" in only_key.stderr
    assert (codex_home / "auth.json").read_bytes() == before
    assert not (chatgpt_home / "chatgpt_oauth.json").exists()
    unknown = cli("import", "vscode")
    assert unknown.returncode == 1 and "codex" in unknown.stderr and "claude-code" in unknown.stderr


def test_import_claude_code_takes_the_sign_in_and_keeps_the_rest_of_the_file(cli, claude_home, anthropic, tmp_path):
    answer = anthropic.mint_tokens(email="cc@example.com", plan="max")
    config_dir = tmp_path / "claude-config"
    credentials = config_dir / ".credentials.json"
    expires_at_ms = int((time.time() + answer["expires_in"]) * 1000)
    write_private(credentials, {
        "claudeAiOauth": {
            "accessToken": answer["access_token"], "refreshToken": answer["refresh_token"],
            "expiresAt": expires_at_ms,
            "scopes": answer["scope"].split(), "subscriptionType": "max", "rateLimitTier": "default_claude_max_20x",
            "clientId": "9d1c250a-e61b-44d9-88ed-5944d1962f5e",
            "accountUuid": answer["account"]["uuid"], "organizationUuid": answer["organization"]["uuid"],
        },
        "mcpOAuth": {"server|abc": {"accessToken": "mcp-token", "serverName": "server"}},
    })
    result = cli("import", "claude-code", "--account", "max", env={"CLAUDE_CONFIG_DIR": str(config_dir)})
    assert result.returncode == 0, result.stderr
    assert "claude" in result.stderr and "sign in" in result.stderr
    left = json.loads(credentials.read_text())
    assert "claudeAiOauth" not in left and left["mcpOAuth"]["server|abc"]["accessToken"] == "mcp-token"
    assert stat.S_IMODE(os.stat(credentials).st_mode) == 0o600

    record = json.loads((claude_home / "claude_code@max_oauth.json").read_text())
    assert record["account"]["email"] == "cc@example.com" and record["account"]["plan"] == "Max"
    assert record["account"]["scope"] == answer["scope"]  # a refresh sends the granted scopes back
    assert record["expires_at"] == expires_at_ms / 1000  # the expiry Claude Code had, not one made up now
    assert cli("token", "claude_code", "--account", "max").stdout.strip() == answer["access_token"]
    refreshed = cli("refresh", "claude_code", "--account", "max")
    assert refreshed.returncode == 0, refreshed.stderr
    assert anthropic.count(anthropic.token_url, "refresh_token") == 1


def test_import_list_names_the_sources_and_where_they_are(cli, home, tmp_path):
    listed = cli("import", "--list", "--json", env={"CODEX_HOME": str(tmp_path / "cx"), "HOME": str(tmp_path)})
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in listed.json}
    assert rows["codex"]["path"] == str(tmp_path / "cx" / "auth.json") and rows["codex"]["provider"] == "chatgpt"
    assert rows["claude-code"]["path"] == str(tmp_path / ".claude" / ".credentials.json")
