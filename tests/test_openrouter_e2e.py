"""`oauth-hub login openrouter` end to end: the documented PKCE flow, the key, its limits, logout.

The real `oauth-hub` command runs against FakeOpenRouter with the scripted browser.
OpenRouter documents no `state`; the provider binds the login's state into the callback
URL itself, and these tests show a callback without it is refused.
"""

from __future__ import annotations

import json
import re
import stat
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from oauth_core.auth import OAuthHubAuth
from oauth_core.errors import SignInEnded
from oauth_core.testing._server import s256
from oauth_core.testing.browser import follow
from oauth_core.testing.fake_openrouter import FakeOpenRouter
from oauth_core.testing.seed import seed_sign_in

from .conftest import write_config
from .test_login_remote import Running

CHAT_MODELS = {"openai/gpt-4o", "anthropic/claude-sonnet-4.5", "meta-llama/llama-3.3-70b-instruct:free"}


@pytest.fixture
def openrouter():
    with FakeOpenRouter() as fake:
        yield fake


@pytest.fixture
def openrouter_home(home, openrouter):
    write_config(home, "openrouter", **openrouter.provider_settings(), callback_timeout=20)
    return home


def stored(home) -> dict:
    return json.loads((home / "openrouter_oauth.json").read_text())


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_pkce_login_status_token_logout(cli, openrouter_home, openrouter):
    result = cli("login", "openrouter")
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr

    authorize, callback = cli.visited()[:2]
    assert authorize.startswith(openrouter.auth_url + "?")
    query = query_of(authorize)
    assert set(query) == {"callback_url", "code_challenge", "code_challenge_method", "key_label"}
    assert query["code_challenge_method"] == "S256" and query["key_label"] == "oauth-hub"
    # A localhost callback on a free port, carrying the login's own state (OpenRouter has none).
    target = urlsplit(query["callback_url"])
    assert target.scheme == "http" and target.hostname == "localhost" and target.path == "/callback"
    state = query_of(query["callback_url"])["state"]
    assert len(state) >= 43
    # OpenRouter sent the browser back to that URL with the code added to its query.
    assert callback.startswith(query["callback_url"] + "&code=")

    (exchange,) = openrouter.requests_to(openrouter.keys_url)
    assert set(exchange.json) == {"code", "code_verifier", "code_challenge_method"}
    assert exchange.json["code_challenge_method"] == "S256"
    assert s256(exchange.json["code_verifier"]) == query["code_challenge"]
    assert exchange.json["code"] == query_of(callback)["code"]
    assert exchange.headers["x-openrouter-title"] == "oauth-hub"

    data = stored(openrouter_home)
    assert stat.S_IMODE((openrouter_home / "openrouter_oauth.json").stat().st_mode) == 0o600
    (key,) = openrouter.keys()
    assert data["access_token"] == data["api_key"] == key
    assert data["refresh_token"] is None and data["expires_at"] is None  # the key is the credential
    assert data["account"]["account_id"] == openrouter.user_id
    assert data["account"]["key_label"] == openrouter.key_record(key)["label"]
    assert openrouter.key_record(key)["name"] == "oauth-hub"

    entries = json.loads((openrouter_home / "openrouter_models.json").read_text())
    assert {e["name"] for e in entries.values()} == CHAT_MODELS  # no image models
    gpt = entries["openrouter-openai/gpt-4o"]
    assert gpt["custom_endpoint"] == {"url": openrouter.api_base, "api_key": "$OPENROUTER_API_KEY",
                                      "headers": {"X-OpenRouter-Title": "oauth-hub"}}
    assert gpt["supports"]["tools"] and gpt["supports"]["vision"]
    assert entries["openrouter-meta-llama/llama-3.3-70b-instruct:free"]["supports"]["tools"] is False

    (row,) = cli("status", "openrouter", "--json").json
    assert row["logged_in"] and row["account_id"] == openrouter.user_id and row["plan"] == "credits"
    assert row["has_api_key"] is True and row["expires_at"] is None
    assert row["limits"]["label"] == openrouter.key_record(key)["label"]
    assert row["limits"]["limit"] == 10.0 and row["limits"]["limit_remaining"] == 10.0
    assert row["limits"]["limit_reset"] == "monthly" and row["limits"]["usage"] == 0
    assert "$10.00 of $10.00 left" in cli("status", "openrouter").stdout

    assert cli("token", "openrouter").stdout.strip() == key
    assert cli("token", "openrouter", "--api-key").stdout.strip() == key
    assert cli("env", "openrouter").stdout.strip() == f"export OPENROUTER_API_KEY={key}"

    before = len(openrouter.requests)
    out = cli("logout", "openrouter")
    assert out.returncode == 0, out.stderr
    assert "https://openrouter.ai/settings/keys" in out.stderr and "cannot delete itself" in out.stderr
    assert len(openrouter.requests) == before  # nothing to call: the key cannot revoke itself
    assert openrouter.keys() == [key]  # still valid at OpenRouter, as the message says
    assert sorted(p.name for p in openrouter_home.iterdir()) == ["config.toml"]


def test_a_callback_without_the_state_is_refused(cli, openrouter_home, openrouter):
    running = Running(cli, "login", "openrouter", "--no-browser")
    url = running.wait_for(r"(http://127\.0\.0\.1:\d+/auth\?\S+)").group(1)
    callback = query_of(url)["callback_url"]
    bare = callback.split("?")[0]
    # What a naive redirect (or a page that guessed the port) would send: a code and no state.
    forged = requests.get(f"{bare}?code=stolen-or-guessed", timeout=5)
    assert forged.status_code == 400 and "does not match" in forged.text
    # The real round trip still completes the same login.
    final, status, _ = follow(url)
    assert status == 200 and final.startswith(callback + "&code=")
    assert running.finish() == 0, running.stderr
    assert openrouter.requests_to(openrouter.keys_url)[0].json["code"] == query_of(final)["code"]


def test_the_fake_refuses_what_openrouter_does_not_document(openrouter):
    """127.0.0.1 callbacks are not documented (localhost is): the provider must not depend on them."""
    challenge = s256("v" * 43)
    page = requests.get(openrouter.auth_url, params={"callback_url": "http://127.0.0.1:5555/callback",
                                                     "code_challenge": challenge, "code_challenge_method": "S256"},
                        allow_redirects=False, timeout=5)
    assert page.status_code == 400
    ok = requests.get(openrouter.auth_url, params={"callback_url": "http://localhost:5555/callback?state=s",
                                                   "code_challenge": challenge, "code_challenge_method": "S256"},
                      allow_redirects=False, timeout=5)
    location = ok.headers["Location"]
    assert location.startswith("http://localhost:5555/callback?state=s&code=")
    code = query_of(location)["code"]
    wrong = requests.post(openrouter.keys_url, json={"code": code, "code_verifier": "w" * 43,
                                                     "code_challenge_method": "S256"}, timeout=5)
    assert wrong.status_code == 403 and wrong.json() == {"error": {"code": 403,
                                                                   "message": "Invalid code or code_verifier"}}
    method = requests.post(openrouter.keys_url, json={"code": code, "code_verifier": "v" * 43,
                                                      "code_challenge_method": "plain"}, timeout=5)
    assert method.status_code == 400 and method.json()["error"]["message"] == "Invalid code_challenge_method"
    good = requests.post(openrouter.keys_url, json={"code": code, "code_verifier": "v" * 43,
                                                    "code_challenge_method": "S256"}, timeout=5)
    assert good.status_code == 200 and re.fullmatch(r"sk-or-v1-[0-9a-f]{64}", good.json()["key"])
    again = requests.post(openrouter.keys_url, json={"code": code, "code_verifier": "v" * 43,
                                                     "code_challenge_method": "S256"}, timeout=5)
    assert again.status_code == 403  # single use
    assert requests.get(openrouter.keys_url, timeout=5).status_code == 405


def test_token_env_and_exec_never_refresh_a_key(cli, openrouter_home, openrouter):
    key = openrouter.mint_key()
    seed_sign_in("openrouter", {"access_token": key, "user_id": openrouter.user_id}, home=openrouter_home,
                 api_key=key, last_refresh="2020-01-01T00:00:00Z")  # years old: any refresh rule would fire
    before = len(openrouter.requests)
    assert cli("token", "openrouter").stdout.strip() == key
    assert cli("env", "openrouter").stdout.strip() == f"export OPENROUTER_API_KEY={key}"
    ran = cli("exec", "openrouter", "--", "sh", "-c", 'test "$OPENROUTER_API_KEY" = "$1"', "sh", key)
    assert ran.returncode == 0, ran.stderr
    assert len(openrouter.requests) == before  # not one request: there is nothing to refresh
    assert stored(openrouter_home)["last_refresh"] == "2020-01-01T00:00:00Z"
    forced = cli("refresh", "openrouter")
    assert forced.returncode == 1 and "oauth-hub login openrouter" in forced.stderr
    assert len(openrouter.requests) == before


def test_limits_follow_spending_and_a_deleted_key_says_log_in_again(cli, openrouter_home, openrouter):
    key = openrouter.mint_key()
    seed_sign_in("openrouter", {"access_token": key, "user_id": openrouter.user_id}, home=openrouter_home,
                 api_key=key)
    body = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    answer = requests.post(openrouter.chat_url, json=body, auth=OAuthHubAuth("openrouter", home=openrouter_home),
                           timeout=5)
    assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"] == openrouter.reply_text
    assert openrouter.requests_to(openrouter.chat_url)[0].headers["x-openrouter-title"] == "oauth-hub"
    (row,) = cli("status", "openrouter", "--json").json
    assert row["limits"]["usage"] == 0.25 and row["limits"]["limit_remaining"] == 9.75

    openrouter.delete_key(key)  # the person deleted it on openrouter.ai
    (row,) = cli("status", "openrouter", "--json").json
    assert row["logged_in"] and "HTTP 401" in row["error"]
    with pytest.raises(SignInEnded, match="run `oauth-hub login openrouter`"):  # no renewal can help a dead key
        requests.post(openrouter.chat_url, json=body, auth=OAuthHubAuth("openrouter", home=openrouter_home),
                      timeout=5)
    assert len(openrouter.requests_to(openrouter.chat_url)) == 2  # the call, refused; no retry with the same key
    assert stored(openrouter_home)["api_key"] == key  # nothing was lost or rewritten
