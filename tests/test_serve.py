"""`oauth-hub serve` against the fake OpenAI and Anthropic servers, over real sockets.

The server binds 127.0.0.1 on port 0 (a free port); tokens come from `seed_sign_in`,
model entries from the providers' own `list_models` against the fakes, as a login
writes them.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from pathlib import Path

import pytest
import requests

from oauth_core import serve as hub_serve
from oauth_core.http import HttpClient
from oauth_core.login import build_model_entries, write_model_entries
from oauth_core.provider import Provider
from oauth_core.store import Store
from oauth_core.testing.fake_anthropic import CLAUDE_CODE_SYSTEM_PREFIX
from oauth_core.testing.seed import seed_sign_in
from oauth_core.tokens import load_credentials

KEY = "local-key-for-tests-0123456789abcdef"


def seed_models(provider: str, home: Path) -> dict:
    """List the models through the provider against the fake and store them, as a login does."""
    store = Store(home)
    loaded = Provider.load(provider, store)
    credentials = load_credentials(provider, store)
    entries = build_model_entries(loaded, HttpClient(), credentials)
    write_model_entries(store.models_path(provider), entries, loaded.settings["oauth_source"])
    return entries


@pytest.fixture
def server(home):
    srv = hub_serve.make_server(port=0, key=KEY, home=home)
    hub_serve.start_in_thread(srv)
    yield srv
    srv.shutdown()
    srv.server_close()


def auth(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def codex_models(server, **kwargs) -> requests.Response:
    return requests.get(f"{server.base_url}/chatgpt/models", params={"client_version": "0.1.0"}, timeout=10,
                        **kwargs)


# -- credentials are injected, the local key is not ------------------------------------------


def test_subscription_request_gets_fresh_bearer_and_account_header(server, chatgpt_home, subscription):
    seeded = seed_sign_in("chatgpt", subscription.mint_tokens(), home=chatgpt_home)
    seed_models("chatgpt", chatgpt_home)

    response = codex_models(server, headers={**auth(), "X-Client-Header": "kept"})

    assert response.status_code == 200, response.text
    assert [m["slug"] for m in response.json()["models"]][:1] == ["gpt-5"]
    seen = subscription.requests_to("/backend-api/codex/models")[-1]
    assert seen.headers["authorization"] == f"Bearer {seeded.access_token}"
    assert seen.headers["chatgpt-account-id"] == subscription.account_id
    assert seen.headers["originator"] == "codex_cli_rs"
    assert seen.headers["x-client-header"] == "kept"
    assert seen.query == {"client_version": "0.1.0"}
    assert KEY not in json.dumps(seen.headers)


def test_api_key_account_goes_to_the_api_with_the_key(server, chatgpt_home, idp):
    idp.issued_api_keys.add("sk-test-api-key-1")
    seed_sign_in("chatgpt", idp.mint_tokens(), home=chatgpt_home, api_key="sk-test-api-key-1")

    response = requests.get(f"{server.base_url}/chatgpt/models", headers=auth(), timeout=10)

    assert response.status_code == 200, response.text
    assert {m["id"] for m in response.json()["data"]} >= {"gpt-4o"}
    seen = idp.requests_to("/v1/models")[-1]
    assert seen.headers["authorization"] == "Bearer sk-test-api-key-1"


def test_x_api_key_is_accepted_as_the_local_key_and_replaced(server, claude_home, anthropic):
    seeded = seed_sign_in("claude_code", anthropic.mint_tokens(), home=claude_home)
    response = requests.get(f"{server.base_url}/claude_code/v1/models", timeout=10,
                            headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"})
    assert response.status_code == 200, response.text
    seen = anthropic.requests_to("/v1/models")[-1]
    assert seen.headers["authorization"] == f"Bearer {seeded.access_token}"
    assert seen.headers["anthropic-beta"] == "claude-code-20250219,oauth-2025-04-20"
    assert "x-api-key" not in seen.headers


# -- refresh ------------------------------------------------------------------------------------


def test_expired_token_is_refreshed_before_forwarding(server, chatgpt_home, subscription):
    seeded = seed_sign_in("chatgpt", subscription.mint_tokens(), home=chatgpt_home)
    seed_models("chatgpt", chatgpt_home)
    seed_sign_in("chatgpt", subscription.mint_tokens(), home=chatgpt_home, expires_at=time.time() - 60)

    response = codex_models(server, headers=auth())

    assert response.status_code == 200, response.text
    assert subscription.count("/oauth/token", "refresh_token") == 1
    fresh = load_credentials("chatgpt", Store(chatgpt_home))
    assert fresh.access_token != seeded.access_token
    assert subscription.requests_to("/backend-api/codex/models")[-1].headers["authorization"] == \
        f"Bearer {fresh.access_token}"


def test_a_401_refreshes_once_and_retries_once(server, chatgpt_home, subscription):
    seed_sign_in("chatgpt", subscription.mint_tokens(), home=chatgpt_home)
    seed_models("chatgpt", chatgpt_home)
    before = len(subscription.requests_to("/backend-api/codex/models"))
    subscription.expire_access_tokens()  # still valid by `exp`: only the server's 401 tells

    response = codex_models(server, headers=auth())

    assert response.status_code == 200, response.text
    calls = subscription.requests_to("/backend-api/codex/models")[before:]
    assert [c.status for c in calls] == [401, 200]
    assert calls[0].headers["authorization"] != calls[1].headers["authorization"]
    assert subscription.count("/oauth/token", "refresh_token") == 1


def test_a_second_401_is_passed_to_the_client(server, chatgpt_home, subscription):
    seed_sign_in("chatgpt", subscription.mint_tokens(), home=chatgpt_home)
    seed_models("chatgpt", chatgpt_home)
    before = len(subscription.requests_to("/backend-api/codex/models"))
    subscription.fail_next("/backend-api/codex/models", 401, times=2)

    response = codex_models(server, headers=auth())

    assert response.status_code == 401
    assert len(subscription.requests_to("/backend-api/codex/models")) - before == 2


# -- streaming ----------------------------------------------------------------------------------


def test_sse_is_relayed_chunk_by_chunk(server, claude_home, anthropic):
    anthropic.stream_hold = threading.Event()  # the upstream stops after its first events until released
    anthropic.stream_hold_timeout = 10
    seed_sign_in("claude_code", anthropic.mint_tokens(), home=claude_home)
    body = {"model": anthropic.models[0]["id"], "max_tokens": 16, "stream": True,
            "messages": [{"role": "user", "content": "ping"}]}

    response = requests.post(f"{server.base_url}/claude_code/v1/messages", json=body, stream=True, timeout=10,
                             headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    pieces = response.iter_content(chunk_size=None)
    data = next(pieces)
    # The first event reached the client through serve while the upstream still held the rest.
    assert data.startswith(b"event: message_start")
    assert anthropic.stream_held.wait(10) and not anthropic.stream_released.is_set()  # it holds just after sending
    anthropic.stream_hold.set()
    for piece in pieces:
        data += piece

    assert b"event: message_stop" in data and data.count(b"event: content_block_delta") == 3
    text = "".join(json.loads(line[6:])["delta"]["text"] for line in data.decode().splitlines()
                   if line.startswith("data: ") and '"text_delta"' in line)
    assert text == anthropic.reply_text


def test_requests_without_the_local_key_are_refused(server, chatgpt_home, subscription):
    seed_sign_in("chatgpt", subscription.mint_tokens(), home=chatgpt_home)
    seed_models("chatgpt", chatgpt_home)
    before = len(subscription.requests)

    missing = codex_models(server)
    wrong = codex_models(server, headers=auth("not-the-key"))
    wrong_x = codex_models(server, headers={"x-api-key": "not-the-key"})

    for response in (missing, wrong, wrong_x):
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "invalid_local_key"
    assert len(subscription.requests) == before  # nothing reached the upstream


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1:1", "localhost"])
def test_foreign_host_headers_are_refused(server, chatgpt_home, subscription, host):
    seed_sign_in("chatgpt", subscription.mint_tokens(), home=chatgpt_home)
    before = len(subscription.requests)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.putrequest("GET", "/chatgpt/models?client_version=0.1.0", skip_host=True)
    conn.putheader("Host", host.format(port=server.port))
    conn.putheader("Authorization", f"Bearer {KEY}")
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 400
    assert json.loads(response.read())["error"]["type"] == "bad_host"
    conn.close()
    assert len(subscription.requests) == before


def test_localhost_with_the_right_port_is_accepted(server, chatgpt_home, subscription):
    seed_sign_in("chatgpt", subscription.mint_tokens(), home=chatgpt_home)
    seed_models("chatgpt", chatgpt_home)
    response = requests.get(f"http://localhost:{server.port}/chatgpt/models", params={"client_version": "1"},
                            headers=auth(), timeout=10)
    assert response.status_code == 200


def test_unknown_provider_and_missing_sign_in_and_dot_segments(server, home):
    unknown = requests.get(f"{server.base_url}/nope/models", headers=auth(), timeout=10)
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "unknown_provider"
    signed_out = requests.get(f"{server.base_url}/chatgpt/models", headers=auth(), timeout=10)
    # 401 (a retry cannot fix it), told apart from a wrong local key by its type and message.
    assert signed_out.status_code == 401 and "oauth-hub login chatgpt" in signed_out.json()["error"]["message"]
    assert signed_out.json()["error"]["type"] == "gateway_error"
    sneaky = requests.get(f"{server.base_url}/chatgpt/%2e%2e/x", headers=auth(), timeout=10)
    assert sneaky.status_code == 400


def test_only_loopback_addresses_are_allowed(home):
    with pytest.raises(hub_serve.ServeError, match="loopback only"):
        hub_serve.make_server(host="0.0.0.0", port=0, home=home)  # noqa: S104 - the point of the test


def test_busy_port_is_a_one_line_error(home):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        with pytest.raises(hub_serve.ServeError, match=r"--port N"):
            hub_serve.make_server(port=holder.getsockname()[1], home=home)
    finally:
        holder.close()


def test_stable_key_is_private_and_stays_the_same(home):
    first = hub_serve.stable_key(home)
    assert len(first) >= 32
    assert hub_serve.stable_key(home) == first
    assert (home / "serve_key").stat().st_mode & 0o777 == 0o600
    assert hub_serve.new_key() != hub_serve.new_key()


def test_routes_name_where_each_provider_forwards(server, chatgpt_home, subscription):
    seed_sign_in("chatgpt", subscription.mint_tokens(), home=chatgpt_home)
    seed_models("chatgpt", chatgpt_home)
    (row,) = server.routes()
    assert row["url"] == f"{server.base_url}/chatgpt"
    assert row["upstream"] == subscription.chatgpt_base
    assert row["mode"] == "access_token"


def test_a_post_body_is_sent_again_on_the_retry(server, claude_home, anthropic):
    seed_sign_in("claude_code", anthropic.mint_tokens(), home=claude_home)
    anthropic.expire_access_tokens()
    body = {"model": anthropic.models[0]["id"], "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}

    response = requests.post(f"{server.base_url}/claude_code/v1/messages", json=body, timeout=10,
                             headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"})

    assert response.status_code == 200, response.text
    assert response.json()["content"][0]["text"] == anthropic.reply_text
    calls = anthropic.requests_to("/v1/messages")
    assert [c.status for c in calls] == [401, 200]
    assert calls[0].json == calls[1].json == {**body, "system": [{"type": "text", "text": CLAUDE_CODE_SYSTEM_PREFIX}]}
    assert anthropic.count(anthropic.token_url, "refresh_token") == 1


def test_chunked_request_bodies_are_forwarded_with_a_length(server, claude_home, anthropic):
    """The upstreams want Content-Length (the fakes answer 411 to chunked uploads)."""
    seed_sign_in("claude_code", anthropic.mint_tokens(), home=claude_home)
    body = json.dumps({"model": anthropic.models[0]["id"], "max_tokens": 8,
                       "messages": [{"role": "user", "content": "hi"}]}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("POST", "/claude_code/v1/messages", body=iter([body[:10], body[10:]]), encode_chunked=True,
                 headers={"x-api-key": KEY, "anthropic-version": "2023-06-01", "Content-Type": "application/json",
                          "Host": f"127.0.0.1:{server.port}"})
    response = conn.getresponse()
    assert response.status == 200, response.read()
    assert json.loads(response.read())["type"] == "message"
    conn.close()
    seen = anthropic.requests_to("/v1/messages")[-1]
    assert "transfer-encoding" not in seen.headers and int(seen.headers["content-length"]) > len(body)
    assert seen.json["messages"] == [{"role": "user", "content": "hi"}]  # the whole body, plus the system line


def test_an_http_10_client_gets_the_stream_and_a_closed_connection(server, claude_home, anthropic):
    seed_sign_in("claude_code", anthropic.mint_tokens(), home=claude_home)
    body = json.dumps({"model": anthropic.models[0]["id"], "max_tokens": 8, "stream": True,
                       "messages": [{"role": "user", "content": "hi"}]}).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /claude_code/v1/messages HTTP/1.0\r\nHost: 127.0.0.1:%d\r\nx-api-key: %s\r\n"
                     b"anthropic-version: 2023-06-01\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                     % (server.port, KEY.encode(), len(body), body))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200") or head.startswith(b"HTTP/1.1 200")
    assert b"transfer-encoding" not in head.lower()
    assert rest.startswith(b"event: message_start") and rest.rstrip().endswith(b'{"type": "message_stop"}')
