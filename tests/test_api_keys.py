"""When an API key is obtained: at login, and after a 401 on the key; never on a refresh.

Tools are handed the key once (llm's key store, a LiteLLM proxy started with it): a key
that changed on every refresh would leave their copy stale. A key an API refuses is
replaced with the tokens at hand first; the refresh token, which rotates and whose reuse
ends the sign-in, is spent only when that does not work.
"""

from __future__ import annotations

import json
import time

import requests

from oauth_core.auth import OAuthHubAuth
from oauth_core.testing.seed import seed_sign_in

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
REFRESH = "refresh_token"


def stored(home) -> dict:
    return json.loads((home / "chatgpt_oauth.json").read_text())


def grant_types(idp) -> list[str]:
    return [(r.form or r.json or {}).get("grant_type") for r in idp.requests_to("/oauth/token")]


def test_the_key_is_obtained_at_login_and_kept_across_refreshes(cli, chatgpt_home, idp):
    assert cli("login", "chatgpt").returncode == 0
    first = stored(chatgpt_home)
    assert first["api_key"] in idp.issued_api_keys
    assert grant_types(idp) == ["authorization_code", EXCHANGE]

    result = cli("refresh", "chatgpt")  # a new ID token comes back, yet the key stays
    assert result.returncode == 0, result.stderr
    after = stored(chatgpt_home)
    assert after["id_token"] != first["id_token"] and after["access_token"] != first["access_token"]
    assert after["api_key"] == first["api_key"]
    assert after["api_key_obtained_at"] == first["api_key_obtained_at"]
    assert grant_types(idp) == ["authorization_code", EXCHANGE, REFRESH]


def test_a_refused_key_is_replaced_before_the_refresh_token_is_spent(chatgpt_home, idp):
    seeded = seed_sign_in("chatgpt", idp.mint_tokens(), home=chatgpt_home, api_key="sk-proj-revoked")
    response = requests.get(f"{idp.api_base}/models", auth=OAuthHubAuth("chatgpt", home=chatgpt_home), timeout=5)
    assert response.status_code == 200, response.text
    calls = idp.requests_to("/v1/models")
    assert [c.status for c in calls] == [401, 200]
    after = stored(chatgpt_home)
    assert after["api_key"] != "sk-proj-revoked" and after["api_key"] in idp.issued_api_keys
    assert calls[1].headers["authorization"] == f"Bearer {after['api_key']}"
    assert grant_types(idp) == [EXCHANGE]  # no refresh: the rotating refresh token is untouched
    assert after["refresh_token"] == seeded.refresh_token


def test_the_refresh_token_is_spent_only_when_a_new_key_needs_new_tokens(chatgpt_home, idp):
    seeded = seed_sign_in("chatgpt", idp.mint_tokens(), home=chatgpt_home, api_key="sk-proj-revoked")
    # The exchange with the stored ID token is refused once (say, it is too old); the
    # tokens are refreshed and the exchange is made with the new ID token.
    idp.fail_next("/oauth/token", 400, {"error": "invalid_grant", "error_description": "id_token too old"})
    response = requests.get(f"{idp.api_base}/models", auth=OAuthHubAuth("chatgpt", home=chatgpt_home), timeout=5)
    assert response.status_code == 200, response.text
    assert grant_types(idp) == [EXCHANGE, REFRESH, EXCHANGE]
    after = stored(chatgpt_home)
    assert after["refresh_token"] != seeded.refresh_token and after["api_key"] in idp.issued_api_keys
    exchanges = [r for r in idp.requests_to("/oauth/token") if (r.form or {}).get("grant_type") == EXCHANGE]
    assert exchanges[0].form["subject_token"] == seeded.id_token
    assert exchanges[1].form["subject_token"] == after["id_token"] != seeded.id_token


def test_another_process_that_renewed_the_key_first_is_reused(chatgpt_home, idp):
    seed_sign_in("chatgpt", idp.mint_tokens(), home=chatgpt_home, api_key="sk-proj-revoked")
    auth = OAuthHubAuth("chatgpt", home=chatgpt_home)
    request = requests.Request("GET", f"{idp.api_base}/models").prepare()
    auth(request)  # this "tool" was given the old key
    idp.issued_api_keys.add(fresh := "sk-proj-renewed-elsewhere")
    record = stored(chatgpt_home)
    record["api_key"] = fresh
    (chatgpt_home / "chatgpt_oauth.json").write_text(json.dumps(record))
    with requests.Session() as session:
        response = session.send(request, timeout=5)
    assert response.status_code == 200
    assert idp.requests_to("/v1/models")[-1].headers["authorization"] == f"Bearer {fresh}"
    assert grant_types(idp) == []


def test_serve_renews_a_refused_key(chatgpt_home, idp):
    from oauth_core import serve

    seed_sign_in("chatgpt", idp.mint_tokens(), home=chatgpt_home, api_key="sk-proj-revoked")
    srv = serve.make_server(port=0, key="local-key-for-tests-0123456789abcdef", home=chatgpt_home)
    serve.start_in_thread(srv)
    try:
        response = requests.get(f"{srv.base_url}/chatgpt/models", timeout=10,
                                headers={"Authorization": "Bearer local-key-for-tests-0123456789abcdef"})
    finally:
        srv.shutdown()
        srv.server_close()
    assert response.status_code == 200, response.text
    assert [c.status for c in idp.requests_to("/v1/models")] == [401, 200]
    assert grant_types(idp) == [EXCHANGE]
    assert stored(chatgpt_home)["api_key"] in idp.issued_api_keys


def test_a_subscription_401_still_refreshes(chatgpt_home, subscription):
    idp = subscription
    seed_sign_in("chatgpt", idp.mint_tokens(), home=chatgpt_home, expires_at=time.time() + 3000)
    idp.expire_access_tokens()
    response = requests.get(f"{idp.chatgpt_base}/models", params={"client_version": "0.171.0"},
                            auth=OAuthHubAuth("chatgpt", home=chatgpt_home), timeout=5)
    assert response.status_code == 200
    assert grant_types(idp) == [REFRESH]
