"""The security checklist of issue 7, one test (or one parametrized test) per item.

- the callback server answers only ``Host: 127.0.0.1:PORT`` / ``localhost:PORT`` and only GET;
- it binds 127.0.0.1 only and closes when the flow ends; junk on its port does not stop
  the real callback, and a client that trickles its request is cut off;
- files are private under a permissive umask;
- ``repr``/``str`` of credential-holding objects, exception messages and debug logs
  carry no secret; error pages escape what they echo;
- no token in a URL the CLI prints or the browser visits.

:class:`TestIdTokensAndPermissions` holds the tests for ID-token verification against the
provider's JWKS and for tightening loose permissions.

Callback servers and logins use free ports (the provider's ``port`` is set in
``config.toml`` and the fake is told to accept that redirect URI), never 1455/1457.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import stat
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from oauth_core import claims
from oauth_core.errors import IdPError, LoginError, LoginTimeout, OAuthHubError
from oauth_core.loopback import CallbackServer
from oauth_core.testing.browser import follow
from oauth_core.testing.fake_openai import FakeOpenAI
from oauth_core.testing.jwt_keys import SigningKey
from oauth_core.testing.seed import seed_sign_in

from .conftest import write_config

STATE = "security-test-state-value-0123456789"
PATH = "/auth/callback"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def raw_exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send ``data`` as is and read the whole answer (the server closes after one)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def refused(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return False
    except OSError:
        return True


@pytest.fixture
def server():
    srv = CallbackServer(path=PATH, state=STATE, ports=[free_port()], provider="Example",
                         login_hint="oauth-hub login example", cancel_stale=False)
    srv.start()
    yield srv
    srv.close()


@pytest.fixture
def loopback_idp():
    """The fake OpenAI, accepting a redirect to a free port instead of 1455."""
    port = free_port()
    with FakeOpenAI(allowed_redirect_uris=[f"http://127.0.0.1:{port}{PATH}"]) as fake:
        yield fake, port


@pytest.fixture
def login_home(home, loopback_idp) -> Path:
    """A home whose chatgpt provider talks to the fake and listens on the free port."""
    fake, port = loopback_idp
    write_config(home, "chatgpt", issuer=fake.issuer, api_base=fake.api_base, chatgpt_base=fake.chatgpt_base,
                 port=port, fallback_ports=[], cancel_busy_port=False, callback_timeout=20)
    return home


def stored(home: Path) -> dict:
    return json.loads((home / "chatgpt_oauth.json").read_text())


def secrets_of(record: dict) -> list[str]:
    return [record[k] for k in ("access_token", "refresh_token", "id_token", "api_key") if record.get(k)]


def assert_no_secret(text: str, secrets: list[str], *, prefix: int = 8) -> None:
    """No secret, nor its first ``prefix`` characters, appears in ``text`` (a 4-6 character prefix may)."""
    for secret in secrets:
        assert secret not in text
        assert secret[:prefix] not in text, f"a prefix of a secret ({secret[:prefix]}…) leaked"


# -- the callback server: Host and method ----------------------------------------------


FOREIGN_HOSTS = [
    "evil.example",
    "evil.example:{port}",
    "127.0.0.1",  # no port
    "localhost",
    "127.0.0.1:{other}",
    "localhost:{other}",
    "127.0.0.1:{port}.evil.example",
    "127.0.0.1.nip.io:{port}",
    "localhost.:{port}",
    "sub.localhost:{port}",
    "127.0.0.2:{port}",
    "0.0.0.0:{port}",
    "[::1]:{port}",
    "[::ffff:127.0.0.1]:{port}",
    "[0:0:0:0:0:0:0:1]:{port}",
    "2130706433:{port}",  # 127.0.0.1 as a decimal number
    "0x7f000001:{port}",
    "127.1:{port}",
    "user@127.0.0.1:{port}",
    "127.0.0.1:{port}:{port}",
    " ",
    "",
]


@pytest.mark.parametrize("host", FOREIGN_HOSTS)
def test_foreign_host_is_refused_and_does_not_complete_the_login(server, host):
    """DNS rebinding: a page on another name that resolves to 127.0.0.1 sends its own Host."""
    value = host.format(port=server.port, other=server.port + 1 if server.port < 65535 else 1)
    request = (f"GET {PATH}?code=stolen&state={STATE} HTTP/1.1\r\nHost: {value}\r\n"
               "Connection: close\r\n\r\n").encode()
    answer = raw_exchange(server.port, request)
    assert status_of(answer) == 400
    assert not server.finished


def test_missing_host_is_refused(server):
    answer = raw_exchange(server.port, f"GET {PATH}?code=x&state={STATE} HTTP/1.0\r\n\r\n".encode())
    assert status_of(answer) == 400
    assert not server.finished


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}"])
def test_loopback_hosts_with_the_right_port_are_accepted(server, host):
    value = host.format(port=server.port)
    answer = raw_exchange(server.port, f"GET {PATH}?code=ok&state={STATE} HTTP/1.1\r\nHost: {value}\r\n\r\n".encode())
    assert status_of(answer) == 200
    assert server.wait(1).code == "ok"


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "PUT", "POST", "DELETE", "PATCH", "TRACE", "CONNECT", "FOO"])
def test_methods_other_than_get_are_refused(server, method):
    target = f"127.0.0.1:{server.port}" if method == "CONNECT" else f"{PATH}?code=x&state={STATE}"
    request = f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Length: 0\r\n\r\n"
    answer = raw_exchange(server.port, request.encode())
    assert status_of(answer) in (405, 501)
    assert not server.finished
    if method == "HEAD":
        assert answer.endswith(b"\r\n\r\n"), "a HEAD answer has no body"


# -- binding and lifetime ------------------------------------------------------------


def non_loopback_addresses() -> list[tuple[int, str]]:
    """This machine's addresses that are not loopback, IPv4 and IPv6 (may be empty)."""
    found: set[tuple[int, str]] = set()
    for probe in ("192.0.2.1", "10.255.255.255"):  # a UDP connect sends nothing; it only picks a route
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.connect((probe, 9))
                found.add((socket.AF_INET, udp.getsockname()[0]))
        except OSError:
            pass
    try:
        found.add((socket.AF_INET, socket.gethostbyname(socket.gethostname())))
    except OSError:
        pass
    try:
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            raw, *_, name = line.split()
            address = ":".join(raw[i:i + 4] for i in range(0, 32, 4))
            found.add((socket.AF_INET6, socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, address))))
    except OSError:
        pass
    unusable = ("::1", "0.0.0.0")  # noqa: S104 - an address to skip, not one to bind
    return sorted((family, a) for family, a in found
                  if not a.startswith(("127.", "fe80")) and a not in unusable)


def test_binds_127_0_0_1_only(server):
    listener = server._httpd.socket
    assert listener.family == socket.AF_INET
    assert listener.getsockname() == ("127.0.0.1", server.port)
    # A 0.0.0.0 bind would answer on every address, 127.0.0.2 and ::1 included.
    assert refused(server.port, "127.0.0.2")
    with pytest.raises(OSError), socket.create_connection(("::1", server.port), timeout=1):
        pass
    for family, address in non_loopback_addresses():
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(1)
            assert sock.connect_ex((address, server.port)) != 0, f"the callback port answers on {address}"


def test_server_closes_when_the_callback_arrives_and_the_flow_ends():
    port = free_port()
    with CallbackServer(path=PATH, state=STATE, ports=[port]) as srv:
        follow(f"http://127.0.0.1:{port}{PATH}?code=c&state={STATE}")
        assert srv.wait(2).code == "c"
        thread = srv._thread
    assert refused(port)
    assert thread is not None and not thread.is_alive()


@pytest.mark.parametrize("ending", ["timeout", "cancel", "error-callback"])
def test_server_closes_however_the_flow_ends(ending):
    port = free_port()
    srv = CallbackServer(path=PATH, state=STATE, ports=[port], cancel_stale=False)
    with srv, pytest.raises(LoginError):
        if ending == "cancel":
            srv.cancel("stop")
        elif ending == "error-callback":
            follow(f"http://127.0.0.1:{port}{PATH}?error=access_denied&state={STATE}")
        srv.wait(0.5)
    assert refused(port)


class ClickThrough:
    """A LoginUI whose "browser" follows the sign-in URL in a thread, in this process."""

    def __init__(self) -> None:
        from oauth_core.login import LoginUI

        self.ui = type("UI", (LoginUI,), {"auth_url": lambda _self, url: self.open(url)})()
        self.urls: list[str] = []

    def open(self, url: str) -> None:
        self.urls.append(url)
        threading.Thread(target=follow, args=(url,), daemon=True).start()


def test_a_whole_login_releases_the_port(login_home, loopback_idp):
    from oauth_core.login import login

    fake, port = loopback_idp
    result = login("chatgpt", home=login_home, open_browser=False, ui=ClickThrough().ui)
    assert result.credentials.access_token
    assert refused(port)


@pytest.mark.parametrize("failure", ["refused", "timeout"])
def test_a_failed_login_releases_the_port(login_home, loopback_idp, failure):
    from oauth_core.login import LoginUI, login

    fake, port = loopback_idp
    if failure == "refused":
        fake.authorize_error = "access_denied"
        with pytest.raises(LoginError):
            login("chatgpt", home=login_home, open_browser=False, ui=ClickThrough().ui)
    else:  # nobody signs in
        with pytest.raises(LoginTimeout):
            login("chatgpt", home=login_home, open_browser=False, ui=LoginUI(), timeout=1)
    assert refused(port)
    assert not (login_home / "chatgpt_oauth.json").exists()


# -- the callback server under junk ----------------------------------------------------


def test_a_trickling_client_is_cut_off(server, monkeypatch):
    """Slowloris: one byte at a time keeps each read inside the socket timeout forever.

    The server must bound the whole request, not only each read. (With the per-read
    timeout alone this connection stays open for 100 headers' worth of bytes: minutes.)
    """
    from oauth_core import loopback

    monkeypatch.setattr(loopback._Handler, "timeout", 1.0)
    head = f"GET {PATH}?code=slow&state={STATE} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n" + "X-A: b\r\n" * 100
    data = head.encode()
    sent = 0
    closed = False
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.settimeout(0.1)  # at most ~10 bytes a second: the whole head would take minutes
        while sent < len(data):
            try:
                sock.send(data[sent:sent + 1])
                sent += 1
                if sock.recv(1024) == b"":
                    closed = True
                    break
            except TimeoutError:
                continue  # nothing from the server within 0.1 s: it is still waiting for us
            except OSError:
                closed = True
                break
    assert closed and sent < len(data), "the server let a trickling client send its whole request"
    assert not server.finished


def _junk(port: int, kind: str, stop: threading.Event) -> None:
    """One hostile connection of ``kind``, reopened until ``stop``."""
    import random

    rng = random.Random(kind)
    while not stop.is_set():
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=2)
        except OSError:
            time.sleep(0.05)
            continue
        try:
            if kind == "idle":
                stop.wait(3)
            elif kind == "slowloris":
                for byte in f"GET {PATH}?code=junk HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode():
                    if stop.wait(0.05):
                        break
                    sock.send(bytes([byte]))
            elif kind == "oversized":
                sock.sendall(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n")
                sock.recv(65536)
            elif kind == "many-headers":
                sock.sendall(b"GET / HTTP/1.1\r\n" + b"X-H: v\r\n" * 150 + b"\r\n")
                sock.recv(65536)
            elif kind == "binary":
                for _ in range(16):
                    sock.sendall(rng.randbytes(4096))
            elif kind == "half-open":
                sock.sendall(b"GET /auth/cal")
                sock.shutdown(socket.SHUT_WR)
                sock.recv(65536)
        except OSError:
            pass
        finally:
            sock.close()


def test_the_real_callback_completes_while_50_junk_connections_hammer_the_port(server):
    """A correctness check under load (the timed budget is benchmarks/bench_loopback_junk.py)."""
    kinds = ["idle", "slowloris", "oversized", "many-headers", "binary", "half-open"]
    stop = threading.Event()
    threads = [threading.Thread(target=_junk, args=(server.port, kinds[i % len(kinds)], stop), daemon=True)
               for i in range(50)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        done = threading.Thread(target=follow, args=(f"http://127.0.0.1:{server.port}{PATH}?code=real&state={STATE}",),
                                kwargs={"timeout": 10}, daemon=True)
        done.start()
        assert server.wait(10).code == "real"
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)


# -- files under a permissive umask ------------------------------------------------------


def under_umask(cli, *args: str, umask: str = "000"):
    return subprocess.run(["sh", "-c", f'umask {umask}; exec "$@"', "sh", *cli.command, *args],
                          env=cli.env, capture_output=True, text=True, timeout=60)


def test_modes_hold_under_umask_000(cli, home, loopback_idp):
    fake, port = loopback_idp
    assert not home.exists()
    for key, value in (("issuer", fake.issuer), ("api_base", fake.api_base), ("chatgpt_base", fake.chatgpt_base),
                       ("port", str(port)), ("fallback_ports", ""), ("cancel_busy_port", "false")):
        done = under_umask(cli, "config", "set", f"chatgpt.{key}", value)
        assert done.returncode == 0, done.stderr
    assert mode(home) == 0o700
    assert mode(home / "config.toml") == 0o600

    login = under_umask(cli, "login", "chatgpt")
    assert login.returncode == 0, login.stderr
    refresh = under_umask(cli, "refresh", "chatgpt")
    assert refresh.returncode == 0, refresh.stderr
    files = sorted(home.iterdir())
    assert {p.name for p in files} >= {"config.toml", "chatgpt_oauth.json", "chatgpt_models.json"}
    assert mode(home) == 0o700
    for path in files:
        assert mode(path) & 0o077 == 0, f"{path.name} is {mode(path):o} under umask 000"


# -- repr and str of everything that holds a secret ------------------------------------------


def _planted_credentials():
    from oauth_core.credentials import Credentials

    return Credentials(
        provider="chatgpt", access_token="at-SECRET-access-0123456789", refresh_token="rt-SECRET-refresh-0123456789",
        id_token="it-SECRET-idtoken-0123456789", api_key="sk-SECRET-apikey-0123456789",
        account={"email": "a@example.com"}, extra={"session_token": "xx-SECRET-extra-0123456789"},
    )


def test_credentials_repr_and_str_show_a_prefix_only():
    creds = _planted_credentials()
    for text in (repr(creds), str(creds), f"{creds}", repr([creds]), repr({"c": creds})):
        assert "SECRET" not in text
        assert "at-S…" in text and "sk-S…" in text  # a prefix, like `gh auth status`
        assert "a@example.com" in text


def test_login_result_repr_masks_the_credentials(tmp_path):
    from oauth_core.login import LoginResult

    result = LoginResult(_planted_credentials(), {"chatgpt-x": {"name": "x"}}, tmp_path / "t.json",
                         tmp_path / "m.json")
    for text in (repr(result), str(result), json.dumps(result.summary())):
        assert "SECRET" not in text


def test_callback_result_pkce_pair_and_server_hide_code_verifier_and_state():
    from oauth_core.loopback import CallbackResult
    from oauth_core.pkce import PkcePair, new_state

    result = CallbackResult(code="code-SECRET-0123456789", params={"code": "code-SECRET-0123456789",
                                                                   "state": "state-SECRET-0123456789"})
    pair = PkcePair.generate()
    state = new_state()
    srv = CallbackServer(path=PATH, state=state, ports=[free_port()])
    for text in (repr(result), str(result)):
        assert "SECRET" not in text
    for text in (repr(pair), str(pair)):
        assert pair.verifier not in text and pair.verifier[:8] not in text
    for text in (repr(srv), str(srv)):
        assert state not in text


def test_http_client_provider_store_and_auth_reprs_hold_no_secret(login_home, loopback_idp):
    import requests

    from oauth_core.auth import OAuthHubAuth
    from oauth_core.http import HttpClient
    from oauth_core.provider import Provider
    from oauth_core.store import Store

    fake, _ = loopback_idp
    seeded = seed_sign_in("chatgpt", fake.mint_tokens(), home=login_home)
    secrets = [seeded.access_token, seeded.refresh_token, seeded.id_token]

    client = HttpClient()
    client.get(f"{fake.chatgpt_base}/models", params={"client_version": "1"},
               headers={"Authorization": f"Bearer {seeded.access_token}", "ChatGPT-Account-Id": fake.account_id})
    auth = OAuthHubAuth("chatgpt", home=login_home)
    session = requests.Session()
    session.auth = auth
    response = session.get(f"{fake.chatgpt_base}/models", params={"client_version": "1"}, timeout=5)
    assert response.status_code == 200
    provider = Provider.load("chatgpt", Store(login_home))
    for obj in (client, auth, provider, Store(login_home), response.request):
        assert_no_secret(repr(obj) + str(obj), secrets)


# -- exception messages ---------------------------------------------------------------------------


def _token_quoting_body(*secrets: str) -> dict:
    return {"error": "invalid_request",
            "error_description": "the token " + " and ".join(secrets) + " is not acceptable here"}


def test_refresh_error_quoting_the_tokens_is_scrubbed(login_home, loopback_idp):
    from oauth_core import tokens

    fake, _ = loopback_idp
    seeded = seed_sign_in("chatgpt", fake.mint_tokens(), home=login_home, expires_at=time.time() - 10)
    secrets = [seeded.access_token, seeded.refresh_token, seeded.id_token]
    fake.fail_next("/oauth/token", 400, _token_quoting_body(*secrets))
    with pytest.raises(OAuthHubError) as info:
        tokens.get_token("chatgpt", home=login_home)
    message = str(info.value)
    assert "invalid_request" in message and "\n" not in message
    assert_no_secret(message + repr(info.value), secrets)


def test_api_key_exchange_error_quoting_the_id_token_is_scrubbed(login_home, loopback_idp):
    from oauth_core.http import HttpClient
    from oauth_core.provider import Provider
    from oauth_core.store import Store

    fake, _ = loopback_idp
    seeded = seed_sign_in("chatgpt", fake.mint_tokens(), home=login_home)
    fake.fail_next("/oauth/token", 400, _token_quoting_body(seeded.id_token))
    with pytest.raises(IdPError) as info:
        Provider.load("chatgpt", Store(login_home)).call("obtain_api_key", http=HttpClient(), credentials=seeded)
    assert_no_secret(str(info.value), [seeded.id_token])


def test_non_json_error_body_quoting_a_token_is_not_shown(login_home, loopback_idp):
    from oauth_core import tokens

    fake, _ = loopback_idp
    seeded = seed_sign_in("chatgpt", fake.mint_tokens(), home=login_home, expires_at=time.time() - 10)
    fake.fail_next("/oauth/token", 502, f"upstream said: refresh_token={seeded.refresh_token}", times=10)
    with pytest.raises(OAuthHubError) as info:
        tokens.get_token("chatgpt", home=login_home)
    assert "HTTP 502" in str(info.value)
    assert_no_secret(str(info.value), [seeded.refresh_token])


def test_cli_error_quoting_the_tokens_is_one_scrubbed_line(cli, login_home, loopback_idp):
    fake, _ = loopback_idp
    seeded = seed_sign_in("chatgpt", fake.mint_tokens(), home=login_home, expires_at=time.time() - 10)
    secrets = [seeded.access_token, seeded.refresh_token, seeded.id_token]
    fake.fail_next("/oauth/token", 400, _token_quoting_body(*secrets))
    result = cli("token", "chatgpt")
    assert result.returncode == 1 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert_no_secret(result.stderr, secrets)


def test_error_callback_echoing_a_token_is_scrubbed(server, loopback_idp):
    fake, _ = loopback_idp
    leaked = fake.mint_tokens()["access_token"]
    verdict = server.submit({"state": STATE, "error": "access_denied", "error_description": f"bad token {leaked}"})
    assert verdict.status == 400
    with pytest.raises(LoginError) as info:
        server.wait(1)
    assert_no_secret(str(info.value), [leaked])


def test_login_errors_are_one_line_and_scrubbed_at_the_cli(cli, login_home, loopback_idp):
    fake, _ = loopback_idp
    leaked = fake.mint_tokens()
    fake.fail_next("/oauth/token", 400, _token_quoting_body(leaked["refresh_token"], leaked["id_token"]))
    result = cli("login", "chatgpt")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: ") and "token exchange" in last
    assert "Traceback" not in result.stderr
    assert_no_secret(result.stderr, [leaked["refresh_token"], leaked["id_token"]])


# -- error pages -----------------------------------------------------------------------------------


HOSTILE = ['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', "'><svg onload=alert(1)>",
           "</title><script>x</script>", "javascript:alert(1)"]


@pytest.mark.parametrize("payload", HOSTILE)
def test_error_pages_escape_what_they_echo(server, payload):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    query = f"error={quote(payload)}&error_description={quote(payload)}&state={STATE}"
    conn.request("GET", f"{PATH}?{query}", headers={"Host": f"127.0.0.1:{server.port}"})
    response = conn.getresponse()
    body = response.read().decode()
    conn.close()
    assert response.status == 400
    for dangerous in ("<script", "<img", "<svg", "</title><"):
        assert dangerous not in body
    assert response.getheader("Content-Type") == "text/html; charset=utf-8"
    assert "default-src 'none'" in response.getheader("Content-Security-Policy")
    assert response.getheader("X-Content-Type-Options") == "nosniff"
    assert response.getheader("Referrer-Policy") == "no-referrer"  # the callback URL carries the code
    assert response.getheader("Cache-Control") == "no-store"


@pytest.mark.parametrize("target", ["/<script>alert(1)</script>", f"{PATH}?code=<script>&state=<script>"])
def test_other_pages_do_not_echo_markup(server, target):
    request = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode()
    assert b"<script" not in raw_exchange(server.port, request).split(b"\r\n\r\n", 1)[1]


def test_malformed_request_error_page_escapes_the_request_line(server):
    # http.server's own error page (here without a status line: it takes the request for HTTP/0.9).
    answer = raw_exchange(server.port, b"GET /x <script>alert(1)</script>\r\n\r\n")
    assert b"400" in answer and b"&lt;script&gt;" in answer
    assert b"<script>" not in answer


# -- URLs ------------------------------------------------------------------------------------------


def test_no_secret_in_any_url_printed_or_visited(cli, login_home, loopback_idp):
    fake, port = loopback_idp
    result = cli("login", "chatgpt", "--json")
    assert result.returncode == 0, result.stderr
    record = stored(login_home)
    secrets = secrets_of(record)
    assert len(secrets) == 4
    (exchange,) = [r for r in fake.requests_to("/oauth/token") if r.form and r.form.get("code")]
    secrets.append(exchange.form["code_verifier"])
    visited = cli.visited()
    assert visited and any(f"127.0.0.1:{port}{PATH}?" in url for url in visited)
    for url in visited:
        assert_no_secret(url, secrets)
    assert_no_secret(result.stderr + result.stdout, secrets)
    # The only query that carries the authorization code is the callback itself.
    code = exchange.form["code"]
    assert [u for u in visited if code in u] == [u for u in visited if u.startswith(f"http://127.0.0.1:{port}{PATH}")]
    assert code not in result.stderr + result.stdout


# -- debug logging -------------------------------------------------------------------------------


SITECUSTOMIZE = '''
import os, sys
if os.path.basename(sys.argv[0] if sys.argv else "") == "oauth-hub" or "oauth_hub" in " ".join(sys.argv):
    import http.client, logging
    logging.basicConfig(level=logging.DEBUG, format="LOG %(name)s %(levelname)s %(message)s")
'''


def test_debug_logging_and_warnings_show_no_secret(cli, login_home, loopback_idp, tmp_path):
    """The CLI has no --debug flag; the loudest it gets is a host that turns on DEBUG logging.

    With every logger at DEBUG (urllib3 then logs each request line), Python's dev mode and
    all warnings shown, no secret may appear on stderr.
    """
    fake, _ = loopback_idp
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {"PYTHONPATH": str(site), "PYTHONDEVMODE": "1", "PYTHONWARNINGS": "always"}
    stderr = ""
    login = cli("login", "chatgpt", env=env)
    assert login.returncode == 0, login.stderr
    assert "LOG urllib3" in login.stderr, "debug logging was not switched on"
    stderr += login.stderr
    first = last = stored(login_home)
    for args in (("refresh", "chatgpt"), ("status", "--json"), ("token", "chatgpt"), ("env", "chatgpt"),
                 ("logout", "chatgpt")):
        done = cli(*args, env=env)
        assert done.returncode == 0, (args, done.stderr)
        stderr += done.stderr
        if (login_home / "chatgpt_oauth.json").exists():
            last = stored(login_home)
    secrets = secrets_of(first) + secrets_of(last)
    assert_no_secret(stderr, secrets)


# -- work the lead is landing: ID-token verification and tightening of loose permissions ---------


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _tampered(token: str, **changes) -> str:
    """The same JWT with claims changed and the original signature kept."""
    header, _, signature = token.split(".")
    return ".".join((header, _b64({**claims.payload(token), **changes}), signature))


class TestIdTokensAndPermissions:
    """ID tokens verified against the provider's JWKS; loose permissions tightened with a notice.

    Verification lives in provider.py/idtoken.py, permissions in store.py (shown by the
    CLI). No fake knob is needed: ``FakeOpenAI.fail_next(path, 200, body)`` serves any
    answer, so the token endpoint can hand out a forged ID token and the JWKS endpoint
    another key set.
    """

    @staticmethod
    def _assert_refused_and_nothing_written(result, home: Path) -> None:
        assert result.returncode == 1, result.stderr
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("Error: ") and "ID token" in last, last
        assert "Traceback" not in result.stderr
        assert not (home / "chatgpt_oauth.json").exists()
        assert not (home / "chatgpt_models.json").exists()

    def test_login_refuses_an_id_token_signed_by_another_key(self, cli, login_home, loopback_idp):
        fake, _ = loopback_idp
        fake.fail_next("/.well-known/jwks.json", 200, SigningKey(kid=fake.key.kid).jwks(), times=5)
        result = cli("login", "chatgpt")
        self._assert_refused_and_nothing_written(result, login_home)
        assert fake.count("/oauth/token", "authorization_code") == 1

    def test_login_refuses_a_tampered_id_token(self, cli, login_home, loopback_idp):
        fake, _ = loopback_idp
        answer = fake.mint_tokens()
        answer["id_token"] = _tampered(answer["id_token"], email="attacker@example.com")
        fake.fail_next("/oauth/token", 200, answer)
        result = cli("login", "chatgpt")
        self._assert_refused_and_nothing_written(result, login_home)
        assert "attacker@example.com" not in result.stderr

    @pytest.mark.parametrize("claim", ["aud", "iss", "exp"])
    def test_login_refuses_an_id_token_with_a_wrong_claim(self, cli, login_home, loopback_idp, claim):
        fake, _ = loopback_idp
        answer = fake.mint_tokens()
        wrong = {"aud": ["another-client"], "iss": "https://evil.example", "exp": int(time.time()) - 3600}[claim]
        answer["id_token"] = fake.key.sign({**claims.payload(answer["id_token"]), claim: wrong})
        fake.fail_next("/oauth/token", 200, answer)
        result = cli("login", "chatgpt")
        self._assert_refused_and_nothing_written(result, login_home)

    def test_refresh_with_a_forged_id_token_keeps_the_file(self, cli, login_home, loopback_idp):
        fake, _ = loopback_idp
        seed_sign_in("chatgpt", fake.mint_tokens(), home=login_home, expires_at=time.time() - 10)
        before = (login_home / "chatgpt_oauth.json").read_bytes()
        answer = fake.mint_tokens()
        answer["id_token"] = SigningKey(kid=fake.key.kid).sign(claims.payload(answer["id_token"]))
        fake.fail_next("/oauth/token", 200, answer)
        result = cli("token", "chatgpt")
        assert result.returncode == 1 and result.stdout == ""
        assert "ID token" in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert (login_home / "chatgpt_oauth.json").read_bytes() == before

    def test_loose_token_file_is_0600_after_a_command_that_writes_it(self, cli, login_home, loopback_idp):
        fake, _ = loopback_idp
        path = login_home / "chatgpt_oauth.json"
        for args in (("refresh", "chatgpt"), ("login", "chatgpt")):
            seed_sign_in("chatgpt", fake.mint_tokens(), home=login_home)
            os.chmod(path, 0o644)  # noqa: S103 - the loose mode under test
            result = cli(*args)
            assert result.returncode == 0, result.stderr
            assert mode(path) == 0o600, args

    def test_loose_token_file_is_tightened_with_a_notice_before_use(self, cli, login_home, loopback_idp):
        fake, _ = loopback_idp
        seeded = seed_sign_in("chatgpt", fake.mint_tokens(), home=login_home)
        path = login_home / "chatgpt_oauth.json"
        os.chmod(path, 0o644)  # noqa: S103
        result = cli("token", "chatgpt")
        assert result.returncode == 0 and result.stdout == seeded.access_token + "\n"
        assert mode(path) == 0o600
        assert str(path) in result.stderr and "644" in result.stderr
        assert_no_secret(result.stderr, [seeded.access_token, seeded.refresh_token])

    @pytest.mark.parametrize("command", ["refresh", "login"])
    def test_loose_home_is_tightened_with_a_notice(self, cli, login_home, loopback_idp, command):
        fake, _ = loopback_idp
        seed_sign_in("chatgpt", fake.mint_tokens(), home=login_home)
        os.chmod(login_home, 0o755)  # noqa: S103
        result = cli(command, "chatgpt")
        assert result.returncode == 0, result.stderr
        assert mode(login_home) == 0o700
        assert str(login_home) in result.stderr and "755" in result.stderr


@pytest.mark.parametrize("headers", [{"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"},
                                     {"Referer": "https://evil.example/page"}])
def test_a_web_page_cannot_cancel_a_login(server, headers):
    """An <img src="http://127.0.0.1:1455/cancel"> on any site must not end the person's login."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/cancel", headers={"Host": f"127.0.0.1:{server.port}", **headers})
    assert conn.getresponse().status == 403
    conn.close()
    assert not server.finished


# -- every login is new ---------------------------------------------------------------------------------


def test_two_logins_never_share_a_state_a_verifier_or_a_nonce(cli, chatgpt_home, idp):
    """A constant state or PKCE verifier passes every single-login test: compare two logins."""
    from oauth_core.testing.fake_openai import s256

    for _ in range(2):
        assert cli("login", "chatgpt").returncode == 0
    authorizes = [r.query for r in idp.requests_to("/oauth/authorize")]
    exchanges = [r.form for r in idp.requests_to("/oauth/token") if r.form and r.form.get("grant_type") ==
                 "authorization_code"]
    assert len(authorizes) == len(exchanges) == 2
    states = [q["state"] for q in authorizes]
    challenges = [q["code_challenge"] for q in authorizes]
    verifiers = [f["code_verifier"] for f in exchanges]
    assert states[0] != states[1] and challenges[0] != challenges[1] and verifiers[0] != verifiers[1]
    assert [s256(v) for v in verifiers] == challenges  # S256 of each login's own verifier
    assert all(q["code_challenge_method"] == "S256" for q in authorizes)
    assert all(len(v) == 86 for v in verifiers) and all(len(x) == 43 for x in states)  # 64 and 32 random bytes
