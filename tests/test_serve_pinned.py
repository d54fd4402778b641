"""Behaviours of `oauth-hub serve` that a rewrite must keep, pinned one by one.

Each test kills a mutant that the rest of the suite let through (scripts/mutation_check.py):
the local key compared whole, in constant time; a hand-edited short key replaced; dot
segments refused however they are spelt; cookies and hop-by-hop headers kept from the
upstream; upstream cookies kept from the client; the request body capped.
"""

from __future__ import annotations

import http.client
import json

import pytest
import requests

from oauth_core import serve as hub_serve
from oauth_core.gateway import server as gateway_server
from oauth_core.testing.seed import seed_sign_in

from .conftest import write_config
from .test_serve import KEY, auth, codex_models, seed_models, server  # noqa: F401 - server is a fixture

CODEX_MODELS = "/backend-api/codex/models"


@pytest.fixture
def signed_in(server, chatgpt_home, subscription):  # noqa: F811 - the imported fixture
    seed_sign_in("chatgpt", subscription.mint_tokens(), home=chatgpt_home)
    seed_models("chatgpt", chatgpt_home)
    return subscription


def raw(server, method: str, path: str, headers: dict[str, str], body: bytes | None = None):  # noqa: F811
    """A request sent exactly as written: no client-side path normalisation."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    conn.putheader("Host", f"127.0.0.1:{server.port}")
    for name, value in headers.items():
        conn.putheader(name, value)
    conn.endheaders(body)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response, data


@pytest.mark.parametrize("presented", [KEY[:-1], KEY[:8], KEY + "x", "", KEY.upper()])
def test_only_the_whole_local_key_is_accepted(server, signed_in, presented):  # noqa: F811
    before = len(signed_in.requests)
    for headers in ({"Authorization": f"Bearer {presented}"}, {"x-api-key": presented}):
        response = codex_models(server, headers=headers)
        assert response.status_code == 401, (presented, headers)
    assert len(signed_in.requests) == before


def test_a_short_hand_edited_stable_key_is_replaced(home):
    home.mkdir(mode=0o700, parents=True)
    (home / "serve_key").write_text("short\n")
    key = hub_serve.stable_key(home)
    assert len(key) >= 32 and key != "short"
    assert (home / "serve_key").read_text().strip() == key


@pytest.mark.parametrize("path", [
    "/chatgpt/%2e%2e/x", "/chatgpt/%2E%2E/x", "/chatgpt/a/%2e/b", "/chatgpt/..%2f/x", "/chatgpt/a\\..\\b",
    "/chatgpt/%2e%2e%5cx",
])
def test_dot_segments_are_refused_however_they_are_spelt(server, signed_in, path):  # noqa: F811
    before = len(signed_in.requests)
    response, data = raw(server, "GET", path, auth())
    assert response.status == 400 and json.loads(data)["error"]["type"] == "bad_path"
    assert len(signed_in.requests) == before


def test_cookies_and_hop_by_hop_headers_stay_here(server, signed_in):  # noqa: F811
    response, _ = raw(server, "GET", "/chatgpt/models?client_version=1", {
        **auth(), "Cookie": "session=local-secret", "Connection": "keep-alive, X-Local-Hop",
        "X-Local-Hop": "local-only", "Proxy-Authorization": "Basic bG9jYWw6c2VjcmV0", "TE": "trailers",
        "X-Kept": "yes",
    })
    assert response.status == 200
    seen = signed_in.requests_to(CODEX_MODELS)[-1].headers
    assert seen["x-kept"] == "yes"
    for name in ("cookie", "x-local-hop", "proxy-authorization", "te"):
        assert name not in seen, name


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_upstream_cookies_reach_neither_the_client_nor_the_next_request(server, signed_in, chatgpt_home,  # noqa: F811
                                                                         host):
    # Under a host name, not only an IP address: a cookie jar keeps no cookie of an IP address anyway.
    write_config(chatgpt_home, "chatgpt", issuer=signed_in.issuer, api_base=signed_in.api_base,
                 chatgpt_base=signed_in.chatgpt_base.replace("127.0.0.1", host))
    signed_in.fail_next(CODEX_MODELS, 200, {"models": []}, headers={"Set-Cookie": "sid=upstream-secret; Path=/"})
    first = codex_models(server, headers=auth())
    assert first.status_code == 200 and "set-cookie" not in {k.lower() for k in first.headers}
    assert codex_models(server, headers=auth()).status_code == 200
    assert "cookie" not in signed_in.requests_to(CODEX_MODELS)[-1].headers


@pytest.fixture
def capped(home, monkeypatch):
    """A server whose request-body cap is 1 KiB, so the cap can be tested without 64 MiB uploads."""
    monkeypatch.setattr(gateway_server, "MAX_BODY", 1024)
    srv = hub_serve.make_server(port=0, key=KEY, home=home)
    hub_serve.start_in_thread(srv)
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_over_the_cap_is_refused(capped, chatgpt_home, subscription, chunked):
    seed_sign_in("chatgpt", subscription.mint_tokens(), home=chatgpt_home)
    before = len(subscription.requests)
    body = b'{"input": "' + b"x" * 1200 + b'"}'
    conn = http.client.HTTPConnection("127.0.0.1", capped.port, timeout=10)
    conn.request("POST", "/chatgpt/responses", body=iter([body[:600], body[600:]]) if chunked else body,
                 encode_chunked=chunked,
                 headers={**auth(), "Content-Type": "application/json", "Host": f"127.0.0.1:{capped.port}"})
    response = conn.getresponse()
    assert response.status == 413
    conn.close()
    assert len(subscription.requests) == before


def test_a_body_under_the_cap_is_forwarded(capped, chatgpt_home, subscription):
    seed_sign_in("chatgpt", subscription.mint_tokens(), home=chatgpt_home)
    body = json.dumps({"model": "gpt-5", "input": "hi" * 100, "stream": False}).encode()
    response = requests.post(f"{capped.base_url}/chatgpt/responses", data=body, timeout=10,
                             headers={**auth(), "Content-Type": "application/json"})
    assert response.status_code != 413
    assert "hi" * 100 in json.dumps(subscription.requests_to("/backend-api/codex/responses")[-1].json)
