"""A home written by the release before accounts upgrades without a new login.

``tests/fixtures/legacy_home`` holds every file that release (main at b526168) wrote for a
ChatGPT and a Claude sign-in, an export to Code Puppy and a request through its
``serve``, captured by ``tests/fixtures/legacy_home/capture.py`` with the secrets, times,
fake URLs and paths left as ``{{placeholders}}``. Here the placeholders get tokens the
fakes have just issued, and the new release must use that home as it is: each sign-in
is its provider's default account ``main``, its files (and the refresh lock an older
process still running would take) keep their names and are not rewritten, and
logout removes the exports the old release recorded.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import requests

from oauth_core import serve as hub_serve
from oauth_core.credentials import utc_now_iso

from .test_serve import KEY

FIXTURE = Path(__file__).parent / "fixtures" / "legacy_home"


def fill(text: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        text = text.replace("{{" + name + "}}", value)
    assert "{{" not in text, text[text.index("{{"):][:60]
    return text


@pytest.fixture
def legacy(chatgpt_home, claude_home, subscription, anthropic, tmp_path):
    home, tools = chatgpt_home, tmp_path / "tools"
    anthropic.stream_delay = 0
    gpt, claude = subscription.mint_tokens(), anthropic.mint_tokens()
    values = {"openai": subscription.issuer, "tools": str(tools), "home": str(home)}
    for provider, answer in (("chatgpt", gpt), ("claude_code", claude)):
        for field in ("access_token", "refresh_token", "id_token"):
            if answer.get(field):
                values[f"{provider}.{field}"] = answer[field]
        values[f"{provider}.expires_at"] = json.dumps(time.time() + answer["expires_in"])
        values[f"{provider}.last_refresh"] = utc_now_iso()
    for folder, target in (("home", home), ("tools", tools)):
        target.mkdir(exist_ok=True)
        for path in (FIXTURE / folder).iterdir():
            (target / path.name).write_text(fill(path.read_text(), values))
            os.chmod(target / path.name, 0o600)
    return home, tools, gpt, claude


def test_an_old_home_is_the_default_account_of_each_provider_without_a_new_login(cli, legacy, subscription,
                                                                                   anthropic):
    home, _, gpt, claude = legacy
    before = {p.name: p.read_bytes() for p in home.iterdir()}
    listed = cli("accounts", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(r["provider"], r["account"], r["email"], r["default"]) for r in listed.json] == [
        ("chatgpt", "main", "user@example.com", True), ("claude_code", "main", "claude-user@example.com", True)]
    assert cli("token", "chatgpt").stdout.strip() == gpt["access_token"]
    assert cli("token", "claude_code", "--account", "main").stdout.strip() == claude["access_token"]
    status = cli("status", "chatgpt", "--json").json
    assert status[0]["usage"]["windows"][0]["name"] == "primary"  # the old serve's usage file is read
    assert subscription.count("/oauth/token", "authorization_code") == 0
    # Reading changed nothing: the old files are byte for byte what the old release wrote.
    assert {p.name: p.read_bytes() for p in home.iterdir() if p.name in before} == before


def test_an_old_home_takes_a_second_account_and_keeps_its_names(cli, legacy, subscription):
    home, _, gpt, _ = legacy
    main_record = (home / "chatgpt_oauth.json").read_bytes()
    main_models = (home / "chatgpt_models.json").read_bytes()
    subscription.email, subscription.account_id = "me@corp.example", "acct-work"
    added = cli("login", "chatgpt", "--account", "work")
    assert added.returncode == 0, added.stderr
    assert (home / "chatgpt_oauth.json").read_bytes() == main_record
    assert (home / "chatgpt_models.json").read_bytes() == main_models
    assert cli("token", "chatgpt").stdout.strip() == gpt["access_token"]  # main stays the default
    assert all(k.startswith("chatgpt-work-") for k in json.loads((home / "chatgpt@work_models.json").read_text()))

    # The old refresh token works, under the lock an old process would take too.
    refreshed = cli("refresh", "chatgpt")
    assert refreshed.returncode == 0, refreshed.stderr
    bodies = [r.json or r.form or {} for r in subscription.requests_to("/oauth/token")]
    assert [b["refresh_token"] for b in bodies if b.get("grant_type") == "refresh_token"] == [gpt["refresh_token"]]
    assert (home / "chatgpt_oauth.lock").exists()


def test_logout_removes_the_exports_the_old_release_recorded(cli, legacy):
    home, tools, _, _ = legacy
    exported = json.loads((tools / "extra_models.json").read_text())
    assert {"chatgpt-gpt-5", "chatgpt-gpt-5-codex", "chatgpt-gpt-5-mini"} <= set(exported)
    out = cli("logout", "chatgpt", "--json")
    assert out.returncode == 0, out.stderr
    assert out.json["account"] == "main"
    assert [item["path"] for item in out.json["removed_exports"]] == [str(tools / "extra_models.json")]
    assert not any(k.startswith("chatgpt-") for k in json.loads((tools / "extra_models.json").read_text()))
    assert not (home / "chatgpt_oauth.json").exists() and not (home / "chatgpt_usage.json").exists()
    assert cli("token", "claude_code").returncode == 0  # the other provider is untouched


def test_serve_routes_an_old_home_as_before(legacy, subscription):
    home, _, gpt, _ = legacy
    server = hub_serve.make_server(port=0, key=KEY, home=home)
    hub_serve.start_in_thread(server)
    try:
        answer = requests.post(f"{server.base_url}/v1/chat/completions", headers={"Authorization": f"Bearer {KEY}"},
                               json={"model": "chatgpt-gpt-5", "messages": [{"role": "user", "content": "hi"}]},
                               timeout=30)
        assert answer.status_code == 200, answer.text
    finally:
        server.shutdown()
        server.server_close()
    sent = subscription.requests_to("/backend-api/codex/responses")[-1].headers
    assert sent["authorization"] == f"Bearer {gpt['access_token']}"
