"""Nothing lost under faults: hostile answers, full disks, read-only homes, crashes, stalls.

Each test reproduces one failure found by an adversarial run against the project
(hostile IdP answers, storage faults, kill -9, links in the home) and checks what must
hold instead: a one-line error that says what to do, a token file left byte-for-byte
as it was, a rotated refresh token never lost, and a still-valid token still served.
Storage faults are real (a tmpfs that fills up, a read-only bind mount: tests/mountns.py).
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest

from oauth_core import tokens
from oauth_core.errors import BadAnswer, NetworkError, SecurityNotice
from oauth_core.http import HttpClient
from oauth_core.testing.jwt_keys import SigningKey
from oauth_core.testing.seed import seed_sign_in

from .conftest import write_config
from .mountns import MountNamespace, fill

REFRESH = "refresh_token"


def token_file(home: Path) -> Path:
    return home / "chatgpt_oauth.json"


def one_line_error(result) -> str:
    """The CLI's error: exit 1, one "Error:" line (the last), no traceback."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error: ")]
    assert errors == [lines[-1]], result.stderr
    return errors[0]


def expired(idp, home: Path, **fields):
    return seed_sign_in("chatgpt", idp.mint_tokens(), home=home, expires_at=time.time() - 10, **fields)


def due_but_valid(idp, home: Path):
    """Four minutes left of an hour-long token: inside the five-minute margin, so a refresh is
    due, yet the token works. (Relative to now: a fixed date would change meaning with the calendar.)"""
    return seed_sign_in("chatgpt", idp.mint_tokens(), home=home, expires_at=time.time() + 240,
                        last_refresh=utc_iso(time.time() - 3600))


def utc_iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


@pytest.fixture
def mountns():
    ns = MountNamespace()
    yield ns
    ns.close()


def run_in(ns: MountNamespace, cli, *args: str, env: dict | None = None, **popen) -> subprocess.CompletedProcess:
    return subprocess.run(ns.enter([*cli.command, *args]), env=dict(cli.env, **(env or {})), capture_output=True,
                          text=True, timeout=60, **popen)


# -- hostile answers -----------------------------------------------------------------------


@pytest.mark.parametrize("answer", [
    {},
    {"expires_in": 3600, "token_type": "Bearer"},
    {"access_token": "", "expires_in": 3600},
    {"access_token": 12345, "expires_in": 3600},
    {"access_token": ["a", "b"], "expires_in": 3600},
    {"access_token": "line\nbreak", "expires_in": 3600},
    {"access_token": "ok", "refresh_token": {"nested": True}},
    {"access_token": "ok", "expires_in": "soon"},
    {"access_token": "x" * 70_000},
], ids=["empty", "no-token", "empty-token", "number", "list", "control-char", "refresh-object", "expires-text",
        "oversized-token"])
def test_a_refresh_answer_without_a_usable_access_token_changes_nothing(cli, chatgpt_home, idp, answer):
    expired(idp, chatgpt_home)
    before = token_file(chatgpt_home).read_bytes()
    idp.fail_next("/oauth/token", 200, answer)
    error = one_line_error(cli("token", "chatgpt"))
    assert "unusable answer" in error and "nothing was changed" in error
    assert token_file(chatgpt_home).read_bytes() == before
    assert not (chatgpt_home / "chatgpt_oauth.pending").exists()
    # The expiry was not pushed out: the very next call refreshes, and gets a real token.
    result = cli("token", "chatgpt")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == json.loads(token_file(chatgpt_home).read_text())["access_token"]
    assert idp.count("/oauth/token", REFRESH) == 2  # the garbage, then the real one


def test_headers_then_a_closed_connection_changes_nothing(cli, chatgpt_home, idp):
    expired(idp, chatgpt_home)
    before = token_file(chatgpt_home).read_bytes()
    # HTTP/1.1 without a Content-Length: the body runs until the server closes, here at once.
    idp.fail_next("/oauth/token", 200, b"", declared_length=-1)
    one_line_error(cli("token", "chatgpt"))
    assert token_file(chatgpt_home).read_bytes() == before


def test_a_refresh_answer_that_is_not_utf8_changes_nothing(cli, chatgpt_home, idp):
    expired(idp, chatgpt_home)
    before = token_file(chatgpt_home).read_bytes()
    idp.fail_next("/oauth/token", 200, b'{"access_token": "\xff\xfe\xfa", "refresh_token": "rt_\xe9", "expires_in": 1}')
    error = one_line_error(cli("token", "chatgpt"))
    assert "not UTF-8" in error
    assert token_file(chatgpt_home).read_bytes() == before


def test_deeply_nested_json_from_the_idp_is_a_one_line_error(cli, chatgpt_home, idp):
    expired(idp, chatgpt_home)
    before = token_file(chatgpt_home).read_bytes()
    idp.fail_next("/oauth/token", 200, b"[" * 200_000 + b"]" * 200_000)
    error = one_line_error(cli("token", "chatgpt"))
    assert "nested too deeply" in error
    assert token_file(chatgpt_home).read_bytes() == before


def test_a_deeply_nested_token_file_is_named_in_one_line_and_kept(cli, chatgpt_home, idp):
    path = token_file(chatgpt_home)
    chatgpt_home.mkdir(exist_ok=True)
    path.write_bytes(b"[" * 200_000 + b"]" * 200_000)
    path.chmod(0o600)
    before = path.read_bytes()
    error = one_line_error(cli("token", "chatgpt"))
    assert f"{path} is not valid JSON (nested too deeply)" in error
    assert path.read_bytes() == before


def test_a_huge_answer_is_refused_by_its_length_before_it_arrives(chatgpt_home, idp):
    expired(idp, chatgpt_home)
    before = token_file(chatgpt_home).read_bytes()
    # 100 MB announced; the few bytes sent drip so slowly that reading them all would take minutes.
    idp.fail_next("/oauth/token", 200, b'{"access_token": "' + b"a" * 200, declared_length=100_000_000, drip=1.0)
    with pytest.raises(BadAnswer, match="more than 1 MiB"):
        tokens.get_token("chatgpt", home=chatgpt_home)
    assert token_file(chatgpt_home).read_bytes() == before


def test_a_huge_answer_without_a_length_is_cut_off_at_the_cap(chatgpt_home, idp):
    expired(idp, chatgpt_home)
    before = token_file(chatgpt_home).read_bytes()
    answer = dict(idp.mint_tokens(), padding="p" * (2 << 20))  # valid tokens, 2 MiB of padding
    idp.fail_next("/oauth/token", 200, json.dumps(answer).encode(), chunked=True)
    with pytest.raises(BadAnswer, match="more than 1 MiB"):
        tokens.get_token("chatgpt", home=chatgpt_home)
    assert token_file(chatgpt_home).read_bytes() == before


def test_a_dripping_idp_runs_into_the_overall_deadline(chatgpt_home, idp):
    expired(idp, chatgpt_home)
    before = token_file(chatgpt_home).read_bytes()
    answer = json.dumps(idp.mint_tokens()).encode()
    idp.fail_next("/oauth/token", 200, answer, drip=0.05)  # a complete answer, after a minute or more
    with pytest.raises(NetworkError, match="did not answer the token refresh completely within 1 seconds"):
        tokens.refresh_credentials("chatgpt", home=chatgpt_home, http=HttpClient(deadline=1.0))
    assert token_file(chatgpt_home).read_bytes() == before
    assert idp.count("/oauth/token", REFRESH) == 1  # a refresh is never retried after it may have been processed


def test_garbage_while_the_token_is_still_valid_keeps_the_token(cli, chatgpt_home, idp):
    seeded = due_but_valid(idp, chatgpt_home)
    before = token_file(chatgpt_home).read_bytes()
    idp.fail_next("/oauth/token", 200, {"expires_in": 3600})
    result = cli("token", "chatgpt")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == seeded.access_token
    assert "Note: Could not refresh the chatgpt sign-in" in result.stderr and "unusable answer" in result.stderr
    assert token_file(chatgpt_home).read_bytes() == before


def test_a_4xx_refusal_while_the_token_still_has_minutes_left_is_an_error(cli, chatgpt_home, idp):
    """A refusal (not an outage) means our request is wrong: say so now, touch nothing."""
    due_but_valid(idp, chatgpt_home)
    before = token_file(chatgpt_home).read_bytes()
    idp.fail_next("/oauth/token", 400, {"error": "invalid_request", "error_description": "bad client"})
    error = one_line_error(cli("token", "chatgpt"))
    assert "refused the token refresh (HTTP 400, invalid_request: bad client)" in error
    assert token_file(chatgpt_home).read_bytes() == before


def test_a_plain_401_from_the_refresh_endpoint_ends_the_sign_in(cli, chatgpt_home, idp):
    """No OAuth error code, just 401: the refresh token is not accepted, so the sign-in is over."""
    due_but_valid(idp, chatgpt_home)
    before = token_file(chatgpt_home).read_bytes()
    idp.fail_next("/oauth/token", 401, "Unauthorized")
    error = one_line_error(cli("token", "chatgpt"))
    assert "sign-in has ended" in error and "was refused" in error and "oauth-hub login chatgpt" in error
    assert token_file(chatgpt_home).read_bytes() == before


@pytest.mark.parametrize(("status", "requests_sent"), [(500, 1), (503, 4)])
def test_a_refresh_is_retried_only_when_it_cannot_have_been_processed(cli, chatgpt_home, idp, status,
                                                                      requests_sent):
    """A 500 may come after the IdP rotated the token: never resend it. A 503 is a gateway's "not now"."""
    expired(idp, chatgpt_home)
    idp.fail_next("/oauth/token", status, {"error": "server_error"}, times=4)
    one_line_error(cli("token", "chatgpt"))
    assert idp.count("/oauth/token", REFRESH) == requests_sent


def test_a_login_answer_without_a_usable_token_saves_nothing(cli, chatgpt_home, idp):
    idp.fail_next("/oauth/token", 200, {"token_type": "Bearer", "expires_in": 3600, "refresh_token": "rt_x"})
    error = one_line_error(cli("login", "chatgpt"))
    assert "unusable answer" in error and "Nothing was saved" in error
    assert not token_file(chatgpt_home).exists()


# -- a rotated refresh token is never lost ---------------------------------------------------


def test_an_answer_that_cannot_be_verified_yet_is_kept_and_finished_next_time(cli, chatgpt_home, idp):
    expired(idp, chatgpt_home)
    before = token_file(chatgpt_home).read_bytes()
    old_keys = idp.key.jwks()
    idp.key = SigningKey()  # the IdP signs with a new key it does not publish yet
    idp.fail_next("/.well-known/jwks.json", 200, old_keys)
    error = one_line_error(cli("token", "chatgpt"))
    assert "signed by a key it does not publish" in error and "chatgpt_oauth.pending" in error
    assert token_file(chatgpt_home).read_bytes() == before  # nothing unverified in the token file
    assert (chatgpt_home / "chatgpt_oauth.pending").exists()
    assert idp.count("/oauth/token", REFRESH) == 1

    # Next run: the key is published; the refresh is finished from the kept answer, not spent again.
    result = cli("token", "chatgpt")
    assert result.returncode == 0, result.stderr
    assert idp.count("/oauth/token", REFRESH) == 1
    stored = json.loads(token_file(chatgpt_home).read_text())
    assert result.stdout.strip() == stored["access_token"]
    assert idp.verify_jwt(stored["id_token"])
    assert not (chatgpt_home / "chatgpt_oauth.pending").exists()
    # …and the rotated refresh token it stored is the live one.
    assert tokens.refresh_credentials("chatgpt", home=chatgpt_home, force=True).access_token
    assert idp.count("/oauth/token", REFRESH) == 2


def test_an_answer_kept_for_a_day_is_finished_as_of_when_it_arrived(cli, chatgpt_home, idp):
    """A crash, then the laptop shut for a day: the kept answer's ID token has expired since it arrived."""
    expired(idp, chatgpt_home)
    idp.clock_offset = -86400
    answer = idp.mint_tokens()  # what the IdP answered a day ago (its tokens expired since)
    idp.clock_offset = 0
    kept = {"version": 1, "received_at": time.time() - 86400, "answer": answer}
    fd = os.open(chatgpt_home / "chatgpt_oauth.pending", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(kept, handle)
    result = cli("token", "chatgpt")
    assert result.returncode == 0, result.stderr
    # Verified as of its arrival, then (its access token long expired) refreshed with its refresh token.
    (refresh,) = [r for r in idp.requests_to("/oauth/token") if (r.json or {}).get("grant_type") == REFRESH]
    assert refresh.json["refresh_token"] == answer["refresh_token"]
    stored = json.loads(token_file(chatgpt_home).read_text())
    assert result.stdout.strip() == stored["access_token"] != answer["access_token"]
    assert not (chatgpt_home / "chatgpt_oauth.pending").exists()


def test_a_kept_answer_that_holds_no_usable_token_is_dropped(cli, chatgpt_home, idp):
    """The answer is put on disk before it is checked; a kill right then leaves garbage, not a token."""
    expired(idp, chatgpt_home)
    pending = chatgpt_home / "chatgpt_oauth.pending"
    fd = os.open(pending, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(b'{"version": 1, "received_at": 1.0, "answer": <html>Bad gateway</html>}')
    result = cli("token", "chatgpt")
    assert result.returncode == 0, result.stderr
    assert f"Note: Removed {pending}: a refresh answer that holds no usable token." in result.stderr
    assert idp.count("/oauth/token", REFRESH) == 1 and not pending.exists()


@pytest.fixture
def own_http_provider(chatgpt_home, idp):
    """ChatGPT's hooks, but a refresh hook that makes its own HttpClient (the engine's is bypassed)."""
    from types import SimpleNamespace

    from oauth_hub.providers import chatgpt

    from oauth_core.hookspecs import hookimpl
    from oauth_core.plugins import register_provider, unregister_provider

    @hookimpl
    def refresh_tokens(settings, http, credentials):
        return chatgpt.refresh_tokens(settings=settings, http=HttpClient(), credentials=credentials)

    hooks = {name: getattr(chatgpt, name) for name in ("provider_defaults", "describe_account", "build_auth_url",
                                                        "exchange_code", "request_headers", "environment")}
    register_provider("ownhttp", SimpleNamespace(**hooks, refresh_tokens=refresh_tokens))
    write_config(chatgpt_home, "ownhttp", issuer=idp.issuer)
    yield "ownhttp"
    unregister_provider("ownhttp")


@pytest.mark.parametrize("name", ["chatgpt", "ownhttp"])
def test_the_answer_is_on_disk_before_the_token_file_is_written(chatgpt_home, idp, monkeypatch, own_http_provider,
                                                                name):
    seed_sign_in(name, idp.mint_tokens(), home=chatgpt_home, expires_at=time.time() - 10)
    pending_when_written = []
    save = tokens.save_credentials

    def watching(store, credentials, **options):
        pending_when_written.append(store.pending_path(credentials.provider).exists())
        return save(store, credentials, **options)

    monkeypatch.setattr(tokens, "save_credentials", watching)
    assert tokens.get_token(name, home=chatgpt_home)
    assert pending_when_written == [True]
    assert not (chatgpt_home / f"{name}_oauth.pending").exists()


CRASH_BEFORE_THE_TOKEN_FILE = """
import os, signal
from oauth_core import tokens

def killed(*args, **kwargs):  # the moment the token file would be written: kill -9
    os.kill(os.getpid(), signal.SIGKILL)

tokens.save_credentials = killed
tokens.get_token("chatgpt")
"""


def test_kill_9_after_the_answer_before_the_token_file_loses_nothing(cli, chatgpt_home, idp):
    """The crash lands exactly where the adversarial run lost 2 of 9 rotated tokens."""
    import sys

    expired(idp, chatgpt_home)
    before = token_file(chatgpt_home).read_bytes()
    crashed = subprocess.run([sys.executable, "-c", CRASH_BEFORE_THE_TOKEN_FILE], env=cli.env, capture_output=True,
                             timeout=60)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert idp.count("/oauth/token", REFRESH) == 1  # the refresh token was spent
    assert token_file(chatgpt_home).read_bytes() == before
    result = cli("token", "chatgpt")
    assert result.returncode == 0, result.stderr
    assert idp.count("/oauth/token", REFRESH) == 1, "the kept answer is used, the spent token is not sent again"
    stored = json.loads(token_file(chatgpt_home).read_text())
    assert result.stdout.strip() == stored["access_token"]
    assert not [p.name for p in chatgpt_home.iterdir() if p.name.endswith((".reserved", ".pending"))]
    assert tokens.refresh_credentials("chatgpt", home=chatgpt_home, force=True).refresh_token != stored["refresh_token"]


def test_an_interrupted_refresh_is_finished_for_its_own_account(cli, chatgpt_home, idp):
    """The kept answer belongs to one account: finishing it never lands in another's record."""
    import sys

    main = seed_sign_in("chatgpt", idp.mint_tokens(), home=chatgpt_home, expires_at=time.time() + 3600)
    seed_sign_in("chatgpt", idp.mint_tokens(), home=chatgpt_home, account="work", expires_at=time.time() - 10)
    main_before = token_file(chatgpt_home).read_bytes()
    script = CRASH_BEFORE_THE_TOKEN_FILE.replace('get_token("chatgpt")', 'get_token("chatgpt", account="work")')
    crashed = subprocess.run([sys.executable, "-c", script], env=cli.env, capture_output=True, timeout=60)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert (chatgpt_home / "chatgpt@work_oauth.pending").exists()
    assert not (chatgpt_home / "chatgpt_oauth.pending").exists()
    assert cli("token", "chatgpt").stdout.strip() == main.access_token  # the default account is not involved
    result = cli("token", "chatgpt", "--account", "work")
    assert result.returncode == 0, result.stderr
    assert idp.count("/oauth/token", REFRESH) == 1, "the kept answer is used, the spent token is not sent again"
    work = json.loads((chatgpt_home / "chatgpt@work_oauth.json").read_text())
    assert result.stdout.strip() == work["access_token"] != main.access_token
    assert token_file(chatgpt_home).read_bytes() == main_before
    assert not [p.name for p in chatgpt_home.iterdir() if p.name.endswith((".reserved", ".pending"))]


def test_the_disk_filling_up_while_the_idp_answers_loses_nothing(cli, chatgpt_home, idp, mountns):
    mountns.tmpfs(chatgpt_home, "4m")
    home = mountns.inside(chatgpt_home)
    write_config(home, "chatgpt", issuer=idp.issuer, api_base=idp.api_base, chatgpt_base=idp.chatgpt_base)
    seeded = expired(idp, home)
    hold = idp.hold_next("/oauth/token")
    proc = subprocess.Popen(mountns.enter([*cli.command, "token", "chatgpt"]), env=cli.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert hold.arrived.wait(30), "the refresh never reached the IdP"
        filler = fill(home)  # the refresh token is spent; now the disk is full
        hold.release.set()
        out, err = proc.communicate(timeout=60)
    finally:
        hold.release.set()
        proc.kill()
    assert proc.returncode == 0, err
    stored = json.loads((home / "chatgpt_oauth.json").read_text())
    assert out.strip() == stored["access_token"] != seeded.access_token
    assert stored["refresh_token"] != seeded.refresh_token  # the rotated one, kept
    filler.unlink()
    assert tokens.refresh_credentials("chatgpt", home=home, force=True).refresh_token != stored["refresh_token"]


def test_a_full_disk_is_found_out_before_the_refresh_token_is_spent(cli, chatgpt_home, idp, mountns):
    mountns.tmpfs(chatgpt_home, "4m")
    home = mountns.inside(chatgpt_home)
    write_config(home, "chatgpt", issuer=idp.issuer, api_base=idp.api_base, chatgpt_base=idp.chatgpt_base)
    expired(idp, home)
    before = (home / "chatgpt_oauth.json").read_bytes()
    filler = fill(home, leave=64 * 1024)
    error = one_line_error(run_in(mountns, cli, "token", "chatgpt"))
    assert "No space left on device" in error and "free some space" in error
    assert idp.count("/oauth/token", REFRESH) == 0
    assert (home / "chatgpt_oauth.json").read_bytes() == before

    filler.unlink()
    seeded = due_but_valid(idp, home)
    fill(home, leave=64 * 1024)
    result = run_in(mountns, cli, "token", "chatgpt")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == seeded.access_token
    assert "Note: Could not refresh" in result.stderr and "free some space" in result.stderr
    assert idp.count("/oauth/token", REFRESH) == 0


def test_a_full_disk_at_login_is_one_line_before_the_code_is_spent(cli, chatgpt_home, idp, mountns):
    mountns.tmpfs(chatgpt_home, "4m")
    home = mountns.inside(chatgpt_home)
    write_config(home, "chatgpt", issuer=idp.issuer, api_base=idp.api_base, chatgpt_base=idp.chatgpt_base,
                 callback_timeout=20)
    fill(home, leave=64 * 1024)
    result = run_in(mountns, cli, "login", "chatgpt")
    error = one_line_error(result)
    assert "No space left on device" in error and "free some space" in error
    assert idp.count("/oauth/token", "authorization_code") == 0
    assert not (home / "chatgpt_oauth.json").exists()
    # Found out before the person is sent to the browser, not after they signed in there.
    assert not cli.visited() and "/oauth/authorize" not in result.stderr


# -- a read-only home ------------------------------------------------------------------------


def test_a_read_only_home_still_serves_a_valid_token(cli, chatgpt_home, idp, mountns):
    seeded = due_but_valid(idp, chatgpt_home)
    mountns.read_only(chatgpt_home)
    for command in (["token", "chatgpt"], ["env", "chatgpt"], ["status", "chatgpt"]):
        result = run_in(mountns, cli, *command)
        assert result.returncode == 0, (command, result.stderr)
        assert "Traceback" not in result.stderr
        assert "Note: Could not refresh the chatgpt sign-in" in result.stderr, command
        assert "read-only file system" in result.stderr, command
    assert run_in(mountns, cli, "token", "chatgpt").stdout.strip() == seeded.access_token
    assert idp.count("/oauth/token", REFRESH) == 0


def test_a_read_only_home_with_an_expired_token_is_a_one_line_error(cli, chatgpt_home, idp, mountns):
    expired(idp, chatgpt_home)
    mountns.read_only(chatgpt_home)
    error = one_line_error(run_in(mountns, cli, "token", "chatgpt"))
    assert "read-only file system" in error and "OAUTH_HUB_HOME" in error
    result = run_in(mountns, cli, "login", "chatgpt")
    error = one_line_error(result)
    assert "read-only file system" in error
    assert idp.count("/oauth/token") == 0
    assert not cli.visited() and "/oauth/authorize" not in result.stderr  # before the browser, not after


# -- links and directories in the home ------------------------------------------------------------


def test_a_symlink_at_the_lock_path_is_refused_in_one_line(cli, chatgpt_home, idp, tmp_path):
    expired(idp, chatgpt_home)
    target = tmp_path / "elsewhere"
    target.write_text("not a lock\n")
    (chatgpt_home / "chatgpt_oauth.lock").symlink_to(target)
    error = one_line_error(cli("token", "chatgpt"))
    assert "chatgpt_oauth.lock" in error and "symbolic link" in error
    assert target.read_text() == "not a lock\n"
    assert idp.count("/oauth/token") == 0
    debug = cli("token", "chatgpt", env={"OAUTH_HUB_DEBUG": "1"})
    assert debug.returncode == 1 and "Traceback" in debug.stderr  # documented: OAUTH_HUB_DEBUG shows where


def test_a_loose_token_file_that_is_a_symlink_is_not_followed(cli, chatgpt_home, idp, tmp_path):
    seed_sign_in("chatgpt", idp.mint_tokens(), home=chatgpt_home)
    target = tmp_path / "someone-elses-file"
    os.replace(token_file(chatgpt_home), target)
    os.chmod(target, 0o644)  # noqa: S103 - loose on purpose: the tightening must not reach it
    token_file(chatgpt_home).symlink_to(target)
    error = one_line_error(cli("token", "chatgpt"))
    assert "symbolic link" in error
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert "changed it to 600" not in cli("status", "chatgpt").stderr


@pytest.mark.parametrize("name", ["chatgpt_models.json", "config.toml", "serve_key", "exports.json"])
def test_no_file_of_the_home_is_read_through_a_link(cli, chatgpt_home, idp, tmp_path, name):
    seed_sign_in("chatgpt", idp.mint_tokens(), home=chatgpt_home)
    path = chatgpt_home / name
    content = path.read_text() if name == "config.toml" else "x" * 40 + "\n"
    target = tmp_path / "elsewhere"
    target.write_text(content)
    os.chmod(target, 0o644)  # noqa: S103 - someone else's file: must stay as it is
    path.unlink(missing_ok=True)
    path.symlink_to(target)
    command = {"serve_key": ["serve", "--print-key"], "exports.json": ["logout", "chatgpt"],
               "config.toml": ["config", "show", "chatgpt"], "chatgpt_models.json": ["status", "chatgpt"]}[name]
    result = cli(*command)
    assert "symbolic link" in result.stderr + result.stdout, (command, result.stderr)
    assert "Traceback" not in result.stderr and "x" * 40 not in result.stdout
    assert target.read_text() == content and stat.S_IMODE(target.stat().st_mode) == 0o644


def test_a_directory_at_the_token_path_is_refused_before_the_code_is_spent(cli, chatgpt_home, idp):
    token_file(chatgpt_home).mkdir(mode=0o755)
    error = one_line_error(cli("token", "chatgpt"))
    assert "is a directory" in error
    assert stat.S_IMODE(token_file(chatgpt_home).stat().st_mode) == 0o755  # not "tightened" to 600
    error = one_line_error(cli("login", "chatgpt"))
    assert "is a directory" in error and "move it away" in error
    assert idp.count("/oauth/authorize") == 0 and idp.count("/oauth/token") == 0


@pytest.mark.parametrize("name", ["chatgpt_oauth.json", "chatgpt_models.json"])
def test_a_link_where_login_writes_is_refused_before_the_code_is_spent(cli, chatgpt_home, idp, tmp_path, name):
    target = tmp_path / "elsewhere.json"
    target.write_text("{}\n")
    (chatgpt_home / name).symlink_to(target)
    error = one_line_error(cli("login", "chatgpt"))
    assert "symbolic link" in error and name in error
    assert idp.count("/oauth/authorize") == 0 and idp.count("/oauth/token") == 0
    assert target.read_text() == "{}\n"


def test_a_home_the_user_cannot_enter_is_one_line(cli, chatgpt_home, idp):
    expired(idp, chatgpt_home)
    os.chmod(chatgpt_home, 0)
    # Root passes permission checks through two capabilities: without them it meets the mode bits too.
    drop = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--inh-caps",
            "-dac_override,-dac_read_search", "--"] if os.geteuid() == 0 else []
    try:
        result = subprocess.run([*drop, *cli.command, "token", "chatgpt"], env=cli.env, capture_output=True,
                                text=True, timeout=60)
    finally:
        os.chmod(chatgpt_home, 0o700)
    error = one_line_error(result)
    assert "Permission denied" in error and "OAUTH_HUB_HOME" in error


# -- the lock --------------------------------------------------------------------------------------


def test_a_caller_that_cannot_get_the_lock_gets_the_still_valid_token(chatgpt_home, idp, monkeypatch):
    from filelock import FileLock

    seeded = due_but_valid(idp, chatgpt_home)
    monkeypatch.setattr(tokens, "LOCK_TIMEOUT", 0.5)
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:  # another program refreshing, stuck at a slow IdP
        with FileLock(str(chatgpt_home / "chatgpt_oauth.lock")):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        with pytest.warns(SecurityNotice, match="Another program has been using the chatgpt sign-in"):
            assert tokens.get_token("chatgpt", home=chatgpt_home) == seeded.access_token
    finally:
        release.set()
        holder.join()
    assert idp.count("/oauth/token") == 0


def test_a_thread_waits_for_another_threads_refresh_no_longer_than_the_timeout(chatgpt_home, idp, monkeypatch):
    from oauth_core.store import LockBusy

    expired(idp, chatgpt_home)
    monkeypatch.setattr(tokens, "LOCK_TIMEOUT", 0.5)
    hold = idp.hold_next("/oauth/token", timeout=5)  # the first thread's refresh is slow to come back
    first = threading.Thread(target=tokens.get_token, args=("chatgpt",), kwargs={"home": chatgpt_home})
    first.start()
    try:
        assert hold.arrived.wait(30)
        with pytest.raises(LockBusy, match="Another program has been using the chatgpt sign-in"):
            tokens.get_token("chatgpt", home=chatgpt_home)
    finally:
        hold.release.set()
        first.join(30)
    assert idp.count("/oauth/token", REFRESH) == 1
