"""The callback server, spoken to over real sockets."""

from __future__ import annotations

import http.client
import socket
import threading
import time

import pytest
import requests

from oauth_core.errors import LoginCancelled, LoginError, LoginTimeout, PortBusy
from oauth_core.loopback import CallbackServer

STATE = "expected-state-value"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server():
    srv = CallbackServer(path="/auth/callback", state=STATE, ports=[free_port()], provider="Example",
                         login_hint="oauth-hub login example")
    srv.start()
    yield srv
    srv.close()


def get(srv: CallbackServer, path: str, **kwargs) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{srv.port}{path}", timeout=5, **kwargs)


def wait_async(srv: CallbackServer, timeout: float = 5):
    box: dict = {}

    def run():
        try:
            box["result"] = srv.wait(timeout)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            box["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, box


def test_valid_callback_returns_code_and_friendly_page(server):
    response = get(server, f"/auth/callback?code=abc123&state={STATE}")
    assert response.status_code == 200
    assert "You&#x27;re signed in" in response.text or "You're signed in" in response.text
    assert "close this tab" in response.text
    result = server.wait(1)
    assert result.code == "abc123"
    assert "abc123" not in repr(result)


def test_binds_loopback_only(server):
    assert server._httpd.server_address[0] == "127.0.0.1"
    # Nothing answers on the machine's other addresses for that port.
    with pytest.raises(OSError), socket.create_connection(("::1", server.port), timeout=1):
        pass


def test_state_mismatch_shows_error_and_keeps_waiting(server):
    thread, box = wait_async(server)
    forged = get(server, "/auth/callback?code=evil&state=wrong")
    assert forged.status_code == 400
    assert "does not match" in forged.text
    missing = get(server, "/auth/callback?code=evil")
    assert missing.status_code == 400
    time.sleep(0.2)
    assert thread.is_alive(), "a forged callback must not end the login"
    assert get(server, f"/auth/callback?code=real&state={STATE}").status_code == 200
    thread.join(5)
    assert box["result"].code == "real"


def test_forged_error_callback_does_not_end_login(server):
    thread, box = wait_async(server)
    assert get(server, "/auth/callback?error=access_denied&state=nope").status_code == 400
    time.sleep(0.2)
    assert thread.is_alive()
    get(server, f"/auth/callback?code=ok&state={STATE}")
    thread.join(5)
    assert box["result"].code == "ok"


def test_error_callback_is_reported_and_escaped(server):
    evil = "<script>alert(1)</script>"
    response = get(server, "/auth/callback", params={"error": "access_denied", "error_description": evil,
                                                      "state": STATE})
    assert response.status_code == 400
    assert "<script>" not in response.text
    assert "&lt;script&gt;" in response.text
    with pytest.raises(LoginError) as info:
        server.wait(1)
    message = str(info.value)
    assert "access_denied" in message and "oauth-hub login example" in message
    assert "\n" not in message


def test_only_one_callback_is_accepted(server):
    get(server, f"/auth/callback?code=first&state={STATE}")
    second = get(server, f"/auth/callback?code=second&state={STATE}")
    assert second.status_code == 409
    assert server.wait(1).code == "first"


def test_favicon_and_strays_are_ignored(server):
    thread, box = wait_async(server)
    assert get(server, "/favicon.ico").status_code == 404
    assert get(server, "/").status_code == 404
    assert get(server, "/auth/callback/extra?code=x&state=" + STATE).status_code == 404
    time.sleep(0.2)
    assert thread.is_alive()
    get(server, f"/auth/callback?code=fine&state={STATE}")
    thread.join(5)
    assert box["result"].code == "fine"


def test_cancel_ends_a_stale_login(server):
    thread, box = wait_async(server)
    assert get(server, "/cancel").status_code == 200
    thread.join(5)
    assert isinstance(box["error"], LoginCancelled)


def test_a_cancel_after_the_callback_does_not_overwrite_it(server):
    """The callback arrived; a /cancel comes before the waiting login wakes: the sign-in stands."""
    assert get(server, f"/auth/callback?code=abc123&state={STATE}").status_code == 200
    assert get(server, "/cancel").status_code == 200
    assert server.wait(1).code == "abc123"


def test_cancel_is_answered_before_the_login_stops(server):
    """The cancelled login may end its process at once; the newer one waits for the port only
    if its /cancel was answered (tests/test_login_remote.py::test_stale_oauth_hub_login_gives_way)."""
    client = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    answered_first: list[bool] = []
    cancel = server.cancel

    def cancel_and_check(reason: str) -> None:  # runs in the server's thread, at the moment the login is stopped
        try:
            answered_first.append(client.recv(1, socket.MSG_PEEK) == b"H")
        except TimeoutError:
            answered_first.append(False)
        cancel(reason)

    server.cancel = cancel_and_check
    with client:
        client.sendall(f"GET /cancel HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode())
        with pytest.raises(LoginCancelled):
            server.wait(10)
    assert answered_first == [True]


def test_timeout_says_to_run_again():
    srv = CallbackServer(path="/cb", state=STATE, ports=[free_port()], login_hint="oauth-hub login example")
    with srv:
        with pytest.raises(LoginTimeout) as info:
            srv.wait(1.2)
    assert "oauth-hub login example" in str(info.value)
    assert "again" in str(info.value)


def test_countdown_ticks():
    ticks: list[float] = []
    srv = CallbackServer(path="/cb", state=STATE, ports=[free_port()])
    with srv, pytest.raises(LoginTimeout):
        srv.wait(2.5, tick=ticks.append)
    assert len(ticks) >= 2
    assert ticks == sorted(ticks, reverse=True)


def test_foreign_host_header_and_other_methods_are_refused(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", f"/auth/callback?code=x&state={STATE}", headers={"Host": "evil.example:80"})
    assert conn.getresponse().status == 400
    conn.close()
    response = requests.post(f"http://127.0.0.1:{server.port}/auth/callback?code=x&state={STATE}", timeout=5)
    assert response.status_code == 405
    thread, box = wait_async(server, timeout=0.5)
    thread.join(3)
    assert isinstance(box["error"], LoginTimeout), "neither request may complete the login"


def test_localhost_host_header_is_accepted(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", f"/auth/callback?code=viahost&state={STATE}", headers={"Host": f"localhost:{server.port}"})
    assert conn.getresponse().status == 200
    assert server.wait(1).code == "viahost"


def test_close_releases_the_port():
    port = free_port()
    srv = CallbackServer(path="/cb", state=STATE, ports=[port])
    srv.start()
    srv.close()
    with socket.socket() as sock:
        sock.connect_ex(("127.0.0.1", port))
    again = CallbackServer(path="/cb", state=STATE, ports=[port])
    assert again.start() == port
    again.close()


def test_busy_port_falls_back_to_registered_port():
    first, second = free_port(), free_port()
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", first))
    blocker.listen(1)
    try:
        srv = CallbackServer(path="/cb", state=STATE, ports=[first, second], cancel_attempts=2, cancel_interval=0.05)
        assert srv.start() == second
        assert any(str(first) in n for n in srv.notices)
        srv.close()
    finally:
        blocker.close()


def test_all_ports_busy_is_a_clear_error():
    port = free_port()
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", port))
    blocker.listen(1)
    try:
        srv = CallbackServer(path="/cb", state=STATE, ports=[port], login_hint="oauth-hub login example",
                             cancel_attempts=2, cancel_interval=0.05)
        with pytest.raises(PortBusy) as info:
            srv.start()
    finally:
        blocker.close()
    message = str(info.value)
    assert str(port) in message and "in use" in message and "\n" not in message


def test_stale_login_gives_way_on_cancel():
    port = free_port()
    stale = CallbackServer(path="/cb", state="old", ports=[port])
    stale.start()
    thread, box = wait_async(stale, timeout=10)
    fresh = CallbackServer(path="/cb", state="new", ports=[port], cancel_interval=0.1)
    try:
        assert fresh.start() == port
        thread.join(5)
        assert isinstance(box["error"], LoginCancelled)
    finally:
        stale.close()
        fresh.close()


def test_a_callback_the_login_refuses_gets_a_page_saying_why():
    """The validate check runs before the page is written: the browser never says "signed in"."""
    seen: list[dict] = []

    def validate(params: dict) -> None:
        seen.append(params)
        if params.get("iss") != "https://id.example":
            raise LoginError("The sign-in came back from <evil>, so it was refused. Run `oauth-hub login x` again.")

    srv = CallbackServer(path="/cb", state=STATE, ports=[free_port()], provider="Example", validate=validate)
    with srv:
        forged = get(srv, "/cb?code=abc&state=wrong&iss=https://id.example")  # wrong state: never validated
        assert forged.status_code == 400 and seen == []
        refused = get(srv, f"/cb?code=abc&state={STATE}&iss=https://evil.example")
        assert refused.status_code == 400
        assert "signed in" not in refused.text
        assert "came back from &lt;evil&gt;, so it was refused." in refused.text  # escaped, like every echo
        with pytest.raises(LoginError, match="came back from <evil>"):
            srv.wait(1)
        assert [p["iss"] for p in seen] == ["https://evil.example"]
        assert get(srv, f"/cb?code=abc&state={STATE}&iss=https://id.example").status_code == 409  # finished


def test_a_callback_the_login_accepts_is_answered_as_before():
    srv = CallbackServer(path="/cb", state=STATE, ports=[free_port()], provider="Example",
                         validate=lambda params: None)
    with srv:
        assert get(srv, f"/cb?code=abc&state={STATE}").status_code == 200
        assert srv.wait(1).code == "abc"
