"""Usage you can see: the rate-limit windows the backends report reach `oauth-hub status`.

The fakes send the subscription's state in headers (Codex: ``x-codex-primary-*`` /
``secondary-*``; Anthropic: ``anthropic-ratelimit-unified-*``); the gateway keeps the
latest per account in ``<provider>_usage.json`` and ``status`` shows each window.
"""

from __future__ import annotations

import json

import pytest
import requests

from oauth_core import serve as hub_serve
from oauth_core.testing.seed import seed_sign_in

from .test_gateway_server import wait_until
from .test_serve import KEY, seed_models


@pytest.fixture
def server(chatgpt_home, claude_home, subscription, anthropic):
    anthropic.stream_delay = 0
    seed_sign_in("chatgpt", subscription.mint_tokens(), home=chatgpt_home)
    seed_models("chatgpt", chatgpt_home)
    seed_sign_in("claude_code", anthropic.mint_tokens(), home=claude_home)
    seed_models("claude_code", claude_home)
    srv = hub_serve.make_server(port=0, key=KEY, home=chatgpt_home)
    hub_serve.start_in_thread(srv)
    yield srv
    srv.shutdown()
    srv.server_close()


def ask(server, model: str) -> None:
    response = requests.post(f"{server.base_url}/v1/chat/completions", timeout=10,
                             headers={"Authorization": f"Bearer {KEY}"},
                             json={"model": model, "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200, response.text


def usage_of(cli, provider: str):
    result = cli("status", provider, "--json")
    assert result.returncode == 0, result.stderr
    return result.json[0]["usage"]


def test_status_shows_the_windows_of_the_last_answer(server, cli, home, subscription, anthropic):
    assert usage_of(cli, "chatgpt") is None  # nothing seen yet
    ask(server, "chatgpt/gpt-5")
    ask(server, "claude_code/claude-sonnet-4-20250514")
    assert wait_until(lambda: (home / "chatgpt_usage.json").exists() and (home / "claude_code_usage.json").exists())
    assert (home / "chatgpt_usage.json").stat().st_mode & 0o777 == 0o600

    codex = usage_of(cli, "chatgpt")
    assert codex["account"] == subscription.account_id
    primary, secondary = codex["windows"]
    assert (primary["name"], primary["used_percent"], primary["window_minutes"]) == ("primary", 12.0, 300)
    assert (secondary["name"], secondary["used_percent"], secondary["window_minutes"]) == ("secondary", 40.0, 10080)
    assert 0 < primary["resets_in"] <= 3600 and primary["resets_at"].endswith("Z")
    claude = usage_of(cli, "claude_code")
    assert [(w["name"], w["used_percent"], w["window_minutes"]) for w in claude["windows"]] == [
        ("5h", 21.0, 300), ("7d", 68.0, 10080)]

    # The latest answer wins.
    subscription.codex_usage["primary"] = (55.5, 300, 600)
    ask(server, "chatgpt/gpt-5")
    assert wait_until(lambda: json.loads((home / "chatgpt_usage.json").read_text())["windows"][0]["used_percent"]
                      == 55.5)
    assert usage_of(cli, "chatgpt")["windows"][0]["used_percent"] == 55.5

    text = cli("status", "chatgpt").stdout
    assert "usage:    primary 55.5% used of 5 h, resets in" in text
    assert "secondary 40% used of 7 d" in text


def test_a_rate_limited_answer_records_its_windows_too(server, home, subscription):
    subscription.codex_usage["primary"] = (100.0, 300, 1200)
    subscription.fail_next("/backend-api/codex/responses", 429, {"detail": "Usage limit reached."},
                           headers={"x-codex-primary-used-percent": "100", "x-codex-primary-window-minutes": "300"})
    response = requests.post(f"{server.base_url}/v1/responses", timeout=10, headers={"Authorization": f"Bearer {KEY}"},
                             json={"model": "chatgpt/gpt-5", "input": "hi"})
    assert response.status_code == 429
    assert response.json()["error"]["message"] == "Usage limit reached."
    assert wait_until(lambda: (home / "chatgpt_usage.json").exists())
    windows = json.loads((home / "chatgpt_usage.json").read_text())["windows"]
    assert windows == [{"name": "primary", "used_percent": 100.0, "window_minutes": 300}]


def test_the_serve_command_answers_v1_in_its_own_process(chatgpt_home, subscription, cli):
    """`oauth-hub serve` as people start it: the banner names the /v1 base, and /v1 answers."""
    import subprocess

    seed_sign_in("chatgpt", subscription.mint_tokens(), home=chatgpt_home)
    seed_models("chatgpt", chatgpt_home)
    process = subprocess.Popen([*cli.command, "serve", "--port", "0", "--json", "--quiet"], env=cli.env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        info = json.loads(process.stdout.readline())
        assert sorted(info["routes"][0]["models"]) == ["chatgpt/gpt-5", "chatgpt/gpt-5-codex", "chatgpt/gpt-5-mini"]
        answer = requests.post(f"{info['base_url']}/v1/responses", timeout=10,
                               headers={"Authorization": f"Bearer {info['key']}"},
                               json={"model": "chatgpt/gpt-5", "input": "hi"})
        assert answer.status_code == 200 and answer.json()["output"][-1]["content"][0]["text"] == "pong"
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=20)
    assert f"OpenAI clients: {info['base_url']}/v1" in stderr
