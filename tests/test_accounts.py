"""Several accounts per provider (issue 15), end to end against the strict fakes.

Two ChatGPT and two Claude accounts side by side: ``token``, ``env``, ``exec``,
``export``, ``serve`` and the embedding API each reach the account they were asked for,
as the fakes record it (the bearer and account header they received); the default
account switches; logout takes one account and only its exports; eight processes
refreshing two accounts at once make exactly one refresh per account.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import requests

from oauth_core import serve as hub_serve
from oauth_core.http import HttpClient
from oauth_core.login import build_model_entries, write_model_entries
from oauth_core.provider import Provider, account_prefix
from oauth_core.store import Store, record_name
from oauth_core.testing.seed import seed_sign_in
from oauth_core.tokens import load_credentials

from .test_serve import KEY

PERSONAL = {"email": "me@example.com", "account_id": "acct-personal", "plan": "plus"}
WORK = {"email": "me@corp.example", "account_id": "acct-work", "plan": "team"}
SONNET = "claude-sonnet-4-20250514"


def login(cli, idp, account: str | None, identity: dict) -> None:
    for name, value in identity.items():
        setattr(idp, name, value)
    args = ["login", "chatgpt", "--no-browser"][:2] + (["--account", account] if account else [])
    result = cli(*args)
    assert result.returncode == 0, result.stderr


def stored(home, record: str) -> dict:
    return json.loads((home / f"{record}_oauth.json").read_text())


def model_keys(home, record: str) -> list[str]:
    return sorted(json.loads((home / f"{record}_models.json").read_text()))


def seed_account(provider: str, answer: dict, home, account: str) -> None:
    """A sign-in and its model entries, named as a login names them (in-process, no browser)."""
    seed_sign_in(provider, answer, home=home, account=account)
    store = Store(home)
    loaded = Provider.load(provider, store)
    credentials = load_credentials(provider, store, account)
    prefix = account_prefix(loaded.settings, account, account == store.default_account(provider))
    entries = build_model_entries(loaded, HttpClient(), credentials, prefix=prefix)
    write_model_entries(store.models_path(record_name(provider, account)), entries, loaded.settings["oauth_source"])


@pytest.fixture
def two_chatgpt(cli, chatgpt_home, subscription):
    """`login chatgpt` (main, the default) and `login chatgpt --account work`, through the real CLI."""
    login(cli, subscription, None, PERSONAL)
    login(cli, subscription, "work", WORK)
    return chatgpt_home


def test_login_adds_an_account_and_every_command_reaches_the_one_named(cli, two_chatgpt, subscription):
    home = two_chatgpt
    main, work = stored(home, "chatgpt"), stored(home, "chatgpt@work")
    assert main["account"]["email"] == PERSONAL["email"] and work["account"]["email"] == WORK["email"]
    assert main["access_token"] != work["access_token"]

    listed = cli("accounts", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(r["provider"], r["account"], r["email"], r["plan"], r["default"]) for r in listed.json] == [
        ("chatgpt", "main", PERSONAL["email"], "plus", True), ("chatgpt", "work", WORK["email"], "team", False)]
    assert all(r["expires_in"] > 0 for r in listed.json)
    table = cli("accounts", "chatgpt").stdout.splitlines()
    assert table[0].split() == ["PROVIDER", "ACCOUNT", "EMAIL", "PLAN", "DEFAULT", "EXPIRES"]
    assert table[1].split()[:5] == ["chatgpt", "main", PERSONAL["email"], "plus", "*"]

    # token: the default, --account, PROVIDER@NAME, and $OAUTH_HUB_ACCOUNT.
    assert cli("token", "chatgpt").stdout.strip() == main["access_token"]
    assert cli("token", "chatgpt", "--account", "work").stdout.strip() == work["access_token"]
    assert cli("token", "chatgpt@work").stdout.strip() == work["access_token"]
    assert cli("token", "chatgpt", env={"OAUTH_HUB_ACCOUNT": "work"}).stdout.strip() == work["access_token"]
    missing = cli("token", "chatgpt", "--account", "nope")
    assert missing.returncode == 1 and "has no account 'nope'" in missing.stderr and "main, work" in missing.stderr
    assert cli("token", "chatgpt", "--account", "../x").returncode != 0

    # env and exec: the same variable names, the chosen account's values.
    env = cli("env", "chatgpt", "--account", "work").stdout
    assert "export CHATGPT_ACCOUNT_ID=acct-work" in env and work["access_token"] in env
    assert "acct-personal" in cli("env", "chatgpt").stdout
    probe = [sys.executable, "-c", "import os; print(os.environ['CHATGPT_ACCOUNT_ID'])"]
    assert cli("exec", "chatgpt", "--account", "work", "--", *probe).stdout.strip() == "acct-work"
    assert cli("exec", "--account", "work", "chatgpt", "--", *probe).stdout.strip() == "acct-work"
    assert cli("exec", "chatgpt", "--", *probe).stdout.strip() == "acct-personal"

    # Model entries: the default keeps today's names, the other carries its account's name.
    assert model_keys(home, "chatgpt") and all(not k.startswith("chatgpt-work-") for k in model_keys(home, "chatgpt"))
    assert model_keys(home, "chatgpt@work") and all(k.startswith("chatgpt-work-")
                                                    for k in model_keys(home, "chatgpt@work"))

    # status shows both accounts.
    status = cli("status", "chatgpt", "--json").json
    assert [(r["account"], r["email"], r["default"]) for r in status] == [
        ("main", PERSONAL["email"], True), ("work", WORK["email"], False)]


def test_the_embedding_api_takes_account_everywhere(two_chatgpt, subscription):
    from oauth_core import (
        OAuthHubAuth,
        get_api_key,
        get_credentials,
        get_environment,
        get_token,
        refresh_credentials,
        status,
    )

    home = two_chatgpt
    work = stored(home, "chatgpt@work")
    assert get_token("chatgpt", home=home, account="work") == work["access_token"]
    assert get_token("chatgpt", home=home) == stored(home, "chatgpt")["access_token"]
    assert get_credentials("chatgpt", home=home, account="work").account_name == "work"
    assert get_environment("chatgpt", home=home, account="work")["CHATGPT_ACCOUNT_ID"] == "acct-work"
    with pytest.raises(Exception, match="no API key"):
        get_api_key("chatgpt", home=home, account="work")
    assert [r["account"] for r in status("chatgpt", home=home, account="work")] == ["work"]

    # The requests auth sends the work account's token and account header; the fake records them.
    session = requests.Session()
    session.auth = OAuthHubAuth("chatgpt", home=home, account="work")
    answer = session.get(f"{subscription.chatgpt_base}/models", params={"client_version": "0.171.0"}, timeout=10)
    assert answer.status_code == 200
    seen = subscription.requests_to("/backend-api/codex/models")[-1].headers
    assert seen["authorization"] == f"Bearer {work['access_token']}"
    assert seen["chatgpt-account-id"] == "acct-work"

    # A forced refresh of one account leaves the other's record byte for byte.
    before_main = (home / "chatgpt_oauth.json").read_bytes()
    refreshed = refresh_credentials("chatgpt", home=home, account="work", force=True)
    assert refreshed.access_token != work["access_token"] and refreshed.account_name == "work"
    assert stored(home, "chatgpt@work")["access_token"] == refreshed.access_token
    assert (home / "chatgpt_oauth.json").read_bytes() == before_main
    assert subscription.count("/oauth/token", "refresh_token") == 1


def test_accounts_default_switches_and_renames_the_model_entries(cli, two_chatgpt):
    home = two_chatgpt
    work_token = stored(home, "chatgpt@work")["access_token"]
    switched = cli("accounts", "default", "chatgpt", "work")
    assert switched.returncode == 0, switched.stderr
    assert "work is now the default chatgpt account" in switched.stderr
    assert cli("token", "chatgpt").stdout.strip() == work_token
    assert json.loads((home / "accounts.json").read_text())["defaults"] == {"chatgpt": "work"}
    # Today's names now belong to work; main's entries carry its name.
    assert all(not k.startswith("chatgpt-work-") for k in model_keys(home, "chatgpt@work"))
    assert all(k.startswith("chatgpt-main-") for k in model_keys(home, "chatgpt"))
    assert [(r["account"], r["default"]) for r in cli("accounts", "--json").json] == [
        ("main", False), ("work", True)]
    unknown = cli("accounts", "default", "chatgpt", "nope")
    assert unknown.returncode == 1 and "has no account 'nope'" in unknown.stderr


@pytest.mark.parametrize("args", [(), ("chatgpt",), ("chatgpt", "work", "extra")])
def test_accounts_default_with_the_wrong_arguments_shows_its_usage(cli, two_chatgpt, args):
    result = cli("accounts", "default", *args)
    assert result.returncode == 2
    assert result.stderr.startswith("Error: Usage: oauth-hub accounts default PROVIDER NAME")
    assert result.stderr.count("\n") == 1 and "Unknown provider" not in result.stderr
    assert cli("accounts", "--json").json[0]["default"] is True  # nothing changed


def test_logout_of_one_account_removes_it_and_only_its_exports(cli, two_chatgpt, subscription, tmp_path):
    home = two_chatgpt
    main_before = stored(home, "chatgpt")
    main_file, work_file = tmp_path / "main.json", tmp_path / "work.json"
    shared = tmp_path / "shared.json"
    for args in (("--account", "work", "-o", str(work_file)), ("-o", str(main_file)),
                 ("--account", "work", "-o", str(shared)), ("-o", str(shared))):
        result = cli("export", "chatgpt", *args)
        assert result.returncode == 0, result.stderr
    both = json.loads(shared.read_text())
    assert any(k.startswith("chatgpt-work-") for k in both) and any(not k.startswith("chatgpt-work-") for k in both)

    out = cli("logout", "chatgpt", "--account", "work", "--json")
    assert out.returncode == 0, out.stderr
    report = out.json
    assert report["account"] == "work" and report["was_logged_in"]
    assert {item["path"] for item in report["removed_exports"]} == {str(work_file), str(shared)}
    assert not (home / "chatgpt@work_oauth.json").exists() and not (home / "chatgpt@work_models.json").exists()
    assert not work_file.exists() or not json.loads(work_file.read_text())
    left = json.loads(shared.read_text())
    assert left and not any(k.startswith("chatgpt-work-") for k in left)  # main's entries stay
    assert json.loads(main_file.read_text())
    # The revocation was work's refresh token, and main is untouched and still works.
    assert subscription.requests_to("/oauth/revoke")[-1].json["token"] != main_before["refresh_token"]
    assert stored(home, "chatgpt") == main_before
    assert cli("token", "chatgpt").stdout.strip() == main_before["access_token"]
    assert [r["account"] for r in cli("accounts", "--json").json] == ["main"]


def test_logout_of_a_mistyped_account_names_the_accounts_there_are(cli, two_chatgpt):
    home = two_chatgpt
    before = {record: stored(home, record) for record in ("chatgpt", "chatgpt@work")}
    result = cli("logout", "chatgpt", "--account", "wrok")
    assert result.returncode == 0, result.stderr
    assert "its accounts: main, work; check the name" in result.stderr and "nothing to do" in result.stderr
    assert {record: stored(home, record) for record in before} == before


def test_logging_out_the_default_makes_the_next_account_the_default(cli, two_chatgpt):
    home = two_chatgpt
    work_token = stored(home, "chatgpt@work")["access_token"]
    assert cli("logout", "chatgpt").returncode == 0
    assert not (home / "chatgpt_oauth.json").exists()
    assert cli("token", "chatgpt").stdout.strip() == work_token
    assert all(not k.startswith("chatgpt-work-") for k in model_keys(home, "chatgpt@work"))
    assert cli("logout", "chatgpt", "--account", "work").returncode == 0
    assert not (home / "accounts.json").exists()
    assert sorted(p.name for p in home.iterdir()) == ["config.toml"]


def test_the_first_account_is_the_default_whatever_its_name(cli, chatgpt_home, subscription):
    login(cli, subscription, "work", WORK)
    login(cli, subscription, "alpha", PERSONAL)  # sorts before work: must not take over the default
    assert not (chatgpt_home / "chatgpt_oauth.json").exists()
    assert cli("token", "chatgpt").stdout.strip() == stored(chatgpt_home, "chatgpt@work")["access_token"]
    assert all(not k.startswith("chatgpt-work-") for k in model_keys(chatgpt_home, "chatgpt@work"))
    assert all(k.startswith("chatgpt-alpha-") for k in model_keys(chatgpt_home, "chatgpt@alpha"))


def test_a_login_that_replaces_another_person_says_so(cli, chatgpt_home, subscription):
    # `login chatgpt` without --account replaces the default account: when the browser
    # was signed in as someone else, the person is told whose sign-in was ended.
    login(cli, subscription, None, PERSONAL)
    same = cli("login", "chatgpt")  # the same person again: nothing to say
    assert same.returncode == 0 and "replaced" not in same.stderr
    for name, value in WORK.items():
        setattr(subscription, name, value)
    other = cli("login", "chatgpt")
    assert other.returncode == 0, other.stderr
    notes = [line for line in other.stderr.splitlines() if "replaced" in line]
    assert len(notes) == 1
    assert "me@example.com" in notes[0] and "ended it at the provider" in notes[0]
    assert "oauth-hub login chatgpt --account NAME" in notes[0]
    assert stored(chatgpt_home, "chatgpt")["account"]["email"] == WORK["email"]
    assert subscription.count("/oauth/revoke") == 2  # the personal sign-in, then its same-person successor


# -- two ChatGPT and two Claude accounts through serve -----------------------------------------


@pytest.fixture
def four_accounts(chatgpt_home, claude_home, subscription, anthropic):
    anthropic.stream_delay = 0
    home = chatgpt_home
    seed_account("chatgpt", subscription.mint_tokens(**PERSONAL), home, "main")
    seed_account("chatgpt", subscription.mint_tokens(**WORK), home, "work")
    seed_account("claude_code", anthropic.mint_tokens(email="me@example.com", plan="pro"), home, "main")
    seed_account("claude_code", anthropic.mint_tokens(email="me@team.example", plan="team"), home, "team")
    return home


@pytest.fixture
def gateway(four_accounts):
    server = hub_serve.make_server(port=0, key=KEY, home=four_accounts)
    hub_serve.start_in_thread(server)
    yield server
    server.shutdown()
    server.server_close()


def chat(server, model: str) -> requests.Response:
    return requests.post(f"{server.base_url}/v1/chat/completions", headers={"Authorization": f"Bearer {KEY}"},
                         json={"model": model, "messages": [{"role": "user", "content": "hi"}]}, timeout=30)


def test_serve_routes_each_model_name_to_its_account(gateway, four_accounts, subscription, anthropic):
    home = four_accounts
    tokens = {record: stored(home, record)["access_token"]
              for record in ("chatgpt", "chatgpt@work", "claude_code", "claude_code@team")}
    cases = [("chatgpt/gpt-5", "chatgpt"), ("chatgpt@work/gpt-5", "chatgpt@work"),
             ("chatgpt-work-gpt-5", "chatgpt@work"), ("chatgpt-gpt-5", "chatgpt"),
             (f"claude_code/{SONNET}", "claude_code"), (f"claude_code@team/{SONNET}", "claude_code@team"),
             (f"claude-code-team-{SONNET}", "claude_code@team")]
    for model, record in cases:
        answer = chat(gateway, model)
        assert answer.status_code == 200, (model, answer.text)
        fake, path = (subscription, "/backend-api/codex/responses") if record.startswith("chatgpt") \
            else (anthropic, "/v1/messages")
        assert fake.requests_to(path)[-1].headers["authorization"] == f"Bearer {tokens[record]}", model
    assert subscription.requests_to("/backend-api/codex/responses")[-1].headers["chatgpt-account-id"] == "acct-personal"
    listed = requests.get(f"{gateway.base_url}/v1/models", headers={"Authorization": f"Bearer {KEY}"}, timeout=10)
    ids = {m["id"] for m in listed.json()["data"]}
    assert {"chatgpt/gpt-5", "chatgpt@work/gpt-5", f"claude_code/{SONNET}", f"claude_code@team/{SONNET}"} <= ids
    unknown = chat(gateway, "chatgpt@nope/gpt-5")
    assert unknown.status_code == 404 and "no account 'nope'" in unknown.text

    # The raw route names an account the same way.
    raw = requests.get(f"{gateway.base_url}/chatgpt@work/models", params={"client_version": "0.171.0"},
                       headers={"Authorization": f"Bearer {KEY}"}, timeout=10)
    assert raw.status_code == 200
    assert subscription.requests_to("/backend-api/codex/models")[-1].headers["chatgpt-account-id"] == "acct-work"

    # Usage windows are kept per account.
    assert (home / "chatgpt@work_usage.json").exists() and (home / "claude_code@team_usage.json").exists()
    work_usage = json.loads((home / "chatgpt@work_usage.json").read_text())
    assert work_usage["account"] == "acct-work"


def test_an_export_through_serve_reaches_its_account(cli, gateway, four_accounts, subscription, tmp_path):
    """`export --account work` writes entries that, sent through serve, use the work account."""
    target = tmp_path / "extra_models.json"
    result = cli("export", "chatgpt", "--account", "work", "-o", str(target), "--serve-port", str(gateway.port))
    assert result.returncode == 0, result.stderr
    assert "chatgpt (account work) models to" in result.stderr  # the summary names the account
    entries = json.loads(target.read_text())
    assert entries and all(k.startswith("chatgpt-work-") for k in entries)
    entry = next(e for k, e in entries.items() if k == "chatgpt-work-gpt-5")
    endpoint = entry["custom_endpoint"]
    answer = requests.post(f"{endpoint['url']}/chat/completions", headers={"Authorization": f"Bearer {KEY}"},
                           json={"model": entry["name"], "messages": [{"role": "user", "content": "hi"}]},
                           timeout=30)
    assert answer.status_code == 200, answer.text
    sent = subscription.requests_to("/backend-api/codex/responses")[-1].headers
    assert sent["authorization"] == f"Bearer {stored(four_accounts, 'chatgpt@work')['access_token']}"


# -- eight processes, two accounts -------------------------------------------------------------

RACE = """
import sys
from oauth_core import get_token
order = sys.argv[1:]
print(" ".join(get_token("chatgpt", account=a) for a in order))
"""


def test_eight_processes_refreshing_two_accounts_make_one_refresh_each(chatgpt_home, subscription, cli):
    home = chatgpt_home
    old = {}
    for account, identity in (("main", PERSONAL), ("work", WORK)):
        answer = subscription.mint_tokens(**identity)
        answer["expires_in"] = -10  # stored as expired; the refreshes the fake gives are good for an hour
        seed_sign_in("chatgpt", answer, home=home, account=account)
        old[account] = stored(home, record_name("chatgpt", account))["refresh_token"]
    env = dict(cli.env)
    procs = [subprocess.Popen([sys.executable, "-c", RACE, *(("main", "work") if i % 2 else ("work", "main"))],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(8)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
    bodies = [r.json or r.form or {} for r in subscription.requests_to("/oauth/token")]
    refreshes = [b["refresh_token"] for b in bodies if b.get("grant_type") == "refresh_token"]
    assert sorted(refreshes) == sorted(old.values())  # exactly one each, each with its own refresh token
    new = {a: stored(home, record_name("chatgpt", a))["access_token"] for a in ("main", "work")}
    for (stdout, _), proc in zip(outputs, procs, strict=True):
        order = proc.args[3:]
        assert stdout.split() == [new[a] for a in order]
    assert (home / "chatgpt_oauth.lock").exists() and (home / "chatgpt@work_oauth.lock").exists()


def test_each_account_refreshes_under_its_own_lock(cli, two_chatgpt, subscription):
    """While one process holds the main account's refresh lock, the work account refreshes at once
    (one lock for the whole provider would keep it waiting, then fail after 30 seconds)."""
    from oauth_core.store import Store, provider_lock

    store = Store(two_chatgpt)
    with provider_lock(store.lock_path("chatgpt"), timeout=5, who="test"):
        refreshed = cli("refresh", "chatgpt", "--account", "work")
        assert refreshed.returncode == 0, refreshed.stderr
        blocked = cli("refresh", "chatgpt", timeout=90)
    assert blocked.returncode == 1 and "Another program has been using the chatgpt sign-in" in blocked.stderr
    assert subscription.count("/oauth/token", "refresh_token") == 1


def test_a_provider_added_later_has_accounts_too(cli, home, tmp_path):
    """OpenRouter (a key, no refresh token) signs in twice side by side like any provider."""
    from oauth_core.testing.fake_openrouter import FakeOpenRouter

    from .conftest import write_config

    with FakeOpenRouter() as openrouter:
        write_config(home, "openrouter", **openrouter.provider_settings(), callback_timeout=20)
        for args in (("login", "openrouter"), ("login", "openrouter", "--account", "team")):
            result = cli(*args)
            assert result.returncode == 0, result.stderr
        main, team = stored(home, "openrouter"), stored(home, "openrouter@team")
        assert main["access_token"] != team["access_token"]
        assert cli("token", "openrouter", "--account", "team").stdout.strip() == team["access_token"]
        assert cli("token", "openrouter").stdout.strip() == main["access_token"]
        assert cli("logout", "openrouter", "--account", "team").returncode == 0
        assert not (home / "openrouter@team_oauth.json").exists()
        assert cli("token", "openrouter").stdout.strip() == main["access_token"]
