"""Hostile input, generated: callback queries, pasted text, token files, config files, JWTs.

The properties, for every input hypothesis comes up with:

- no unhandled exception: only :class:`~oauth_core.errors.OAuthHubError` subclasses, or
  the exception a function documents (``MalformedToken``, ``PasteError``);
- no secret in the error text: a recognisable secret is planted in the input and must
  not come out in ``str(error)`` (a prefix of at most 6 characters may, as ``scrub`` keeps);
- at the CLI: a one-line ``Error:`` on stderr and a non-zero exit, never a traceback.

Example counts are kept modest so the file runs in well under 30 s; CI can raise them
with ``--hypothesis-profile`` or by editing ``EXAMPLES``.
"""

from __future__ import annotations

import base64
import json
import math
import os
import secrets
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import tomli_w
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from oauth_core import claims, tokens
from oauth_core.accounts import status
from oauth_core.credentials import Credentials
from oauth_core.errors import LoginError, OAuthHubError
from oauth_core.loopback import CallbackServer, first_values
from oauth_core.paste import PasteError, parse_pasted, read_pastes
from oauth_core.provider import Provider
from oauth_core.store import Store
from oauth_core.testing.fake_openai import FakeOpenAI
from oauth_core.tokens import load_credentials

EXAMPLES = 100
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
STATE = "property-state-" + secrets.token_urlsafe(16)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# Secrets of the shapes this project holds: a JWT, a rotating refresh token, an API key.
SECRET_JWT = ".".join((_b64(b'{"alg":"RS256","kid":"k"}'), _b64(json.dumps({"sub": secrets.token_hex(16)}).encode()),
                       _b64(secrets.token_bytes(64))))
SECRET_RT = "rt_" + secrets.token_urlsafe(32)
SECRET_KEY = "sk-proj-" + secrets.token_urlsafe(40)
SECRETS = (SECRET_JWT, SECRET_RT, SECRET_KEY)


def assert_clean(text: str) -> None:
    """No planted secret in ``text``; ``scrub`` keeps at most the first 6 characters of one."""
    for secret in SECRETS:
        assert secret not in text
        assert secret[:8] not in text, f"{secret[:8]}… leaked"
        for part in secret.split("."):
            assert part[:8] not in text


def with_secret(text: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Text with a planted secret somewhere in it."""
    return st.tuples(text, st.sampled_from(SECRETS), text).map(lambda t: f"{t[0]}{t[1]}{t[2]}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- callback query strings ------------------------------------------------------------------

query_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=300)
pair = st.tuples(st.sampled_from(["code", "state", "error", "error_description", "scope", ""]) | st.text(max_size=8),
                 st.sampled_from([STATE, "", "x"]) | st.text(max_size=20) | with_secret(st.text(max_size=10)))


def encode_pairs(pairs: list[tuple[str, str]], *, percent: bool) -> str:
    from urllib.parse import quote

    enc = (lambda s: quote(s, safe="")) if percent else (lambda s: s)
    return "&".join(f"{enc(k)}={enc(v)}" for k, v in pairs)


queries = (query_text
           | st.builds(encode_pairs, st.lists(pair, max_size=12), percent=st.booleans())
           | st.integers(90, 160).map(lambda n: "&".join(f"k{i}=v" for i in range(n))))


@PROPERTY
@given(queries)
@example("&".join(f"k{i}=v" for i in range(150)))  # more fields than parse_qs allows
@example("%ff%fe=%00&state=%" + "&code=\x00")
def test_first_values_never_raises(query):
    values = first_values(query)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in values.items())


@PROPERTY
@given(st.dictionaries(st.sampled_from(["code", "state", "error", "error_description"]) | st.text(max_size=5),
                       st.sampled_from([STATE, ""]) | st.text(max_size=30) | with_secret(st.text(max_size=20)),
                       max_size=6))
@example({"state": STATE, "error": "access_denied", "error_description": f"token {SECRET_JWT} refused"})
@example({"state": STATE, "error": SECRET_RT})
def test_submit_judges_every_callback_and_echoes_no_secret(params):
    server = CallbackServer(path="/cb", state=STATE, ports=[1], provider="Example")
    verdict = server.submit(params)
    should_accept = params.get("state") == STATE and "error" not in params and bool(params.get("code"))
    assert verdict.accepted == should_accept
    assert "\n" not in verdict.message
    assert_clean(verdict.title + verdict.message)
    if verdict.accepted:
        assert server.wait(0.1).code == params["code"]
        assert server.submit(params).status == 409  # one callback only
    elif params.get("state") == STATE and "error" in params:
        with pytest.raises(LoginError) as info:
            server.wait(0.1)
        assert "\n" not in str(info.value)
        assert_clean(str(info.value))
    else:
        assert not server.finished


@settings(max_examples=25, deadline=None)
@given(st.binary(max_size=400) | queries.map(lambda q: q.encode("utf-8", "surrogatepass")))
def test_the_http_callback_answers_any_query(query):
    """Raw bytes after ``?`` reach the real server: it answers, and only the right state can end the login."""
    server = CallbackServer(path="/cb", state=STATE, ports=[free_port()], cancel_stale=False)
    with server:
        request = b"GET /cb?" + query.replace(b"\r", b"").replace(b"\n", b"").replace(b" ", b"+") + \
            f" HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode()
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(request)
            answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.")
        status_code = int(answer.split(b" ", 2)[1])
        assert status_code in (200, 400, 404, 414, 431)
        assert server.finished == (status_code == 200 or (status_code == 400 and server._outcome.error is not None))


# -- pasted text ---------------------------------------------------------------------------------------

pasted = (st.text(max_size=300)
          | st.builds(lambda q: f"http://127.0.0.1:1455/auth/callback?{q}", queries)
          | st.builds(lambda q: f"http://127.0.0.1:1455/auth/callback#{q}", queries)
          | st.builds(lambda a, b: f"{a}#{b}", st.text(max_size=40), st.text(max_size=40))
          | st.integers(8 * 1024 - 8, 9 * 1024).map(lambda n: "code=" + "a=&" * n))  # about MAX_PASTE


@PROPERTY
@given(pasted)
@example("http://127.0.0.1:1455/auth/callback?" + "&".join(f"k{i}=v" for i in range(150)) + "&code=c")
@example("?" + "&".join(f"k{i}=v" for i in range(101)))
@example("'\"<>  ")
def test_parse_pasted_returns_parameters_or_paste_error(text):
    try:
        params = parse_pasted(text)
    except PasteError as exc:
        assert "\n" not in str(exc)
        return
    assert params.get("code") or params.get("error")
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in params.items())


@settings(max_examples=30, deadline=None)
@given(st.lists(pasted | with_secret(st.text(max_size=30)).map(lambda s: f"http://x/cb?state={STATE}&error={s}"),
                min_size=1, max_size=5))
def test_the_paste_reader_survives_any_lines(lines):
    """A line that cannot be read must not kill the reader: the person gets to paste again."""
    server = CallbackServer(path="/cb", state=STATE, ports=[1], provider="Example")
    reports: list[tuple[bool, str]] = []
    crashes: list[BaseException] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: crashes.append(args.exc_value)
    try:
        read_pastes([*lines, f"code=final&state={STATE}"], server, lambda ok, msg: reports.append((ok, msg))).join(5)
    finally:
        threading.excepthook = previous
    assert not crashes, crashes
    assert server.finished, "the reader stopped before the last, valid paste"
    for _, message in reports:
        assert "\n" not in message
        assert_clean(message)


# -- token files ----------------------------------------------------------------------------------------

plain_leaf = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
              | st.text(max_size=20))


def _nested(leaf: st.SearchStrategy) -> st.SearchStrategy:
    return st.recursive(leaf, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


json_value = _nested(plain_leaf | st.sampled_from(SECRETS))  # may carry a secret anywhere
plain_value = _nested(plain_leaf)  # for the fields that are shown (account, dates): no secret planted there
iso_text = st.sampled_from(["2026-01-01T00:00:00Z", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59",
                            "2026-13-45", "", "now"]) | st.text(max_size=25)
epoch = (st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**20), 10**20)
         | st.sampled_from([time.time() + 3600, time.time() - 10, 1e20, 1.7e12]))
token_record = st.fixed_dictionaries({}, optional={
    "access_token": st.sampled_from(SECRETS) | json_value,
    "refresh_token": st.sampled_from(SECRETS) | json_value,
    "id_token": st.sampled_from(SECRETS) | json_value,
    "api_key": st.sampled_from(SECRETS) | json_value,
    "expires_at": epoch | plain_value,
    "last_refresh": iso_text | plain_value,
    "api_key_obtained_at": iso_text | plain_value,
    "account": st.dictionaries(st.sampled_from(["email", "plan", "account_id"]), plain_value, max_size=3)
    | plain_value,
    "provider": json_value,
    "session_token": json_value,  # an unknown field: kept in the file, never shown
})


def _file_bytes(record, cut):
    text = json.dumps(record, allow_nan=True)
    return text.encode() if cut is None else text.encode()[:cut]


token_files = (st.builds(_file_bytes, token_record, st.none() | st.integers(0, 200))
               | json_value.map(lambda v: json.dumps(v, allow_nan=True).encode())
               | st.binary(max_size=200)
               | st.sampled_from([b"[" * 5000, b'{"a":' * 5000, b"\xef\xbb\xbf{}", b"\x00" * 10]))


@pytest.fixture(scope="module")
def fake():
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(scope="module")
def prop_home(tmp_path_factory, fake) -> Path:
    """A home whose chatgpt provider refreshes against the fake (dead refresh tokens fail fast)."""
    home = tmp_path_factory.mktemp("prop") / "home"
    home.mkdir(mode=0o700)
    table = {"issuer": fake.issuer, "api_base": fake.api_base, "chatgpt_base": fake.chatgpt_base}
    write_private(home / "config.toml", tomli_w.dumps({"providers": {"chatgpt": table}}).encode())
    return home


def write_private(path: Path, data: bytes) -> None:
    """Written 0600, so no "permissions were tightened" notice joins the output."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def put_token_file(home: Path, data: bytes) -> None:
    write_private(home / "chatgpt_oauth.json", data)
    tokens._cache.clear()  # same path, maybe same size and mtime: do not let the cache hide the new bytes


def _deep(data: bytes) -> bool:
    return data.count(b"[") + data.count(b"{") > 900


@PROPERTY
@given(token_files)
@example(b'{"access_token": "abc", "expires_at": 1e400}')
@example(b'{"access_token": "abc", "expires_at": NaN}')
@example(b'{"access_token": "abc", "expires_at": 1e20}')
@example(b'{"access_token": "abc", "expires_at": 1.7e12}')
@example(b'{"access_token": "abc", "last_refresh": "9999-12-31T23:59:59-23:59"}')
@example(f'{{"access_token": "{SECRET_JWT}", "refresh_token": "{SECRET_RT}", "expires_at": "soon"}}'.encode())
@example(f'{{"access_token": "{SECRET_JWT}", '.encode())
def test_token_file_reads_never_crash_or_leak(prop_home, data):
    if _deep(data):
        return  # see test_deeply_nested_token_file_is_a_clear_error
    put_token_file(prop_home, data)
    try:
        credentials = load_credentials("chatgpt", Store(prop_home))
    except OAuthHubError as exc:
        assert "\n" not in str(exc)
        assert_clean(str(exc))
    else:
        if credentials is not None:
            from oauth_core.credentials import SECRET_FIELDS, mask

            text = repr(credentials)
            for name in SECRET_FIELDS:
                assert f"{name}={mask(getattr(credentials, name))!r}" in text
            assert SECRET_JWT not in text and SECRET_RT not in text and SECRET_KEY not in text
            # What status shows must be showable: an expiry that fits a date, or none.
            if credentials.expires_at is not None:
                assert math.isfinite(credentials.expires_at)
    rows = status("chatgpt", home=prop_home)
    assert len(rows) == 1
    assert_clean(json.dumps(rows, allow_nan=False))


@PROPERTY
@given(token_files)
@example(b'{"access_token": "abc", "refresh_token": "rt_dead", "expires_at": 1}')
@example(f'{{"access_token": "", "refresh_token": "{SECRET_RT}"}}'.encode())
def test_get_token_returns_the_token_or_a_clean_error(prop_home, data):
    if _deep(data):
        return
    put_token_file(prop_home, data)
    try:
        token = tokens.get_token("chatgpt", home=prop_home)
    except OAuthHubError as exc:
        assert "\n" not in str(exc)
        assert_clean(str(exc))
    else:
        assert isinstance(token, str) and token


@settings(max_examples=40, deadline=None)
@given(token_files)
@example(b'{"access_token": "abc", "expires_at": 1e20}')
@example(b'{"access_token": "abc", "expires_at": 253402300799, "api_key": "k", "api_key_obtained_at": "0001-01-01"}')
def test_cli_status_and_token_in_process(prop_home, data):
    """The CLI's own formatting of whatever a token file holds (click's runner, in process)."""
    from oauth_hub.cli import cli

    if _deep(data):
        return
    put_token_file(prop_home, data)
    runner = CliRunner()
    for args in (["status", "chatgpt"], ["status", "--json"], ["token", "chatgpt"]):
        result = runner.invoke(cli, args, env={"OAUTH_HUB_HOME": str(prop_home), "NO_COLOR": "1"})
        assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.exception)
        assert_clean(result.stderr)
        if args[0] == "token" and result.exit_code != 0:
            lines = [line for line in result.stderr.splitlines() if not line.startswith("Note:")]
            assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr


def test_deeply_nested_token_file_is_a_clear_error(prop_home):
    put_token_file(prop_home, b"[" * 100_000)
    with pytest.raises(OAuthHubError):
        load_credentials("chatgpt", Store(prop_home))


# The same at the real command line, for a few files (each is a process start).
CLI_TOKEN_FILES = {
    "truncated-with-secret": f'{{"access_token": "{SECRET_JWT}", "refresh_token": "{SECRET_RT}", '.encode(),
    "wrong-type-with-secret": f'{{"access_token": ["{SECRET_JWT}"], "api_key": "{SECRET_KEY}"}}'.encode(),
    "infinite-expiry": b'{"access_token": "abc", "expires_at": 1e400}',
    "nan-expiry": b'{"access_token": "abc", "expires_at": NaN}',
    "year-3e12-expiry": b'{"access_token": "abc", "expires_at": 1e20}',
    "binary": b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe",
    "list": b"[1, 2, 3]",
    "deeply-nested": b"[" * 100_000,
}


def run_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    from .conftest import Cli

    command = Cli(home, home.parent).command
    env = {k: v for k, v in os.environ.items() if not k.startswith("OAUTH_HUB")}
    env.update(OAUTH_HUB_HOME=str(home), NO_COLOR="1")
    return subprocess.run([*command, *args], env=env, capture_output=True, text=True, timeout=60)


def assert_one_line_error(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if not line.startswith("Note:")]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert_clean(result.stderr + result.stdout)


@pytest.mark.parametrize("name", CLI_TOKEN_FILES)
def test_cli_on_a_hostile_token_file(tmp_path, name):
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    write_private(home / "chatgpt_oauth.json", CLI_TOKEN_FILES[name])
    assert_one_line_error(run_cli(home, "token", "chatgpt"))
    human = run_cli(home, "status", "chatgpt")
    assert human.returncode == 1 and "Traceback" not in human.stderr and "unreadable" in human.stdout
    assert_clean(human.stdout + human.stderr)
    as_json = run_cli(home, "status", "chatgpt", "--json")
    assert as_json.returncode == 1 and json.loads(as_json.stdout)[0]["error"]  # not signed in
    assert_clean(as_json.stdout + as_json.stderr)


# -- config files --------------------------------------------------------------------------------------

toml_value = st.recursive(
    st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20) | st.sampled_from(SECRETS),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=3),
    max_leaves=8,
)
chatgpt_keys = st.sampled_from(["issuer", "client_id", "port", "fallback_ports", "callback_timeout", "prefix",
                                "cancel_busy_port", "callback_path", "jwks_uri", "title", "unknown"])
config_docs = st.dictionaries(st.sampled_from(["providers", "other"]), st.dictionaries(
    st.sampled_from(["chatgpt", "claude_code", "x"]), st.dictionaries(chatgpt_keys, toml_value, max_size=4)
    | toml_value, max_size=2) | toml_value, max_size=2)


def _toml(doc) -> bytes:
    try:
        return tomli_w.dumps(doc).encode()
    except (TypeError, ValueError):
        return json.dumps(doc, allow_nan=True).encode()  # not TOML: also fine as hostile input


config_files = (config_docs.map(_toml)
                | st.binary(max_size=200)
                | st.text(max_size=200).map(str.encode)
                | st.sampled_from([b"a = " + b"[" * 5000, b"a = " + b"{b = " * 5000, f'x = "{SECRET_KEY}'.encode(),
                                   b"[providers.chatgpt]\nport = 99999\n",
                                   b'[providers.chatgpt]\nfallback_ports = ["x"]\n',
                                   f'[providers.chatgpt]\nport = "{SECRET_RT}"\n'.encode()]))


@PROPERTY
@given(config_files)
def test_provider_load_on_any_config(prop_home, data):
    home = prop_home.parent / "config-home"
    home.mkdir(mode=0o700, exist_ok=True)
    write_private(home / "config.toml", data)
    try:
        provider = Provider.load("chatgpt", Store(home))
    except OAuthHubError as exc:
        assert "\n" not in str(exc)
        assert_clean(str(exc))
        return
    assert all(isinstance(port, int) for port in provider.ports)
    assert_clean(repr(provider))


@pytest.mark.parametrize("body", [b"a = " + b"[" * 100_000, f'[providers.chatgpt]\nport = "{SECRET_RT}"\n'.encode(),
                                  f'[providers.chatgpt\nclient_id = "{SECRET_KEY}"'.encode(), b"\xff\xfe\x00"],
                         ids=["deeply-nested", "wrong-type-with-secret", "broken-with-secret", "binary"])
def test_cli_on_a_hostile_config(tmp_path, body):
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    write_private(home / "config.toml", body)
    assert_one_line_error(run_cli(home, "config", "show", "chatgpt"))


@pytest.mark.parametrize("port", ["99999", "-1", "[1455, 70000]"])
def test_cli_login_with_an_impossible_port(tmp_path, port):
    """A port no socket can bind is a one-line error, not bind()'s OverflowError traceback."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    key = "fallback_ports" if port.startswith("[") else "port"
    write_private(home / "config.toml", f"[providers.chatgpt]\n{key} = {port}\n".encode())
    from .conftest import Cli

    env = {k: v for k, v in os.environ.items() if not k.startswith("OAUTH_HUB")}
    env.update(OAUTH_HUB_HOME=str(home), NO_COLOR="1")
    result = subprocess.run([*Cli(home, tmp_path).command, "login", "chatgpt", "--no-browser", "--timeout", "2"],
                            env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: ") and "not a port number" in last


# -- JWTs -------------------------------------------------------------------------------------------

segment = (st.binary(max_size=120).map(_b64)
           | json_value.map(lambda v: _b64(json.dumps(v, allow_nan=True).encode()))
           | st.text(max_size=60)
           | st.sampled_from(["", "=", "====", "!!", _b64(b"[" * 40_000), _b64(b'{"a":' * 10_000),
                              _b64(b"x" * 70_000), _b64(b"\xff\xfe"), _b64(b"null"), _b64(b"123"), _b64(b'"s"')]))
claims_object = st.dictionaries(st.sampled_from(["exp", "email", "https://api.openai.com/auth",
                                                 "https://api.openai.com/profile", "iss", "aud"]) | st.text(max_size=8),
                                json_value | st.dictionaries(st.text(max_size=20), json_value, max_size=4), max_size=6)
jwts = (st.lists(segment, min_size=1, max_size=4).map(".".join)
        | st.builds(lambda c: ".".join(("eyJhbGciOiJub25lIn0", _b64(json.dumps(c, allow_nan=True).encode()), "sig")),
                    claims_object)
        | st.none() | st.integers() | st.sampled_from([SECRET_JWT]))


@settings(max_examples=200, deadline=None)
@given(jwts)
@example("a." + _b64(b"[" * 40_000) + ".c")
@example("a." + _b64(b'{"exp": 1e400}') + ".c")
@example("a." + _b64(b'{"exp": NaN}') + ".c")
def test_claims_readers_never_crash(token):
    try:
        data = claims.payload(token)
    except claims.MalformedToken as exc:
        assert_clean(str(exc))
    else:
        assert isinstance(data, dict)
    assert isinstance(claims.safe_payload(token), dict)
    exp = claims.expiry(token)
    assert exp is None or (isinstance(exp, float) and math.isfinite(exp))


@settings(max_examples=150, deadline=None)
@given(jwts, jwts, st.dictionaries(st.sampled_from(["access_token", "refresh_token", "id_token", "expires_in",
                                                     "account", "organization"]), json_value, max_size=6))
@example("a." + _b64(b"[" * 40_000) + ".c", None, {"expires_in": float("inf"), "access_token": "x"})
@example(None, None, {"expires_in": 1e300, "access_token": "x"})
def test_token_answers_and_describe_account_never_crash(id_token, access_token, answer):
    """Whatever a token endpoint answers, the record built from it can be stored and read back."""
    from oauth_hub.providers import chatgpt, claude_code

    creds = Credentials(provider="chatgpt",
                        id_token=id_token if isinstance(id_token, str) else None,
                        access_token=access_token if isinstance(access_token, str) else None)
    account = chatgpt.describe_account(credentials=creds)
    assert all(v is None or isinstance(v, (str, bool, int)) for v in account.values())
    assert isinstance(claude_code.describe_account(credentials=creds, answer=answer), dict)

    built = Credentials.from_token_response("chatgpt", answer, previous=creds)
    stored = json.loads(json.dumps(built.to_json(), allow_nan=True))
    again = Credentials.from_json("chatgpt", stored)  # a login never writes what status cannot read
    if again.expires_at is not None:
        assert math.isfinite(again.expires_at)
