"""The server figures of issue 12, each shown by counts (never by how long something took).

- a burst of new connections is accepted while the server is busy (the listen backlog);
- 200 concurrent requests, 150 plain and 50 streamed, all succeed;
- 300 half-open connections hold no thread each and are closed after the header deadline;
- differing ``Content-Length`` headers, and ``Content-Length`` with ``Transfer-Encoding``, get 400;
- a client that hangs up mid-stream makes the gateway close the upstream request, which the
  fake records while it is still silent (it would otherwise stay open for its whole stall).
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from oauth_core import serve as hub_serve
from oauth_core.testing.seed import seed_sign_in

from .test_serve import KEY, seed_models

SONNET = "claude-sonnet-4-20250514"


@pytest.fixture
def signed_in(chatgpt_home, claude_home, subscription, anthropic):
    """Both subscriptions signed in, models listed; the fakes answer at once."""
    anthropic.stream_delay = 0
    seed_sign_in("chatgpt", subscription.mint_tokens(), home=chatgpt_home)
    seed_models("chatgpt", chatgpt_home)
    seed_sign_in("claude_code", anthropic.mint_tokens(), home=claude_home)
    seed_models("claude_code", claude_home)
    return chatgpt_home


def start(home, **kwargs):
    server = hub_serve.make_server(port=0, key=KEY, home=home, **kwargs)
    hub_serve.start_in_thread(server)
    return server


@pytest.fixture
def server(signed_in):
    srv = start(signed_in)
    yield srv
    srv.shutdown()
    srv.server_close()


def raw_exchange(port: int, data: bytes, timeout: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
            if b"\r\n\r\n" in answer:
                break
        return answer


def wait_until(predicate, timeout: float = 20.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes (a bound, not a measurement)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


# -- a burst of connections --------------------------------------------------------------------


def test_a_burst_of_64_connections_is_accepted_while_the_server_is_busy(server):
    """With socketserver's (or a bare listen()'s) backlog of 5, the kernel completes only ~6 handshakes while the
    server is not accepting; the others wait for SYN retransmits (1 s, 3 s, 7 s…)."""
    release = threading.Event()
    server._loop.call_soon_threadsafe(release.wait, 30)  # the event loop accepts nothing until released
    sockets = []
    try:
        for _ in range(64):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", server.port))
            sockets.append(sock)

        def connected() -> int:
            _, writable, _ = select.select([], sockets, [], 0)
            return sum(1 for s in writable if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0)

        wait_until(lambda: connected() == 64, timeout=5)
        assert connected() == 64
    finally:
        release.set()
        for sock in sockets:
            sock.close()


def test_64_new_connections_at_once_all_get_answers(server, subscription):
    before = len(subscription.requests_to("/backend-api/codex/models"))

    def one(_: int) -> int:
        with requests.Session() as session:  # a new connection each
            return session.get(f"{server.base_url}/chatgpt/models", params={"client_version": "1"},
                               headers={"Authorization": f"Bearer {KEY}"}, timeout=(10, 60)).status_code

    with ThreadPoolExecutor(64) as pool:
        statuses = list(pool.map(one, range(64)))
    assert statuses == [200] * 64
    assert len(subscription.requests_to("/backend-api/codex/models")) - before == 64


def test_200_concurrent_requests_150_plain_50_streamed_all_succeed(server, subscription, anthropic):
    plain_before = len(subscription.requests_to("/backend-api/codex/models"))
    streams_before = len(anthropic.finished_streams)
    body = {"model": f"claude_code/{SONNET}", "max_tokens": 16, "stream": True,
            "messages": [{"role": "user", "content": "ping"}]}

    def plain(_: int) -> bool:
        response = requests.get(f"{server.base_url}/chatgpt/models", params={"client_version": "1"},
                                headers={"Authorization": f"Bearer {KEY}"}, timeout=(10, 120))
        return response.status_code == 200 and response.json()["models"][0]["slug"] == "gpt-5"

    def streamed(_: int) -> bool:
        response = requests.post(f"{server.base_url}/v1/messages", json=body, timeout=(10, 120),
                                 headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"})
        datas = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
        return response.status_code == 200 and datas[-1] == {"type": "message_stop"}

    with ThreadPoolExecutor(200) as pool:
        results = [pool.submit(plain if i % 4 else streamed, i) for i in range(200)]
        outcomes = [r.result() for r in results]
    assert outcomes.count(True) == 200
    assert len(subscription.requests_to("/backend-api/codex/models")) - plain_before == 150
    assert len(anthropic.finished_streams) - streams_before == 50


# -- half-open connections ------------------------------------------------------------------------


def test_300_half_open_connections_hold_no_threads_and_are_closed_after_the_header_deadline(signed_in, subscription):
    server = start(signed_in, header_timeout=1.0)
    upstream_before = len(subscription.requests_to("/backend-api/codex/models"))
    sockets = []
    try:
        threads_before = threading.active_count()
        for _ in range(300):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            sock.sendall(f"GET /chatgpt/models HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nX-Slow: ".encode())
            sockets.append(sock)
        # A real client is still served meanwhile.
        ok = requests.get(f"{server.base_url}/chatgpt/models", params={"client_version": "1"},
                          headers={"Authorization": f"Bearer {KEY}"}, timeout=10)
        assert ok.status_code == 200
        assert threading.active_count() - threads_before < 10  # not one thread per connection

        open_ = set(sockets)

        def closed_by_server() -> int:
            readable, _, _ = select.select(list(open_), [], [], 0)
            for sock in readable:
                try:
                    if sock.recv(4096) == b"":
                        open_.discard(sock)
                except OSError:
                    open_.discard(sock)
            return 300 - len(open_)

        wait_until(lambda: closed_by_server() == 300, timeout=30)
        assert closed_by_server() == 300
        assert len(subscription.requests_to("/backend-api/codex/models")) - upstream_before == 1  # the real one
    finally:
        for sock in sockets:
            sock.close()
        server.shutdown()
        server.server_close()


# -- ambiguous framing --------------------------------------------------------------------------------


@pytest.mark.parametrize("framing", [
    b"Content-Length: 5\r\nContent-Length: 50\r\n",
    b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
])
def test_ambiguous_request_framing_is_refused(server, anthropic, framing):
    before = len(anthropic.requests)
    request = (b"POST /claude_code/v1/messages HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nx-api-key: %s\r\n%s\r\n"
               b"5\r\nhello\r\n0\r\n\r\n" % (server.port, KEY.encode(), framing))
    answer = raw_exchange(server.port, request)
    assert answer.split(b"\r\n", 1)[0].split(b" ")[1] == b"400", answer[:200]
    assert len(anthropic.requests) == before


# -- a client that leaves ----------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["v1", "raw"])
def test_a_client_that_hangs_up_mid_stream_cancels_the_upstream_request(server, anthropic, route):
    anthropic.stream_stall = 60  # after its first delta the upstream goes silent for a minute
    if route == "v1":
        last = b'"delta":{"content":"p"}'  # the first delta, in the caller's dialect: the stall follows it
        path, body = "/v1/chat/completions", {"model": f"claude_code/{SONNET}", "stream": True,
                                              "messages": [{"role": "user", "content": "ping"}]}
    else:
        last = b'"text_delta", "text": "p"'
        path, body = "/claude_code/v1/messages", {"model": SONNET, "max_tokens": 16, "stream": True,
                                                  "messages": [{"role": "user", "content": "ping"}]}
    payload = json.dumps(body).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n"
                     b"anthropic-version: 2023-06-01\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                     % (path.encode(), server.port, KEY.encode(), len(payload), payload))
        received = b""
        while last not in received:  # everything before the stall has arrived: nothing more is being written
            chunk = sock.recv(65536)
            assert chunk, received
            received += chunk
    # The client is gone. The upstream must see its request closed long before its stall ends.
    assert wait_until(lambda: anthropic.aborted_streams == ["/v1/messages"], timeout=20), anthropic.aborted_streams
    assert anthropic.finished_streams == []
