"""`oauth-hub login copilot` end to end: GitHub's device flow, the Copilot token, plan, quota, logout.

The real `oauth-hub` command runs against FakeCopilot; a script plays the person, reading
the code the command shows and typing it into the fake github.com/login/device page.
"""

from __future__ import annotations

import json
import re
import stat
import subprocess
import time

import pytest
import requests

from oauth_core import tokens
from oauth_core.auth import OAuthHubAuth
from oauth_core.testing.fake_copilot import IDE_CLIENT_ID, FakeCopilot
from oauth_core.testing.seed import seed_sign_in

from .conftest import write_config
from .test_login_remote import Running

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
USABLE = {"gpt-4.1", "gpt-5-mini", "gpt-5-codex", "claude-sonnet-4.5"}


@pytest.fixture
def copilot():
    with FakeCopilot(interval=1, slow_down_increment=1) as fake:
        yield fake


@pytest.fixture
def copilot_home(home, copilot):
    write_config(home, "copilot", **copilot.provider_settings())
    return home


def stored(home) -> dict:
    return json.loads((home / "copilot_oauth.json").read_text())


def approve_as_a_person(running: Running, fake: FakeCopilot, action: str = "authorize") -> str:
    """Read the code the command shows, open the page it names and type the code in."""
    page = running.wait_for(r"open this page on any device:\s+(\S+)").group(1)
    code = running.wait_for(r"enter the code:\s+([0-9A-F]{4}-[0-9A-F]{4})").group(1)
    assert page == fake.device_page_url
    assert requests.get(page, timeout=5).status_code == 200
    answer = requests.post(page, data={"user_code": code, "action": action}, timeout=5)
    assert answer.status_code == 200, answer.text
    return code


def login(cli, fake, *args: str) -> tuple[int, str]:
    running = Running(cli, "login", "copilot", "--no-browser", *args)
    approve_as_a_person(running, fake)
    return running.finish(), running.stderr


def test_device_login_status_token_logout(cli, copilot_home, copilot):
    before = time.time()
    code, stderr = login(cli, copilot)
    after = time.time()
    assert code == 0, stderr
    assert "Signed in to copilot." in stderr and "Warning" not in stderr
    assert "Account:  octocat@example.com (octocat)" in stderr and "Plan:     Pro" in stderr

    # The device code was asked for as the Copilot clients ask: JSON, the editor app, read:user.
    (start,) = copilot.requests_to(copilot.device_code_url)
    assert start.json == {"client_id": IDE_CLIENT_ID, "scope": "read:user"}
    assert start.headers["accept"] == "application/json"
    polls = copilot.requests_to(copilot.access_token_url)
    assert polls and all(p.json == {"client_id": IDE_CLIENT_ID, "device_code": polls[0].json["device_code"],
                                    "grant_type": DEVICE_GRANT} for p in polls)
    assert copilot.poll_results[-1] == "token" and set(copilot.poll_results[:-1]) <= {"authorization_pending"}

    # The GitHub token was exchanged once for a Copilot token; the record keeps both, privately.
    data = stored(copilot_home)
    assert stat.S_IMODE((copilot_home / "copilot_oauth.json").stat().st_mode) == 0o600
    assert data["refresh_token"].startswith("ghu_") and data["access_token"].startswith("tid=")
    (exchange,) = copilot.requests_to(copilot.copilot_token_url)
    assert exchange.headers["authorization"] == f"token {data['refresh_token']}"
    assert exchange.headers["editor-version"] == "vscode/1.104.3"
    lifetime = copilot.copilot_token_ttl - 300 + 60  # refresh_in + 60, as the language server reads it
    assert before + lifetime <= data["expires_at"] <= after + lifetime
    assert data["account"]["api_base"] == copilot.plan_api_url()  # the plan's host, from endpoints.api
    assert data["account"]["account_id"] == "octocat" and data["account"]["copilot_plan"] == "individual"

    # Models came from the plan's host with the Copilot token and every header the API wants.
    (listing,) = copilot.requests_to(copilot.plan_api_url() + "/models")
    assert listing.headers["authorization"] == f"Bearer {data['access_token']}"
    assert listing.headers["copilot-integration-id"] == "vscode-chat"
    assert listing.headers["editor-version"] == "vscode/1.104.3"
    assert listing.headers["editor-plugin-version"] == "copilot-chat/0.26.7"
    assert listing.headers["user-agent"] == "GitHubCopilotChat/0.26.7"
    entries = json.loads((copilot_home / "copilot_models.json").read_text())
    assert {e["name"] for e in entries.values()} == USABLE
    assert entries["copilot-gpt-5-codex"]["api"] == "responses"  # served through /responses only
    assert entries["copilot-gpt-4.1"]["supports"]["tools"] and entries["copilot-gpt-4.1"]["supports"]["vision"]
    assert entries["copilot-claude-sonnet-4.5"]["supported_endpoints"] == ["/chat/completions", "/v1/messages"]
    assert entries["copilot-claude-sonnet-4.5"]["premium"] is True and entries["copilot-gpt-4.1"]["premium"] is False

    status = cli("status", "copilot", "--json")
    assert status.returncode == 0, status.stderr
    (row,) = status.json
    assert row["logged_in"] and row["account_id"] == "octocat" and row["email"] == "octocat@example.com"
    assert row["plan"] == "Pro" and row["has_api_key"] is False
    limits = row["limits"]
    assert limits["copilot_plan"] == "individual" and limits["sku"] == "monthly_subscriber_quota"
    assert limits["quotas"]["premium_interactions"]["entitlement"] == 300
    assert limits["quotas"]["premium_interactions"]["remaining"] == 300
    assert limits["quotas"]["chat"]["unlimited"] is True
    assert "premium requests 300 of 300 left" in cli("status", "copilot").stdout

    assert cli("token", "copilot").stdout.strip() == data["access_token"]
    assert cli("token", "copilot", "--api-key").returncode == 1
    env = cli("env", "copilot").stdout
    assert "export COPILOT_ACCESS_TOKEN=" in env and f"COPILOT_API_BASE={copilot.plan_api_url()}" in env
    assert data["refresh_token"] not in env  # the long-lived GitHub token never leaves the record
    ran = cli("exec", "copilot", "--", "sh", "-c", 'test "$COPILOT_ACCESS_TOKEN" = "$1"', "sh", data["access_token"])
    assert ran.returncode == 0, ran.stderr
    assert copilot.count(copilot.copilot_token_url) == 1  # nothing above needed a new Copilot token

    requests_before = len(copilot.requests)
    out = cli("logout", "copilot")
    assert out.returncode == 0, out.stderr
    assert "https://github.com/settings/apps/authorizations" in out.stderr  # where to revoke: GitHub has no API
    assert "Revoked" not in out.stderr
    assert len(copilot.requests) == requests_before  # no revocation request exists to make
    assert sorted(p.name for p in copilot_home.iterdir()) == ["config.toml"]


def test_slow_down_raises_the_polling_interval(cli, copilot_home, copilot):
    copilot.force_slow_down = 1  # the server is busy: the first poll is told to slow down
    code, stderr = login(cli, copilot)
    assert code == 0, stderr
    # Told interval 2 (1 + 1), the client waited that long: a poll sooner would be slowed down again.
    assert copilot.poll_results.count("slow_down") == 1, copilot.poll_results
    assert copilot.poll_results[-1] == "token"


def test_denied_and_expired_codes_end_the_login_with_the_next_step(cli, copilot_home, copilot):
    running = Running(cli, "login", "copilot", "--no-browser")
    approve_as_a_person(running, copilot, action="deny")
    assert running.finish() == 1
    assert "cancelled at GitHub" in running.stderr and "oauth-hub login copilot" in running.stderr

    running = Running(cli, "login", "copilot", "--no-browser")
    running.wait_for(r"enter the code:")
    copilot.clock_offset = 3600  # the code's 15 minutes are over at GitHub
    assert running.finish() == 1
    assert "expired before it was entered" in running.stderr
    assert not (copilot_home / "copilot_oauth.json").exists()


@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "direct"])
def test_an_account_without_copilot_saves_nothing(cli, copilot_home, copilot, exchange):
    write_config(copilot_home, "copilot", token_exchange=exchange)
    copilot.plan = None
    code, stderr = login(cli, copilot)
    assert code == 1
    assert "no GitHub Copilot access" in stderr and "https://github.com/settings/copilot" in stderr
    assert not (copilot_home / "copilot_oauth.json").exists()


def test_expired_copilot_token_is_renewed_once_across_eight_processes(cli, copilot_home, copilot):
    seeded = seed_sign_in("copilot", copilot.mint_tokens(), home=copilot_home, expires_at=time.time() - 10)
    copilot.expire_copilot_tokens()
    before = copilot.count(copilot.copilot_token_url)
    procs = [subprocess.Popen([*cli.command, "token", "copilot"], env=cli.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(8)]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [err for _, err in outputs]
    printed = {out.strip() for out, _ in outputs}
    assert len(printed) == 1
    (token,) = printed
    assert token != seeded.access_token and token == stored(copilot_home)["access_token"]
    assert copilot.count(copilot.copilot_token_url) - before == 1  # one exchange for all eight
    assert stored(copilot_home)["refresh_token"] == seeded.refresh_token  # the GitHub token is kept
    # The renewed token is one the Copilot API takes.
    answer = requests.get(copilot.plan_api_url() + "/models", auth=OAuthHubAuth("copilot", home=copilot_home),
                          timeout=5)
    assert answer.status_code == 200 and answer.request.headers["Authorization"] == f"Bearer {token}"


def test_a_revoked_github_token_ends_the_sign_in_and_keeps_the_file(cli, copilot_home, copilot):
    seed_sign_in("copilot", copilot.mint_tokens(), home=copilot_home, expires_at=time.time() - 10)
    copilot.revoke_github_tokens()
    before = (copilot_home / "copilot_oauth.json").read_bytes()
    result = cli("token", "copilot")
    assert result.returncode == 1 and result.stdout == ""
    assert "no longer accepts" in result.stderr and "oauth-hub login copilot" in result.stderr
    assert (copilot_home / "copilot_oauth.json").read_bytes() == before


def test_calls_through_oauthhubauth_carry_the_copilot_headers(copilot_home, copilot):
    seed_sign_in("copilot", copilot.mint_tokens(), home=copilot_home)
    body = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]}
    answer = requests.post(tokens.get_credentials("copilot", home=copilot_home).account["api_base"]
                           + "/chat/completions", json=body, auth=OAuthHubAuth("copilot", home=copilot_home),
                           timeout=5)
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"] == copilot.reply_text
    (sent,) = copilot.inference_requests()
    assert sent.headers["copilot-integration-id"] == "vscode-chat" and sent.headers["openai-intent"]
    assert re.fullmatch(r"[0-9a-f-]{36}", sent.headers["x-request-id"])


def test_the_direct_token_camp_by_setting(cli, copilot_home, copilot):
    """token_exchange = false: the GitHub token is the bearer, never exchanged, never refreshed."""
    write_config(copilot_home, "copilot", token_exchange=False)
    code, stderr = login(cli, copilot)
    assert code == 0, stderr
    assert "Warning" not in stderr  # a token that does not expire is not "ending" for lack of a refresh token
    data = stored(copilot_home)
    assert data["access_token"].startswith("ghu_") and data["refresh_token"] is None
    assert data["expires_at"] is None and data["account"]["token_exchange"] is False
    assert copilot.requests_to(copilot.copilot_token_url) == []
    # The host still comes from the seat (copilot_internal/user's endpoints.api), as LiteLLM reads it.
    assert data["account"]["api_base"] == copilot.plan_api_url()
    (listing,) = copilot.requests_to(copilot.plan_api_url() + "/models")
    assert listing.headers["authorization"] == f"Bearer {data['access_token']}"
    # Nothing to refresh, however old the sign-in: token never asks anybody.
    raw = stored(copilot_home)
    raw["last_refresh"] = "2020-01-01T00:00:00Z"
    (copilot_home / "copilot_oauth.json").write_text(json.dumps(raw))
    count = len(copilot.requests)
    assert cli("token", "copilot").stdout.strip() == data["access_token"]
    assert len(copilot.requests) == count
