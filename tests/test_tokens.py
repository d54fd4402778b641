"""Token lifecycle: refresh when due, once across processes, and the embedding API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC

import pytest
import requests

from oauth_core import tokens
from oauth_core.auth import OAuthHubAuth
from oauth_core.credentials import parse_iso
from oauth_core.errors import OAuthHubError, SignInEnded
from oauth_core.testing.seed import seed_sign_in

REFRESH = "refresh_token"


def stored(home) -> dict:
    return json.loads((home / "chatgpt_oauth.json").read_text())


def test_fresh_token_is_served_without_a_request(cli, chatgpt_home, idp):
    seeded = seed_sign_in("chatgpt", idp.mint_tokens(), home=chatgpt_home)
    result = cli("token", "chatgpt")
    assert result.returncode == 0
    assert result.stdout.strip() == seeded.access_token
    assert idp.count("/oauth/token") == 0


def test_token_expiring_within_five_minutes_is_refreshed(cli, chatgpt_home, idp):
    # An hour-long token with two minutes left: the five-minute margin makes it due (not the
    # eight-day rule: the last refresh is an hour ago, whatever today's date).
    seeded = seed_sign_in("chatgpt", idp.mint_tokens(), home=chatgpt_home, expires_at=time.time() + 120,
                          last_refresh=utc_iso(time.time() - 3600))
    result = cli("token", "chatgpt")
    assert result.returncode == 0, result.stderr
    new = stored(chatgpt_home)
    assert result.stdout.strip() == new["access_token"] != seeded.access_token
    assert new["refresh_token"] != seeded.refresh_token  # rotated
    assert idp.count("/oauth/token", REFRESH) == 1
    (body,) = [r for r in idp.requests_to("/oauth/token") if r.json]
    assert body.json == {"client_id": "app_EMoamEEZ73f0CkXaXp7hrann", "grant_type": "refresh_token",
                         "refresh_token": seeded.refresh_token}
    assert new["expires_at"] > time.time() + 3000
    assert os.stat(chatgpt_home / "chatgpt_oauth.json").st_mode & 0o777 == 0o600


def test_eight_day_old_refresh_is_renewed(cli, chatgpt_home, idp):
    seed_sign_in("chatgpt", idp.mint_tokens(), home=chatgpt_home, last_refresh=utc_iso(time.time() - 9 * 86400))
    started = int(time.time())
    assert cli("token", "chatgpt").returncode == 0
    assert idp.count("/oauth/token", REFRESH) == 1
    assert started <= parse_iso(stored(chatgpt_home)["last_refresh"]) <= time.time()


def test_a_token_refreshed_seven_days_ago_is_left_alone(cli, chatgpt_home, idp):
    seed_sign_in("chatgpt", idp.mint_tokens(), home=chatgpt_home, last_refresh=utc_iso(time.time() - 7 * 86400))
    assert cli("token", "chatgpt").returncode == 0
    assert idp.count("/oauth/token", REFRESH) == 0


def utc_iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def test_fields_missing_from_the_refresh_answer_are_kept(chatgpt_home, idp):
    seeded = seed_sign_in("chatgpt", idp.mint_tokens(expires_in=-5), home=chatgpt_home)
    idp.refresh_omits = ("id_token",)
    token = tokens.get_token("chatgpt", home=chatgpt_home)
    after = stored(chatgpt_home)
    assert token == after["access_token"] != seeded.access_token
    assert after["id_token"] == seeded.id_token
    assert after["account"]["email"] == "user@example.com"


def test_eight_processes_after_expiry_make_one_refresh(cli, chatgpt_home, idp):
    seeded = seed_sign_in("chatgpt", idp.mint_tokens(), home=chatgpt_home, expires_at=time.time() - 10)
    procs = [subprocess.Popen([*cli.command, "token", "chatgpt"], env=cli.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(8)]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [err for _, err in outputs]
    printed = {out.strip() for out, _ in outputs}
    assert len(printed) == 1
    (token,) = printed
    assert token != seeded.access_token and token == stored(chatgpt_home)["access_token"]
    assert idp.count("/oauth/token", REFRESH) == 1


def test_threads_in_one_process_make_one_refresh(chatgpt_home, idp):
    from concurrent.futures import ThreadPoolExecutor

    seed_sign_in("chatgpt", idp.mint_tokens(), home=chatgpt_home, expires_at=time.time() - 10)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: tokens.get_token("chatgpt", home=chatgpt_home), range(8)))
    assert len(set(results)) == 1
    assert idp.count("/oauth/token", REFRESH) == 1


def test_reused_refresh_token_says_sign_in_again_and_keeps_file(cli, chatgpt_home, idp):
    seeded = seed_sign_in("chatgpt", idp.mint_tokens(), home=chatgpt_home, expires_at=time.time() - 10)
    # Another tool (without oauth-hub's lock) used the same refresh token first.
    other = requests.post(f"{idp.issuer}/oauth/token", timeout=5, json={
        "client_id": idp.client_id, "grant_type": "refresh_token", "refresh_token": seeded.refresh_token})
    assert other.status_code == 200
    before = (chatgpt_home / "chatgpt_oauth.json").read_bytes()
    result = cli("token", "chatgpt")
    assert result.returncode == 1 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "sign-in has ended" in lines[0] and "already used" in lines[0]
    assert "oauth-hub login chatgpt" in lines[0]
    assert seeded.refresh_token not in result.stderr
    assert (chatgpt_home / "chatgpt_oauth.json").read_bytes() == before


@pytest.mark.parametrize("code", ["refresh_token_expired", "refresh_token_invalidated", "invalid_grant"])
def test_permanent_refresh_failures_end_the_sign_in(chatgpt_home, idp, code):
    seed_sign_in("chatgpt", idp.mint_tokens(), home=chatgpt_home, expires_at=time.time() - 10)
    before = (chatgpt_home / "chatgpt_oauth.json").read_bytes()
    body = {"error": {"message": "no", "type": "invalid_request_error", "code": code}}
    idp.fail_next("/oauth/token", 401 if code != "invalid_grant" else 400, body)
    with pytest.raises(SignInEnded) as info:
        tokens.get_token("chatgpt", home=chatgpt_home)
    assert "oauth-hub login chatgpt" in str(info.value)
    assert (chatgpt_home / "chatgpt_oauth.json").read_bytes() == before


def test_transient_503_is_retried_and_nothing_is_lost(cli, chatgpt_home, idp):
    seeded = seed_sign_in("chatgpt", idp.mint_tokens(), home=chatgpt_home, expires_at=time.time() - 10)
    idp.fail_next("/oauth/token", 503, {"error": "temporarily_unavailable"}, times=2)
    result = cli("token", "chatgpt")
    assert result.returncode == 0, result.stderr
    assert idp.count("/oauth/token", REFRESH) == 3
    assert result.stdout.strip() == stored(chatgpt_home)["access_token"] != seeded.access_token


def test_persistent_503_fails_without_touching_the_file(cli, chatgpt_home, idp):
    seed_sign_in("chatgpt", idp.mint_tokens(), home=chatgpt_home, expires_at=time.time() - 10)
    before = (chatgpt_home / "chatgpt_oauth.json").read_bytes()
    idp.fail_next("/oauth/token", 503, {"error": "temporarily_unavailable"}, times=10)
    result = cli("token", "chatgpt")
    assert result.returncode == 1
    assert "HTTP 503" in result.stderr and "token refresh" in result.stderr
    assert (chatgpt_home / "chatgpt_oauth.json").read_bytes() == before
    assert idp.count("/oauth/token", REFRESH) == 4  # one try and three retries


def test_dead_network_fails_clearly_without_touching_the_file(cli, chatgpt_home, idp):
    from .conftest import write_config

    seed_sign_in("chatgpt", idp.mint_tokens(), home=chatgpt_home, expires_at=time.time() - 10)
    before = (chatgpt_home / "chatgpt_oauth.json").read_bytes()
    write_config(chatgpt_home, "chatgpt", issuer="http://127.0.0.1:9")
    result = cli("token", "chatgpt")
    assert result.returncode == 1
    assert "Could not reach 127.0.0.1:9" in result.stderr
    assert (chatgpt_home / "chatgpt_oauth.json").read_bytes() == before


HOLD_LOCK = textwrap.dedent("""
    import sys, time
    from filelock import FileLock
    lock = FileLock(sys.argv[1])
    lock.acquire()
    print("locked", flush=True)
    time.sleep(60)
""")


def _hold_lock(path):
    proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_lock_of_a_killed_process_does_not_wedge(chatgpt_home, idp, monkeypatch):
    seed_sign_in("chatgpt", idp.mint_tokens(), home=chatgpt_home, expires_at=time.time() - 10)
    holder = _hold_lock(chatgpt_home / "chatgpt_oauth.lock")
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (chatgpt_home / "chatgpt_oauth.lock").exists()  # the file stays; the lock does not
    monkeypatch.setattr(tokens, "LOCK_TIMEOUT", 5)  # a wedged lock would fail here, not after 30 s
    tokens.get_token("chatgpt", home=chatgpt_home)
    assert idp.count("/oauth/token", REFRESH) == 1


def test_lock_held_too_long_times_out_with_a_clear_message(chatgpt_home, idp, monkeypatch):
    seed_sign_in("chatgpt", idp.mint_tokens(), home=chatgpt_home, expires_at=time.time() - 10)
    monkeypatch.setattr(tokens, "LOCK_TIMEOUT", 0.5)
    holder = _hold_lock(chatgpt_home / "chatgpt_oauth.lock")
    try:
        with pytest.raises(OAuthHubError) as info:
            tokens.get_token("chatgpt", home=chatgpt_home)
    finally:
        holder.kill()
        holder.wait()
    assert "chatgpt_oauth.lock" in str(info.value) and "Try again" in str(info.value)
    assert idp.count("/oauth/token") == 0


def test_requests_auth_refreshes_once_on_401(chatgpt_home, subscription):
    idp = subscription
    seeded = seed_sign_in("chatgpt", idp.mint_tokens(), home=chatgpt_home)
    idp.expire_access_tokens()  # the server stops honouring the token before its exp
    session = requests.Session()
    session.auth = OAuthHubAuth("chatgpt", home=chatgpt_home)
    response = session.get(f"{idp.chatgpt_base}/models", params={"client_version": "1"}, timeout=5)
    assert response.status_code == 200, response.text
    assert response.json()["models"]
    assert idp.count("/oauth/token", REFRESH) == 1
    calls = idp.requests_to("/backend-api/codex/models")
    assert [c.status for c in calls] == [401, 200]
    assert calls[0].headers["authorization"] == f"Bearer {seeded.access_token}"
    assert calls[1].headers["authorization"] == f"Bearer {stored(chatgpt_home)['access_token']}"
    assert calls[1].headers["chatgpt-account-id"] == idp.account_id


def test_requests_auth_retries_only_once(chatgpt_home, subscription):
    idp = subscription
    seed_sign_in("chatgpt", idp.mint_tokens(), home=chatgpt_home)
    idp.fail_next("/backend-api/codex/models", 401, times=5)
    response = requests.get(f"{idp.chatgpt_base}/models", params={"client_version": "1"},
                            auth=OAuthHubAuth("chatgpt", home=chatgpt_home), timeout=5)
    assert response.status_code == 401
    assert len(idp.requests_to("/backend-api/codex/models")) == 2
    assert idp.count("/oauth/token", REFRESH) == 1


def test_status_refreshes_a_due_token(cli, chatgpt_home, idp):
    seed_sign_in("chatgpt", idp.mint_tokens(), home=chatgpt_home, expires_at=time.time() - 10)
    row = cli("status", "chatgpt", "--json").json[0]
    assert row["expires_in"] > 3000 and row["error"] is None
    assert idp.count("/oauth/token", REFRESH) == 1


def test_env_and_exec(cli, chatgpt_home, idp):
    assert cli("login", "chatgpt").returncode == 0
    key = stored(chatgpt_home)["api_key"]
    env = cli("env", "chatgpt")
    assert env.returncode == 0
    assert f"export CHATGPT_OAUTH_API_KEY={key}" in env.stdout.splitlines()
    shell = subprocess.run(["sh", "-c", f'eval "{env.stdout}"; printf %s "$CHATGPT_OAUTH_API_KEY"'],
                           capture_output=True, text=True)
    assert shell.stdout == key
    ran = cli("exec", "chatgpt", "--", sys.executable, "-c",
              "import os, sys; print(os.environ['CHATGPT_OAUTH_API_KEY']); sys.exit(7)")
    assert ran.returncode == 7
    assert ran.stdout.strip() == key
    missing = cli("exec", "chatgpt", "--", "no-such-command-here")
    assert missing.returncode == 127 and "Command not found" in missing.stderr


def test_get_token_reads_the_file_once_while_unchanged(chatgpt_home, idp, monkeypatch):
    from oauth_core import accounts

    first = seed_sign_in("chatgpt", idp.mint_tokens(), home=chatgpt_home)
    reads = []
    original = tokens.load_credentials
    monkeypatch.setattr(tokens, "load_credentials", lambda *a: reads.append(1) or original(*a))
    for _ in range(50):
        assert tokens.get_token("chatgpt", home=chatgpt_home) == first.access_token
    assert len(reads) == 1
    # Another process writes a new sign-in: the next call sees it.
    second = seed_sign_in("chatgpt", idp.mint_tokens(), home=chatgpt_home)
    assert tokens.get_token("chatgpt", home=chatgpt_home) == second.access_token
    assert accounts.load_credentials("chatgpt", tokens.Store(chatgpt_home)).access_token == second.access_token


def test_get_credentials_is_a_copy_and_masks_secrets(chatgpt_home, idp):
    seeded = seed_sign_in("chatgpt", idp.mint_tokens(), home=chatgpt_home)
    credentials = tokens.get_credentials("chatgpt", home=chatgpt_home)
    credentials.access_token = "changed"
    assert tokens.get_token("chatgpt", home=chatgpt_home) == seeded.access_token
    text = repr(tokens.get_credentials("chatgpt", home=chatgpt_home))
    for secret in (seeded.access_token, seeded.refresh_token, seeded.id_token):
        assert secret not in text
        assert secret[:12] not in text


def test_get_api_key_in_subscription_mode_says_what_to_use(chatgpt_home, subscription):
    seed_sign_in("chatgpt", subscription.mint_tokens(), home=chatgpt_home)
    with pytest.raises(OAuthHubError, match="oauth-hub token chatgpt"):
        tokens.get_api_key("chatgpt", home=chatgpt_home)


def test_short_lived_tokens_refresh_half_way_not_on_every_use():
    from datetime import datetime

    from oauth_core.credentials import Credentials

    now = time.time()
    issued = datetime.fromtimestamp(now - 50, UTC).isoformat()
    young = Credentials("x", access_token="a", refresh_token="r", expires_at=now + 70,
                        last_refresh=issued)  # lives 120 s
    assert not tokens.needs_refresh(young, now)
    old = Credentials("x", access_token="a", refresh_token="r", expires_at=now + 40,
                      last_refresh=issued)  # lives 90 s, 40 left
    assert tokens.needs_refresh(old, now)
    hour_ago = datetime.fromtimestamp(now - 3600, UTC).isoformat()
    normal = Credentials("x", access_token="a", refresh_token="r", expires_at=now + 299, last_refresh=hour_ago)
    assert tokens.needs_refresh(normal, now)
    assert not tokens.needs_refresh(Credentials("x", access_token="a", refresh_token="r", expires_at=now + 301,
                                                last_refresh=hour_ago), now)
    assert tokens.needs_refresh(Credentials("x", access_token=None), now)
    # Without a refresh token there is nothing to refresh with: due only when it expires.
    lasting = Credentials("x", access_token="a", expires_at=now + 299, last_refresh=hour_ago)
    assert not tokens.needs_refresh(lasting, now) and tokens.needs_refresh(lasting, now + 300)
