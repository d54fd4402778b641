"""`oauth-hub login chatgpt` and friends, end to end.

The real CLI runs in a subprocess; the browser is a script ($BROWSER) that follows the
authorize URL to the loopback callback; the IdP is the strict fake in
``oauth_core.testing``. Nothing of our own HTTP code is mocked.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import threading
import time
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest

from oauth_core.testing.browser import follow

from .conftest import write_config

CHAT_MODELS_API = {"gpt-4o", "gpt-4o-mini", "gpt-4.1", "o3", "o4-mini"}
NOT_CHAT = ("embedding", "whisper", "tts", "dall-e", "moderation", "realtime", "audio", "image", "babbage", "davinci")


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def tokens(home) -> dict:
    return json.loads((home / "chatgpt_oauth.json").read_text())


def models(home) -> dict:
    return json.loads((home / "chatgpt_models.json").read_text())


#: The authorize request of `codex login` 0.171.0, field by field and in its order (its
#: source's build_authorize_url; the release run with a $BROWSER that records the URL).
#: None: a fresh random value, checked for its shape instead.
CODEX_0_171_AUTHORIZE = [
    ("response_type", "code"),
    ("client_id", "app_EMoamEEZ73f0CkXaXp7hrann"),
    ("redirect_uri", "http://127.0.0.1:1455/auth/callback"),
    ("scope", "openid profile email offline_access api.connectors.read api.connectors.invoke"),
    ("code_challenge", None),
    ("code_challenge_method", "S256"),
    ("id_token_add_organizations", "true"),
    ("codex_cli_simplified_flow", "true"),
    ("state", None),
    ("originator", "codex_cli_rs"),
]


def test_the_authorize_url_is_codex_0_171_field_for_field(cli, chatgpt_home, idp):
    """Fails when any authorize field drifts from what the Codex CLI sends (an extra,
    missing, reordered or changed field is a difference OpenAI could notice)."""
    result = cli("login", "chatgpt")
    assert result.returncode == 0, result.stderr
    url = urlsplit(cli.visited()[0])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{idp.issuer}/oauth/authorize"
    fields = parse_qsl(url.query, keep_blank_values=True)
    assert [name for name, _ in fields] == [name for name, _ in CODEX_0_171_AUTHORIZE]
    for (name, value), (_, expected) in zip(fields, CODEX_0_171_AUTHORIZE, strict=True):
        if expected is None:
            assert re.fullmatch(r"[A-Za-z0-9_-]{43}", value), name  # 32 bytes, base64url without padding
        else:
            assert value == expected, name
    # Spaces in the scope are %20, as Codex's urlencoding writes them (not '+').
    assert "scope=openid%20profile%20email%20offline_access%20api.connectors.read%20api.connectors.invoke" \
        in url.query


def test_login_api_key_mode_then_status_token_logout(cli, chatgpt_home, idp):
    result = cli("login", "chatgpt")
    assert result.returncode == 0, result.stderr

    # The URL is always printed, and the browser was sent to exactly that URL.
    visited = cli.visited()
    assert visited and visited[0] in result.stderr
    url = urlsplit(visited[0])
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{idp.issuer}/oauth/authorize"
    assert query["client_id"] == "app_EMoamEEZ73f0CkXaXp7hrann"
    assert query["redirect_uri"] == "http://127.0.0.1:1455/auth/callback"
    assert query["code_challenge_method"] == "S256"
    assert query["scope"] == "openid profile email offline_access api.connectors.read api.connectors.invoke"
    assert query["originator"] == "codex_cli_rs"
    assert len(query["state"]) >= 43

    # Summary on stderr.
    assert "Signed in to chatgpt" in result.stderr
    assert "user@example.com" in result.stderr
    assert "API key:  yes" in result.stderr

    # Files: private, complete.
    assert mode(chatgpt_home) == 0o700
    assert mode(chatgpt_home / "chatgpt_oauth.json") == 0o600
    assert mode(chatgpt_home / "chatgpt_models.json") == 0o600
    stored = tokens(chatgpt_home)
    for key in ("access_token", "refresh_token", "id_token", "api_key", "last_refresh"):
        assert stored[key], key
    assert stored["api_key"] in idp.issued_api_keys
    assert stored["account"]["account_id"] == idp.account_id
    assert idp.verify_jwt(stored["access_token"])  # a real token from the IdP

    # Models: chat only, prefixed, the seed's format.
    entries = models(chatgpt_home)
    names = set(entries)
    assert {f"chatgpt-{m}" for m in CHAT_MODELS_API} <= names
    assert all(n.startswith("chatgpt-") for n in names)
    assert not [n for n in names if any(word in n for word in NOT_CHAT)]
    entry = entries["chatgpt-gpt-4o"]
    assert entry == {
        "type": "openai",
        "name": "gpt-4o",
        "custom_endpoint": {"url": idp.issuer, "api_key": "$CHATGPT_OAUTH_API_KEY"},
        "context_length": 128000,
        "oauth_source": "chatgpt-oauth-plugin",
    }
    assert entries["chatgpt-gpt-4.1"]["context_length"] > 1_000_000

    # status --json
    status = cli("status", "--json")
    assert status.returncode == 0
    (row,) = [r for r in status.json if r["provider"] == "chatgpt"]
    assert row["logged_in"] is True
    assert row["has_api_key"] is True
    assert row["email"] == "user@example.com"
    assert row["plan"] == "plus"
    assert row["expires_at"] and row["expires_at"].endswith("Z")
    assert sorted(row["models"]) == sorted(names)
    assert stored["access_token"] not in status.stdout and stored["api_key"] not in status.stdout

    human = cli("status", "chatgpt")
    assert human.returncode == 0
    assert "signed in as user@example.com" in human.stdout

    # token: only the secret on stdout.
    tok = cli("token", "chatgpt")
    assert tok.returncode == 0 and tok.stdout == stored["access_token"] + "\n"
    assert tok.stderr == ""
    key = cli("token", "chatgpt", "--api-key")
    assert key.returncode == 0 and key.stdout == stored["api_key"] + "\n"

    # logout: revoked at the IdP, everything login wrote is gone.
    out = cli("logout", "chatgpt")
    assert out.returncode == 0, out.stderr
    assert "Revoked" in out.stderr and "Logged out" in out.stderr
    revokes = idp.requests_to("/oauth/revoke")
    assert len(revokes) == 1 and revokes[0].json["token"] == stored["refresh_token"]
    assert not (chatgpt_home / "chatgpt_oauth.json").exists()
    assert not (chatgpt_home / "chatgpt_models.json").exists()
    assert sorted(p.name for p in chatgpt_home.iterdir()) == ["config.toml"]

    after = cli("status", "chatgpt")
    assert after.returncode == 1
    assert "not signed in" in after.stdout and "oauth-hub login chatgpt" in after.stdout
    assert cli("token", "chatgpt").returncode != 0

    again = cli("logout", "chatgpt")
    assert again.returncode == 0 and "nothing to do" in again.stderr


def test_login_without_org_uses_subscription_models(cli, chatgpt_home, idp):
    idp.organization_id = None
    idp.project_id = None
    result = cli("login", "chatgpt")
    assert result.returncode == 0, result.stderr
    assert "API key:  no" in result.stderr
    stored = tokens(chatgpt_home)
    assert not stored.get("api_key")
    assert idp.count("/oauth/token", "urn:ietf:params:oauth:grant-type:token-exchange") == 0

    # Codex backend listing, visibility == "list" only, ordered by priority.
    listed = [m for m in idp.codex_models if m["visibility"] == "list"]
    listed.sort(key=lambda m: m["priority"])
    entries = models(chatgpt_home)
    assert list(entries) == sorted(f"chatgpt-{m['slug']}" for m in listed)
    hidden = [m["slug"] for m in idp.codex_models if m["visibility"] != "list"]
    assert hidden and not any(f"chatgpt-{slug}" in entries for slug in hidden)
    backend_calls = idp.requests_to("/backend-api/codex/models")
    assert backend_calls and backend_calls[0].headers.get("chatgpt-account-id") == idp.account_id
    assert backend_calls[0].query.get("client_version")
    entry = entries[f"chatgpt-{listed[0]['slug']}"]
    assert entry["type"] == "chatgpt_subscription"
    assert entry["custom_endpoint"]["url"] == idp.chatgpt_base
    assert entry["custom_endpoint"]["headers"]["ChatGPT-Account-Id"] == idp.account_id
    assert entry["context_length"] == listed[0]["context_window"]

    status = cli("status", "chatgpt", "--json").json[0]
    assert status["has_api_key"] is False and status["logged_in"] is True

    key = cli("token", "chatgpt", "--api-key")
    assert key.returncode != 0 and key.stdout == ""
    assert "no API key" in key.stderr


def test_api_key_exchange_refused_is_a_warning_not_a_failure(cli, chatgpt_home, idp):
    idp.api_key_exchange = False
    result = cli("login", "chatgpt")
    assert result.returncode == 0, result.stderr
    assert "Warning: No API key" in result.stderr
    assert idp.count("/oauth/token", "urn:ietf:params:oauth:grant-type:token-exchange") == 1
    assert not tokens(chatgpt_home).get("api_key")
    # It fell back to the subscription backend for models.
    assert models(chatgpt_home)
    assert all(e["type"] == "chatgpt_subscription" for e in models(chatgpt_home).values())


def test_error_callback_fails_cleanly(cli, chatgpt_home, idp):
    idp.authorize_error = "access_denied"
    result = cli("login", "chatgpt")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: ") and "access_denied" in last and "oauth-hub login chatgpt" in last
    assert not (chatgpt_home / "chatgpt_oauth.json").exists()
    assert idp.count("/oauth/token") == 0


@pytest.mark.parametrize(
    ("status", "body", "expect"),
    [
        (500, {"error": "server_error", "error_description": "upstream exploded"}, "HTTP 500"),
        (400, {"error": "invalid_grant", "error_description": "code expired"}, "invalid_grant"),
    ],
)
def test_token_endpoint_errors_fail_cleanly(cli, chatgpt_home, idp, status, body, expect):
    idp.fail_next("/oauth/token", status, body)
    result = cli("login", "chatgpt")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: ") and expect in last and "token exchange" in last
    assert "Traceback" not in result.stderr
    assert not (chatgpt_home / "chatgpt_oauth.json").exists()
    assert not (chatgpt_home / "chatgpt_models.json").exists()


def test_timeout_with_no_browser_prints_url_and_says_what_to_do(cli, chatgpt_home, idp):
    result = cli("login", "chatgpt", "--timeout", "2", env={"OAUTH_HUB_TEST_BROWSER_FAIL": "1"})
    assert result.returncode == 1
    assert f"{idp.issuer}/oauth/authorize?" in result.stderr
    assert "Could not open a browser" in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "within 2 seconds" in last and "oauth-hub login chatgpt" in last
    assert not (chatgpt_home / "chatgpt_oauth.json").exists()


def test_no_browser_flag_url_completed_elsewhere_and_forged_callback_ignored(cli, chatgpt_home, idp):
    proc = subprocess.Popen([*cli.command, "login", "chatgpt", "--no-browser"], env=cli.env,
                            stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    lines: list[str] = []
    url = None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and url is None:
        line = proc.stderr.readline()
        lines.append(line)
        found = re.search(r"(http://\S+/oauth/authorize\?\S+)", line)
        url = found.group(1) if found else None
    assert url, "".join(lines)
    # A forged callback first: it must be refused and the login must go on.
    forged = follow("http://127.0.0.1:1455/auth/callback?code=forged&state=not-the-state")
    assert forged[1] == 400
    # Then the person completes the sign-in on "another machine".
    done = threading.Event()
    threading.Thread(target=lambda: (follow(url), done.set()), daemon=True).start()
    stdout, stderr = proc.communicate(timeout=30)
    assert done.wait(5)
    assert proc.returncode == 0, stderr
    assert not cli.visited(), "--no-browser must not start a browser"
    assert tokens(chatgpt_home)["access_token"]
    # The forged code was never sent to the IdP.
    codes = [r.form.get("code") for r in idp.requests_to("/oauth/token") if r.form and "code" in r.form]
    assert len(codes) == 1 and codes[0] != "forged"


def test_unknown_provider_lists_known_ones(cli, home):
    result = cli("login", "nosuch")
    assert result.returncode == 1
    assert result.stderr.strip() == ("Error: Unknown provider 'nosuch'. "
                                     "Known providers: chatgpt, claude_code, copilot, openrouter.")
    assert cli("token", "../../etc/passwd").returncode == 1


def test_providers_lists_builtin_with_distribution(cli, home):
    result = cli("providers", "--json")
    assert result.returncode == 0
    (row,) = [r for r in result.json if r["name"] == "chatgpt"]
    assert row["distribution"] == "oauth-hub" and row["version"] and row["loaded"] is True
    human = cli("providers")
    assert human.stdout.startswith("chatgpt")


def test_corrupt_token_file_is_reported_and_kept(cli, chatgpt_home, idp):
    path = chatgpt_home / "chatgpt_oauth.json"
    chatgpt_home.mkdir(exist_ok=True)
    path.write_text('{"access_token": "abc", ')
    path.chmod(0o600)  # our own file, damaged (a loose one would add a "Note:" line)
    before = path.read_bytes()

    tok = cli("token", "chatgpt")
    assert tok.returncode == 1 and tok.stdout == ""
    assert str(path) in tok.stderr and "not valid JSON" in tok.stderr
    assert "Or sign in again with `oauth-hub login chatgpt`" in tok.stderr  # what to type next
    assert len(tok.stderr.strip().splitlines()) == 1

    status = cli("status", "chatgpt", "--json")
    assert status.returncode == 1  # not signed in, as plain `status` says too
    assert str(path) in status.json[0]["error"]
    human = cli("status", "chatgpt")
    assert human.returncode == 1 and "unreadable" in human.stdout
    assert path.read_bytes() == before

    # A new login keeps the unreadable file aside instead of destroying it.
    result = cli("login", "chatgpt")
    assert result.returncode == 0, result.stderr
    kept = [p for p in chatgpt_home.iterdir() if p.name.startswith("chatgpt_oauth.json.corrupt-")]
    assert len(kept) == 1 and kept[0].read_bytes() == before and mode(kept[0]) == 0o600
    assert "kept as" in result.stderr
    assert tokens(chatgpt_home)["access_token"] != "abc"
    out = cli("logout", "chatgpt")
    assert out.returncode == 0 and "Deleted chatgpt_oauth.json.corrupt-" in out.stderr
    assert not [p for p in chatgpt_home.iterdir() if ".corrupt-" in p.name]


def test_wrongly_typed_token_file_is_corrupt_not_a_crash(cli, chatgpt_home):
    chatgpt_home.mkdir(exist_ok=True)
    (chatgpt_home / "chatgpt_oauth.json").write_text('{"access_token": 42}')
    (chatgpt_home / "chatgpt_oauth.json").chmod(0o600)
    tok = cli("token", "chatgpt")
    assert tok.returncode == 1 and "access_token" in tok.stderr and "Traceback" not in tok.stderr
    (chatgpt_home / "chatgpt_oauth.json").write_text("[1, 2]")
    tok = cli("token", "chatgpt")
    assert tok.returncode == 1 and "JSON object" in tok.stderr


def test_logout_keeps_foreign_model_entries_and_survives_dead_network(cli, chatgpt_home, idp):
    assert cli("login", "chatgpt").returncode == 0
    entries = models(chatgpt_home)
    entries["my-own-model"] = {"type": "openai", "name": "local", "oauth_source": "someone-else"}
    (chatgpt_home / "chatgpt_models.json").write_text(json.dumps(entries))
    # The IdP goes away: revocation fails, the local logout still happens.
    write_config(chatgpt_home, "chatgpt", issuer="http://127.0.0.1:9")
    out = cli("logout", "chatgpt")
    assert out.returncode == 0, out.stderr
    assert "Could not revoke" in out.stderr and "127.0.0.1:9" in out.stderr
    assert not (chatgpt_home / "chatgpt_oauth.json").exists()
    assert models(chatgpt_home) == {"my-own-model": entries["my-own-model"]}


def test_login_replaces_only_its_own_entries(cli, chatgpt_home, idp):
    chatgpt_home.mkdir(exist_ok=True)
    foreign = {"hand-made": {"type": "openai", "name": "x"}}
    stale = {"chatgpt-gone-model": {"type": "openai", "name": "gone", "oauth_source": "chatgpt-oauth-plugin"}}
    (chatgpt_home / "chatgpt_models.json").write_text(json.dumps({**foreign, **stale}))
    assert cli("login", "chatgpt").returncode == 0
    entries = models(chatgpt_home)
    assert entries["hand-made"] == foreign["hand-made"]
    assert "chatgpt-gone-model" not in entries


def test_prefix_from_config(cli, chatgpt_home, idp):
    set_result = cli("config", "set", "chatgpt.prefix", "gpt-")
    assert set_result.returncode == 0, set_result.stderr
    assert cli("config", "get", "chatgpt.prefix").stdout == "gpt-\n"
    assert cli("login", "chatgpt").returncode == 0
    assert all(name.startswith("gpt-") for name in models(chatgpt_home))


def test_token_files_are_private_under_a_permissive_umask(cli, chatgpt_home, idp):
    result = subprocess.run(["sh", "-c", 'umask 000; exec "$@"', "sh", *cli.command, "login", "chatgpt"],
                            env=cli.env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert mode(chatgpt_home / "chatgpt_oauth.json") == 0o600
    assert mode(chatgpt_home / "chatgpt_models.json") == 0o600
    assert mode(chatgpt_home) == 0o700
