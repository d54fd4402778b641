"""Tests of the FakeOpenAI test double itself.

The fake is only useful if it is as strict as auth.openai.com: each test here
drives it over real HTTP the way a client would and checks that the right
requests succeed and the wrong ones fail with the real error shape.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import secrets
import threading
import time
import webbrowser
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
import requests

from oauth_core.testing import browser
from oauth_core.testing.fake_openai import (
    AUTH_CLAIMS,
    ID_TOKEN_TYPE,
    PROFILE_CLAIMS,
    TOKEN_EXCHANGE_GRANT,
    FakeOpenAI,
)
from oauth_core.testing.jwt_keys import SigningKey

REDIRECT = "http://127.0.0.1:1455/auth/callback"
TIMEOUT = 5


# ---------------------------------------------------------------- helpers


def make_pkce() -> tuple[str, str]:
    verifier = base64.urlsafe_b64encode(secrets.token_bytes(64)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_params(fake: FakeOpenAI, challenge: str, **overrides: str | None) -> dict[str, str]:
    params: dict[str, Any] = {
        "response_type": "code",
        "client_id": fake.client_id,
        "redirect_uri": REDIRECT,
        "scope": "openid profile email offline_access api.connectors.read api.connectors.invoke",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "id_token_add_organizations": "true",
        "codex_cli_simplified_flow": "true",
        "state": "state-" + secrets.token_urlsafe(8),
        "originator": "codex_cli_rs",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def authorize(fake: FakeOpenAI, challenge: str, **overrides: str | None) -> requests.Response:
    return requests.get(
        fake.issuer + "/oauth/authorize",
        params=authorize_params(fake, challenge, **overrides),
        allow_redirects=False,
        timeout=TIMEOUT,
    )


def redirect_query(resp: requests.Response) -> dict[str, str]:
    assert resp.status_code == 302, resp.text
    location = resp.headers["Location"]
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def get_code(fake: FakeOpenAI, redirect_uri: str = REDIRECT) -> tuple[str, str]:
    verifier, challenge = make_pkce()
    query = redirect_query(authorize(fake, challenge, redirect_uri=redirect_uri))
    return query["code"], verifier


def token_form(fake: FakeOpenAI, data: dict[str, str]) -> requests.Response:
    return requests.post(fake.issuer + "/oauth/token", data=data, timeout=TIMEOUT)


def token_json(fake: FakeOpenAI, body: dict[str, Any]) -> requests.Response:
    return requests.post(fake.issuer + "/oauth/token", json=body, timeout=TIMEOUT)


def exchange(fake: FakeOpenAI, code: str, verifier: str, redirect_uri: str = REDIRECT) -> requests.Response:
    return token_form(
        fake,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": fake.client_id,
            "code_verifier": verifier,
        },
    )


def refresh(fake: FakeOpenAI, refresh_token: str, **extra: Any) -> requests.Response:
    body = {"client_id": fake.client_id, "grant_type": "refresh_token", "refresh_token": refresh_token}
    body.update(extra)
    return token_json(fake, body)


def api_key_exchange(fake: FakeOpenAI, id_token: str) -> requests.Response:
    return token_form(
        fake,
        {
            "grant_type": TOKEN_EXCHANGE_GRANT,
            "client_id": fake.client_id,
            "requested_token": "openai-api-key",
            "subject_token": id_token,
            "subject_token_type": ID_TOKEN_TYPE,
        },
    )


def codex_models(fake: FakeOpenAI, access_token: str | None, account: str | None, version: str | None = "0.1.0"):
    headers = {}
    if access_token is not None:
        headers["Authorization"] = f"Bearer {access_token}"
    if account is not None:
        headers["ChatGPT-Account-Id"] = account
    params = {"client_version": version} if version is not None else {}
    return requests.get(fake.chatgpt_base + "/models", params=params, headers=headers, timeout=TIMEOUT)


def oauth_error(resp: requests.Response) -> str:
    return resp.json()["error"]


def api_error_code(resp: requests.Response) -> str | None:
    return resp.json()["error"]["code"]


@pytest.fixture(scope="module")
def shared_key() -> SigningKey:
    return SigningKey()


@pytest.fixture
def fake(shared_key: SigningKey) -> Iterator[FakeOpenAI]:
    with FakeOpenAI(signing_key=shared_key) as server:
        yield server


# ---------------------------------------------------------------- authorization code + PKCE


def test_full_auth_code_flow_and_jwts_verify_against_jwks(fake: FakeOpenAI) -> None:
    verifier, challenge = make_pkce()
    params = authorize_params(fake, challenge)
    resp = requests.get(fake.issuer + "/oauth/authorize", params=params, allow_redirects=False, timeout=TIMEOUT)
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith(REDIRECT + "?")
    query = redirect_query(resp)
    assert query["state"] == params["state"]
    assert query["scope"] == params["scope"]

    resp = exchange(fake, query["code"], verifier)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Cache-Control"] == "no-store"
    tokens = resp.json()
    assert set(tokens) == {"id_token", "access_token", "refresh_token", "expires_in", "token_type", "scope"}
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 3600
    assert tokens["refresh_token"].startswith("rt_")

    jwks = jwt.PyJWKClient(fake.jwks_url)
    id_key = jwks.get_signing_key_from_jwt(tokens["id_token"])
    assert jwt.get_unverified_header(tokens["id_token"])["alg"] == "RS256"
    claims = jwt.decode(
        tokens["id_token"], id_key.key, algorithms=["RS256"], audience=fake.client_id, issuer=fake.issuer
    )
    assert claims["email"] == "user@example.com"
    assert claims["email_verified"] is True
    auth = claims[AUTH_CLAIMS]
    assert auth["chatgpt_account_id"] == "acct-fake-0001"
    assert auth["chatgpt_plan_type"] == "plus"
    assert auth["organization_id"] == "org-fake-0001"
    assert auth["project_id"] == "proj_fake-0001"
    assert auth["organizations"][0]["id"] == "org-fake-0001"
    assert claims["exp"] > claims["iat"]

    at_key = jwks.get_signing_key_from_jwt(tokens["access_token"])
    at = jwt.decode(
        tokens["access_token"],
        at_key.key,
        algorithms=["RS256"],
        audience="https://api.openai.com/v1",
        issuer=fake.issuer,
    )
    assert at["scp"] == ["openid", "profile", "email", "offline_access", "api.connectors.read", "api.connectors.invoke"]
    assert at[AUTH_CLAIMS]["chatgpt_account_id"] == "acct-fake-0001"
    assert at[PROFILE_CLAIMS]["email"] == "user@example.com"
    assert at["jti"]

    # A token signed by another fake's key must not verify here.
    with FakeOpenAI() as other:
        foreign = other.mint_tokens()["id_token"]
    with pytest.raises(jwt.PyJWKClientError):
        jwks.get_signing_key_from_jwt(foreign)


def test_discovery_documents(fake: FakeOpenAI) -> None:
    conf = requests.get(fake.issuer + "/.well-known/openid-configuration", timeout=TIMEOUT).json()
    assert conf["issuer"] == fake.issuer
    assert conf["authorization_endpoint"] == fake.issuer + "/oauth/authorize"
    assert conf["token_endpoint"] == fake.issuer + "/oauth/token"
    assert conf["revocation_endpoint"] == fake.issuer + "/oauth/revoke"
    assert conf["jwks_uri"] == fake.jwks_url
    assert conf["code_challenge_methods_supported"] == ["S256"]
    keys = requests.get(fake.jwks_url, timeout=TIMEOUT).json()["keys"]
    assert keys[0]["kty"] == "RSA" and keys[0]["kid"] == fake.key.kid


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1:8765/auth/callback",  # the seed README's wrong port range
        "http://127.0.0.1:1456/auth/callback",
        "http://127.0.0.1:1455/callback",
        "http://127.0.0.1:1455/auth/callback/",
        "https://127.0.0.1:1455/auth/callback",
        None,
    ],
)
def test_bad_redirect_uri_is_a_400_page_not_a_redirect(fake: FakeOpenAI, redirect_uri: str | None) -> None:
    _, challenge = make_pkce()
    resp = authorize(fake, challenge, redirect_uri=redirect_uri)
    assert resp.status_code == 400
    assert "Location" not in resp.headers
    assert resp.headers["Content-Type"].startswith("text/html")


def test_unknown_client_is_a_400_page(fake: FakeOpenAI) -> None:
    _, challenge = make_pkce()
    resp = authorize(fake, challenge, client_id="Iv1.5a92863aee9e4f61")
    assert resp.status_code == 400
    assert "Location" not in resp.headers


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1:1455/auth/callback",
        "http://localhost:1455/auth/callback",
        "http://127.0.0.1:1457/auth/callback",
        "http://localhost:1457/auth/callback",
    ],
)
def test_allowed_redirect_uris(fake: FakeOpenAI, redirect_uri: str) -> None:
    _, challenge = make_pkce()
    query = redirect_query(authorize(fake, challenge, redirect_uri=redirect_uri))
    assert "code" in query


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "S512"}, "invalid_request"),
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge": "tooshort"}, "invalid_request"),
        ({"code_challenge": "a" * 42 + "="}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": None}, "invalid_request"),
        ({"scope": None}, "invalid_request"),
        ({"scope": "openid profile email offline_access admin"}, "invalid_scope"),
        ({"scope": "profile email offline_access"}, "invalid_scope"),
        ({"scope": "openid profile email"}, "invalid_scope"),
        ({"scope": "openid profile email offline_access api.connectors.read"}, "invalid_scope"),
        # What Codex asked for before the connectors (and oauth-hub before it followed 0.171).
        ({"scope": "openid profile email offline_access"}, "invalid_scope"),
        ({"id_token_add_organizations": None}, "invalid_request"),
        ({"id_token_add_organizations": "false"}, "invalid_request"),
        ({"codex_cli_simplified_flow": None}, "invalid_request"),
        ({"originator": None}, "invalid_request"),
    ],
)
def test_authorize_rejections_redirect_with_error_and_state(
    fake: FakeOpenAI, overrides: dict[str, str | None], error: str
) -> None:
    _, challenge = make_pkce()
    resp = authorize(fake, challenge, state="s-123", **overrides)
    assert resp.headers["Location"].startswith(REDIRECT + "?")
    query = redirect_query(resp)
    assert query["error"] == error
    assert query["error_description"]
    assert query["state"] == "s-123"
    assert "code" not in query


def test_authorize_missing_state_is_invalid_request(fake: FakeOpenAI) -> None:
    _, challenge = make_pkce()
    query = redirect_query(authorize(fake, challenge, state=None))
    assert query["error"] == "invalid_request"
    assert "state" not in query


def test_authorize_repeated_parameter_is_invalid_request(fake: FakeOpenAI) -> None:
    _, challenge = make_pkce()
    params = list(authorize_params(fake, challenge).items()) + [("scope", "openid")]
    resp = requests.get(fake.issuer + "/oauth/authorize", params=params, allow_redirects=False, timeout=TIMEOUT)
    assert redirect_query(resp)["error"] == "invalid_request"


def test_authorize_accepts_connector_scopes_in_any_order(fake: FakeOpenAI) -> None:
    _, challenge = make_pkce()
    scope = "api.connectors.invoke openid offline_access email profile api.connectors.read"
    query = redirect_query(authorize(fake, challenge, scope=scope))
    assert query["code"] and query["scope"] == scope


def test_authorize_error_knob(fake: FakeOpenAI) -> None:
    fake.authorize_error = "access_denied"
    _, challenge = make_pkce()
    query = redirect_query(authorize(fake, challenge, state="xyz"))
    assert query == {"error": "access_denied", "error_description": query["error_description"], "state": "xyz"}


def test_exchange_rejects_bad_verifier(fake: FakeOpenAI) -> None:
    code, _ = get_code(fake)
    other_verifier, _ = make_pkce()
    resp = exchange(fake, code, other_verifier)
    assert resp.status_code == 400
    assert oauth_error(resp) == "invalid_grant"
    assert resp.json()["error_description"]


def test_exchange_rejects_malformed_and_missing_verifier(fake: FakeOpenAI) -> None:
    code, _ = get_code(fake)
    assert oauth_error(exchange(fake, code, "short")) == "invalid_grant"
    resp = token_form(
        fake, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": fake.client_id}
    )
    assert resp.status_code == 400 and oauth_error(resp) == "invalid_request"


def test_exchange_rejects_other_redirect_uri(fake: FakeOpenAI) -> None:
    code, verifier = get_code(fake)
    resp = exchange(fake, code, verifier, redirect_uri="http://localhost:1455/auth/callback")
    assert resp.status_code == 400 and oauth_error(resp) == "invalid_grant"
    # The failed attempt did not burn the code.
    assert exchange(fake, code, verifier).status_code == 200


def test_exchange_rejects_json_body(fake: FakeOpenAI) -> None:
    code, verifier = get_code(fake)
    resp = token_json(
        fake,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": fake.client_id,
            "code_verifier": verifier,
        },
    )
    assert resp.status_code == 400 and oauth_error(resp) == "invalid_request"


def test_exchange_rejects_wrong_client(fake: FakeOpenAI) -> None:
    code, verifier = get_code(fake)
    resp = token_form(
        fake,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": "someone-else",
            "code_verifier": verifier,
        },
    )
    assert resp.status_code == 401 and oauth_error(resp) == "invalid_client"


def test_reused_code_is_rejected_and_revokes_its_tokens(fake: FakeOpenAI) -> None:
    code, verifier = get_code(fake)
    tokens = exchange(fake, code, verifier).json()
    again = exchange(fake, code, verifier)
    assert again.status_code == 400 and oauth_error(again) == "invalid_grant"
    resp = refresh(fake, tokens["refresh_token"])
    assert resp.status_code == 401 and api_error_code(resp) == "refresh_token_invalidated"
    assert codex_models(fake, tokens["access_token"], fake.account_id).status_code == 401


def test_expired_code_is_rejected(fake: FakeOpenAI) -> None:
    code, verifier = get_code(fake)
    fake.clock_offset = fake.code_ttl + 1
    resp = exchange(fake, code, verifier)
    assert resp.status_code == 400 and oauth_error(resp) == "invalid_grant"


def test_token_endpoint_rejects_unknown_grant_and_content_type(fake: FakeOpenAI) -> None:
    resp = token_form(fake, {"grant_type": "password", "client_id": fake.client_id})
    assert resp.status_code == 400 and oauth_error(resp) == "unsupported_grant_type"
    resp = requests.post(
        fake.issuer + "/oauth/token",
        data=b"grant_type=authorization_code",
        headers={"Content-Type": "text/plain"},
        timeout=TIMEOUT,
    )
    assert resp.status_code == 400 and oauth_error(resp) == "invalid_request"
    resp = token_form(fake, {"client_id": fake.client_id})
    assert resp.status_code == 400 and oauth_error(resp) == "invalid_request"


# ---------------------------------------------------------------- refresh


def test_refresh_rotates_and_detects_reuse(fake: FakeOpenAI) -> None:
    first = fake.mint_tokens()
    resp = refresh(fake, first["refresh_token"], scope="openid profile email")
    assert resp.status_code == 200, resp.text
    second = resp.json()
    assert {"id_token", "access_token", "refresh_token"} <= set(second)
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]

    reused = refresh(fake, first["refresh_token"])
    assert reused.status_code == 401
    err = reused.json()["error"]
    assert err["code"] == "refresh_token_reused"
    assert err["type"] == "invalid_request_error"
    assert err["message"]
    # Reuse is treated as theft: the rotated token dies too.
    resp = refresh(fake, second["refresh_token"])
    assert resp.status_code == 401 and api_error_code(resp) == "refresh_token_invalidated"
    assert fake.count("/oauth/token", grant_type="refresh_token") == 3


def test_refresh_reuse_without_family_revocation(fake: FakeOpenAI) -> None:
    fake.revoke_family_on_reuse = False
    first = fake.mint_tokens()
    second = refresh(fake, first["refresh_token"]).json()
    assert api_error_code(refresh(fake, first["refresh_token"])) == "refresh_token_reused"
    assert refresh(fake, second["refresh_token"]).status_code == 200


def test_refresh_picks_up_changed_identity(fake: FakeOpenAI) -> None:
    tokens = fake.mint_tokens()
    fake.plan = "pro"
    new = refresh(fake, tokens["refresh_token"]).json()
    assert fake.verify_jwt(new["id_token"])[AUTH_CLAIMS]["chatgpt_plan_type"] == "pro"


def test_refresh_omits(fake: FakeOpenAI) -> None:
    fake.refresh_omits = ("id_token", "refresh_token")
    tokens = fake.mint_tokens()
    resp = refresh(fake, tokens["refresh_token"])
    assert resp.status_code == 200
    body = resp.json()
    assert "id_token" not in body and "refresh_token" not in body
    assert body["access_token"]
    # Not rotated, so the old refresh token keeps working.
    assert refresh(fake, tokens["refresh_token"]).status_code == 200


def test_refresh_rejects_form_body(fake: FakeOpenAI) -> None:
    tokens = fake.mint_tokens()
    resp = token_form(
        fake, {"client_id": fake.client_id, "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert resp.status_code == 400 and oauth_error(resp) == "invalid_request"
    # The refused request did not consume the token.
    assert refresh(fake, tokens["refresh_token"]).status_code == 200


def test_refresh_unknown_expired_and_wrong_client(fake: FakeOpenAI) -> None:
    resp = refresh(fake, "rt_not-a-token")
    assert resp.status_code == 401 and api_error_code(resp) == "refresh_token_invalidated"

    rt = fake.mint_tokens()["refresh_token"]
    resp = token_json(fake, {"client_id": "other", "grant_type": "refresh_token", "refresh_token": rt})
    assert resp.status_code == 401 and oauth_error(resp) == "invalid_client"

    fake.refresh_token_ttl = 60
    tokens = fake.mint_tokens()
    fake.clock_offset = 61
    resp = refresh(fake, tokens["refresh_token"])
    assert resp.status_code == 401 and api_error_code(resp) == "refresh_token_expired"


def test_refresh_rejects_scope_beyond_grant(fake: FakeOpenAI) -> None:
    tokens = fake.mint_tokens()
    resp = refresh(fake, tokens["refresh_token"], scope="openid admin")
    assert resp.status_code == 400 and oauth_error(resp) == "invalid_scope"


def test_revoke_kills_refresh_and_access_tokens(fake: FakeOpenAI) -> None:
    tokens = fake.mint_tokens()
    assert codex_models(fake, tokens["access_token"], fake.account_id).status_code == 200
    resp = requests.post(
        fake.issuer + "/oauth/revoke",
        json={"token": tokens["refresh_token"], "token_type_hint": "refresh_token", "client_id": fake.client_id},
        timeout=TIMEOUT,
    )
    assert resp.status_code == 200 and resp.json() == {}
    assert api_error_code(refresh(fake, tokens["refresh_token"])) == "refresh_token_invalidated"
    assert codex_models(fake, tokens["access_token"], fake.account_id).status_code == 401
    # Unknown tokens are fine too (RFC 7009 2.2).
    resp = requests.post(
        fake.issuer + "/oauth/revoke",
        json={"token": "nope", "token_type_hint": "refresh_token", "client_id": fake.client_id},
        timeout=TIMEOUT,
    )
    assert resp.status_code == 200


# ---------------------------------------------------------------- API key exchange and models


def test_token_exchange_issues_api_key_that_lists_models(fake: FakeOpenAI) -> None:
    code, verifier = get_code(fake)
    tokens = exchange(fake, code, verifier).json()
    resp = api_key_exchange(fake, tokens["id_token"])
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["access_token"].startswith("sk-proj-")
    assert body["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert body["access_token"] in fake.issued_api_keys

    models = requests.get(
        fake.api_base + "/models", headers={"Authorization": f"Bearer {body['access_token']}"}, timeout=TIMEOUT
    )
    assert models.status_code == 200
    listing = models.json()
    assert listing["object"] == "list"
    ids = {m["id"] for m in listing["data"]}
    assert {"gpt-4o", "o3", "text-embedding-3-small", "whisper-1"} <= ids
    assert all(m["object"] == "model" and "created" in m and "owned_by" in m for m in listing["data"])

    fake.revoke_all()
    models = requests.get(
        fake.api_base + "/models", headers={"Authorization": f"Bearer {body['access_token']}"}, timeout=TIMEOUT
    )
    assert models.status_code == 401


def test_token_exchange_refused_without_organization(fake: FakeOpenAI) -> None:
    tokens = fake.mint_tokens(organization_id=None, project_id=None)
    claims = fake.verify_jwt(tokens["id_token"])
    assert "organization_id" not in claims[AUTH_CLAIMS] and "project_id" not in claims[AUTH_CLAIMS]
    resp = api_key_exchange(fake, tokens["id_token"])
    assert resp.status_code == 401
    assert api_error_code(resp) == "missing_organization"
    assert not fake.issued_api_keys


def test_token_exchange_refused_when_disabled_expired_or_forged(fake: FakeOpenAI) -> None:
    tokens = fake.mint_tokens()
    fake.api_key_exchange = False
    assert api_key_exchange(fake, tokens["id_token"]).status_code == 401
    fake.api_key_exchange = True
    with FakeOpenAI() as other:
        forged = other.mint_tokens()["id_token"]
    assert api_key_exchange(fake, forged).status_code == 401
    assert api_key_exchange(fake, tokens["access_token"]).status_code == 401
    fake.clock_offset = fake.id_token_ttl + 1
    assert api_key_exchange(fake, tokens["id_token"]).status_code == 401
    assert not fake.issued_api_keys


def test_token_exchange_parameter_checks(fake: FakeOpenAI) -> None:
    id_token = fake.mint_tokens()["id_token"]
    base = {
        "grant_type": TOKEN_EXCHANGE_GRANT,
        "client_id": fake.client_id,
        "requested_token": "openai-api-key",
        "subject_token": id_token,
        "subject_token_type": ID_TOKEN_TYPE,
    }
    assert oauth_error(token_json(fake, base)) == "invalid_request"
    assert oauth_error(token_form(fake, {**base, "requested_token": "id_token"})) == "invalid_request"
    bad_type = {**base, "subject_token_type": "urn:ietf:params:oauth:token-type:access_token"}
    assert oauth_error(token_form(fake, bad_type)) == "invalid_request"
    assert token_form(fake, base).status_code == 200


def test_v1_models_auth(fake: FakeOpenAI) -> None:
    resp = requests.get(fake.api_base + "/models", timeout=TIMEOUT)
    assert resp.status_code == 401
    resp = requests.get(fake.api_base + "/models", headers={"Authorization": "Bearer sk-proj-wrong"}, timeout=TIMEOUT)
    assert resp.status_code == 401
    err = resp.json()["error"]
    assert err == {
        "message": "Incorrect API key provided",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
    # A ChatGPT access token is not an API key.
    at = fake.mint_tokens()["access_token"]
    resp = requests.get(fake.api_base + "/models", headers={"Authorization": f"Bearer {at}"}, timeout=TIMEOUT)
    assert resp.status_code == 401


@pytest.mark.parametrize("path", ["/chat/completions", "/responses"])
def test_v1_inference_takes_an_issued_key_a_listed_model_and_a_valid_body(fake: FakeOpenAI, path: str) -> None:
    fake.issued_api_keys.add(key := "sk-proj-inference")
    good = ({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]} if path == "/chat/completions"
            else {"model": "gpt-4o", "input": "hi"})
    at = fake.mint_tokens()["access_token"]  # a ChatGPT access token is not an API key
    for bearer in (None, "sk-proj-wrong", at):
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        assert requests.post(fake.api_base + path, json=good, headers=headers, timeout=TIMEOUT).status_code == 401
    auth = {"Authorization": f"Bearer {key}"}
    unknown = requests.post(fake.api_base + path, json=dict(good, model="gpt-9"), headers=auth, timeout=TIMEOUT)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
    other = {"model": "gpt-4o", "input": "hi"} if path == "/chat/completions" else dict(good, messages=[])
    wrong = requests.post(fake.api_base + path, json=other, headers=auth, timeout=TIMEOUT)
    assert wrong.status_code == 400 and wrong.json()["error"]["type"] == "invalid_request_error"

    whole = requests.post(fake.api_base + path, json=good, headers=auth, timeout=TIMEOUT)
    assert whole.status_code == 200
    text = (whole.json()["choices"][0]["message"]["content"] if path == "/chat/completions"
            else whole.json()["output"][0]["content"][0]["text"])
    assert text == fake.reply_text
    streamed = requests.post(fake.api_base + path, json=dict(good, stream=True), headers=auth, timeout=TIMEOUT)
    assert streamed.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[6:]) for line in streamed.text.splitlines()
              if line.startswith("data: {")]
    pieces = ([e["choices"][0]["delta"].get("content", "") for e in events if e["choices"]]
              if path == "/chat/completions" else [e["delta"] for e in events if e["type"].endswith("text.delta")])
    assert "".join(pieces) == fake.reply_text and len([p for p in pieces if p]) == 3
    assert [c.status for c in fake.requests_to(f"/v1{path}")] == [401, 401, 401, 404, 400, 200, 200]


def test_codex_models_checks(fake: FakeOpenAI) -> None:
    tokens = fake.mint_tokens()
    at = tokens["access_token"]
    ok = codex_models(fake, at, fake.account_id)
    assert ok.status_code == 200
    models = ok.json()["models"]
    assert {m["visibility"] for m in models} == {"list", "hide"}
    assert all({"slug", "context_window", "visibility", "priority"} <= set(m) for m in models)

    assert codex_models(fake, at, fake.account_id, version=None).status_code == 400
    assert codex_models(fake, None, fake.account_id).status_code == 401
    assert codex_models(fake, "garbage", fake.account_id).status_code == 401
    assert codex_models(fake, at, None).status_code == 403
    assert codex_models(fake, at, "acct-someone-else").status_code == 403

    fake.expire_access_tokens()
    resp = codex_models(fake, at, fake.account_id)
    assert resp.status_code == 401 and api_error_code(resp) == "token_expired"
    fresh = refresh(fake, tokens["refresh_token"]).json()
    assert codex_models(fake, fresh["access_token"], fake.account_id).status_code == 200
    fake.clock_offset = fake.access_token_ttl + 5
    assert codex_models(fake, fresh["access_token"], fake.account_id).status_code == 401


def test_mint_tokens_overrides(fake: FakeOpenAI) -> None:
    tokens = fake.mint_tokens(email="a@b.c", plan="pro", account_id="acct-2", expires_in=-10)
    claims = fake.verify_jwt(tokens["access_token"])
    assert claims[PROFILE_CLAIMS]["email"] == "a@b.c"
    assert claims[AUTH_CLAIMS]["chatgpt_plan_type"] == "pro"
    assert claims["exp"] < time.time()
    assert codex_models(fake, tokens["access_token"], "acct-2").status_code == 401
    with pytest.raises(TypeError):
        fake.mint_tokens(colour="blue")


# ---------------------------------------------------------------- device code


def test_device_flow_pending_then_approved(fake: FakeOpenAI) -> None:
    fake.device_poll_interval = "0"
    resp = requests.post(
        fake.issuer + "/api/accounts/deviceauth/usercode", json={"client_id": fake.client_id}, timeout=TIMEOUT
    )
    assert resp.status_code == 200
    start = resp.json()
    assert start["interval"] == "0" and isinstance(start["interval"], str)
    assert len(start["user_code"]) == 9 and start["user_code"][4] == "-"
    poll = {"device_auth_id": start["device_auth_id"], "user_code": start["user_code"]}
    url = fake.issuer + "/api/accounts/deviceauth/token"

    pending = requests.post(url, json=poll, timeout=TIMEOUT)
    assert pending.status_code == 403
    assert pending.json()["error"] == "authorization_pending"
    wrong = requests.post(url, json={**poll, "user_code": "ZZZZ-0000"}, timeout=TIMEOUT)
    assert wrong.status_code == 400

    fake.approve_device(start["user_code"])
    resp = requests.post(url, json=poll, timeout=TIMEOUT)
    assert resp.status_code == 200
    got = resp.json()
    digest = hashlib.sha256(got["code_verifier"].encode()).digest()
    assert got["code_challenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    # The code is bound to {issuer}/deviceauth/callback.
    bad = exchange(fake, got["authorization_code"], got["code_verifier"])
    assert oauth_error(bad) == "invalid_grant"
    tokens = exchange(fake, got["authorization_code"], got["code_verifier"], redirect_uri=fake.device_callback_uri)
    assert tokens.status_code == 200 and tokens.json()["refresh_token"]
    assert requests.post(url, json=poll, timeout=TIMEOUT).status_code == 400


def test_device_flow_expiry_and_pending_status_knob(fake: FakeOpenAI) -> None:
    fake.device_pending_status = 404
    start = requests.post(
        fake.issuer + "/api/accounts/deviceauth/usercode", json={"client_id": fake.client_id}, timeout=TIMEOUT
    ).json()
    poll = {"device_auth_id": start["device_auth_id"], "user_code": start["user_code"]}
    url = fake.issuer + "/api/accounts/deviceauth/token"
    assert requests.post(url, json=poll, timeout=TIMEOUT).status_code == 404
    fake.clock_offset = fake.device_code_ttl + 1
    resp = requests.post(url, json=poll, timeout=TIMEOUT)
    assert resp.status_code == 410 and oauth_error(resp) == "expired_token"
    fake.clock_offset = 0
    resp = requests.post(fake.issuer + "/api/accounts/deviceauth/usercode", json={"client_id": "nope"}, timeout=TIMEOUT)
    assert resp.status_code == 401
    # JSON only, like the real endpoint.
    resp = requests.post(
        fake.issuer + "/api/accounts/deviceauth/usercode", data={"client_id": fake.client_id}, timeout=TIMEOUT
    )
    assert resp.status_code == 400 and oauth_error(resp) == "invalid_request"


def test_approve_latest_device_code(fake: FakeOpenAI) -> None:
    with pytest.raises(KeyError):
        fake.approve_device()
    start = requests.post(
        fake.issuer + "/api/accounts/deviceauth/usercode", json={"client_id": fake.client_id}, timeout=TIMEOUT
    ).json()
    assert fake.pending_user_codes() == [start["user_code"]]
    fake.approve_device()
    poll = {"device_auth_id": start["device_auth_id"], "user_code": start["user_code"].lower()}
    resp = requests.post(fake.issuer + "/api/accounts/deviceauth/token", json=poll, timeout=TIMEOUT)
    assert resp.status_code == 200 and resp.json()["authorization_code"]
    with pytest.raises(KeyError):
        fake.approve_device("NOPE-0000")


# ---------------------------------------------------------------- fault injection, routing, lifecycle


def test_fail_next(fake: FakeOpenAI) -> None:
    tokens = fake.mint_tokens()
    fake.fail_next("/oauth/token", 503, {"error": "temporarily_unavailable"}, times=2)
    for _ in range(2):
        resp = refresh(fake, tokens["refresh_token"])
        assert resp.status_code == 503 and resp.json() == {"error": "temporarily_unavailable"}
    assert refresh(fake, tokens["refresh_token"]).status_code == 200
    assert fake.count("/oauth/token") == 3
    assert [r.status for r in fake.requests_to("/oauth/token")] == [503, 503, 200]

    fake.fail_next("/v1/models", 500, "upstream exploded")
    resp = requests.get(fake.api_base + "/models", timeout=TIMEOUT)
    assert resp.status_code == 500 and resp.text == "upstream exploded"

    fake.fail_next("/.well-known/jwks.json", 502, delay=0.2)
    started = time.monotonic()
    resp = requests.get(fake.jwks_url, timeout=TIMEOUT)
    assert resp.status_code == 502 and time.monotonic() - started >= 0.2
    with pytest.raises(ValueError):
        fake.fail_next("/x", 500, times=0)


def test_requests_are_recorded(fake: FakeOpenAI) -> None:
    tokens = fake.mint_tokens()
    refresh(fake, tokens["refresh_token"])
    rec = fake.requests[-1]
    assert rec.method == "POST" and rec.path == "/oauth/token"
    assert rec.json is not None and rec.json["grant_type"] == "refresh_token"
    assert rec.form is None
    assert rec.headers["content-type"] == "application/json"
    assert rec.status == 200


def test_unknown_path_and_method(fake: FakeOpenAI) -> None:
    resp = requests.get(fake.issuer + "/nope", timeout=TIMEOUT)
    assert resp.status_code == 404 and "error" in resp.json()
    resp = requests.post(fake.issuer + "/oauth/authorize", timeout=TIMEOUT)
    assert resp.status_code == 405 and resp.headers["Allow"] == "GET"
    resp = requests.get(fake.issuer + "/oauth/token", timeout=TIMEOUT)
    assert resp.status_code == 405
    resp = requests.delete(fake.issuer + "/oauth/token", timeout=TIMEOUT)
    assert resp.status_code == 405


def test_keep_alive_and_prompt_shutdown() -> None:
    fake = FakeOpenAI(connection_timeout=30).start()
    port = fake.port
    session = requests.Session()
    for _ in range(3):
        assert session.get(fake.jwks_url, timeout=TIMEOUT).status_code == 200
    thread = fake._thread
    fake.stop()  # an idle keep-alive connection is still open
    assert thread is not None and not thread.is_alive()  # it did not keep the server from stopping
    session.close()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/", timeout=1)


def test_concurrent_refresh_race_has_one_winner(fake: FakeOpenAI) -> None:
    tokens = fake.mint_tokens()
    results: list[int] = []

    def worker() -> None:
        results.append(refresh(fake, tokens["refresh_token"]).status_code)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200] + [401] * 5


# ---------------------------------------------------------------- scripted browser


class _Callback(http.server.BaseHTTPRequestHandler):
    """A tiny stand-in for the CLI's loopback callback server."""

    hits: list[str] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        body = b"<html>Signed in</html>" if self.path.startswith("/auth/callback") else b""
        self.send_response(200 if body else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def callback_server() -> Iterator[str]:
    _Callback.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Callback)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/auth/callback"
    server.shutdown()
    server.server_close()


def test_browser_follow_lands_on_callback(fake: FakeOpenAI, callback_server: str, tmp_path, monkeypatch) -> None:
    fake.allowed_redirect_uris = [callback_server]
    log = tmp_path / "visited.txt"
    monkeypatch.setenv(browser.ENV_LOG, str(log))
    _, challenge = make_pkce()
    url = fake.issuer + "/oauth/authorize?" + urlencode(authorize_params(fake, challenge, redirect_uri=callback_server))
    final, status, body = browser.follow(url)
    assert status == 200 and "Signed in" in body
    assert final.startswith(callback_server + "?code=")
    assert _Callback.hits[-1] == "/favicon.ico"
    visited = log.read_text().splitlines()
    assert visited == [url, final]


def test_browser_main_knobs(fake: FakeOpenAI, monkeypatch, capsys) -> None:
    monkeypatch.setenv(browser.ENV_FAIL, "1")
    assert browser.main([fake.jwks_url]) == 1
    monkeypatch.delenv(browser.ENV_FAIL)
    assert browser.main([fake.jwks_url]) == 0
    # A connection failure is a non-zero exit, and the message has no query string.
    with FakeOpenAI() as gone:
        dead = gone.issuer + "/oauth/authorize?code=secret-code"
    assert browser.main([dead]) == 2
    err = capsys.readouterr().err
    assert "failed" in err and "secret-code" not in err


def test_browser_script_works_as_dollar_browser(fake: FakeOpenAI, tmp_path, monkeypatch) -> None:
    log = tmp_path / "visited.txt"
    monkeypatch.setenv(browser.ENV_LOG, str(log))
    script = browser.write_browser_script(tmp_path)
    assert webbrowser.GenericBrowser(script).open(fake.jwks_url)
    assert log.read_text().splitlines() == [fake.jwks_url]


def test_browser_command_works_via_webbrowser_get(fake: FakeOpenAI, tmp_path, monkeypatch) -> None:
    log = tmp_path / "visited.txt"
    monkeypatch.setenv(browser.ENV_LOG, str(log))
    assert webbrowser.get(browser.browser_command()).open(fake.jwks_url)
    assert log.read_text().splitlines() == [fake.jwks_url]


# ---------------------------------------------------------------- the Codex /responses backend


def codex_call(fake: FakeOpenAI, body: dict[str, Any], account: str | None = None) -> requests.Response:
    token = fake.mint_tokens()["access_token"]
    return requests.post(fake.chatgpt_base + "/responses", json=body, timeout=10,
                         headers={"Authorization": f"Bearer {token}", "ChatGPT-Account-Id": account or fake.account_id})


def codex_body(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "gpt-5", "instructions": "Be brief.", "store": False, "stream": True,
                            "input": [{"type": "message", "role": "user", "content": [
                                {"type": "input_text", "text": "ping"}]}]}
    body.update(extra)
    return {k: v for k, v in body.items() if v is not None}


def sse_data(text: str) -> list[dict[str, Any]]:
    import json

    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


@pytest.mark.parametrize(("change", "detail"), [
    ({"instructions": None}, "Instructions are required"),
    ({"instructions": ""}, "Instructions are required"),
    ({"store": None}, "Store must be set to false"),
    ({"store": True}, "Store must be set to false"),
    ({"stream": None}, "Stream must be set to true"),
    ({"stream": False}, "Stream must be set to true"),
    ({"max_output_tokens": 100}, "Unsupported parameter: max_output_tokens"),
    ({"max_completion_tokens": 100}, "Unsupported parameter: max_completion_tokens"),
    ({"temperature": 0.2}, "Unsupported parameter: temperature"),
    ({"model": "gpt-4o"}, "The 'gpt-4o' model is not supported when using Codex with a ChatGPT account."),
])
def test_codex_responses_rules(fake: FakeOpenAI, change: dict[str, Any], detail: str) -> None:
    resp = codex_call(fake, codex_body(**change))
    assert resp.status_code == 400
    assert resp.json() == {"detail": detail}


def test_codex_responses_refuse_stored_items_and_strays(fake: FakeOpenAI) -> None:
    ref = codex_call(fake, codex_body(input=[{"type": "item_reference", "id": "msg_1"}]))
    assert ref.status_code == 400 and "Items are not persisted" in ref.json()["error"]["message"]
    with_id = codex_call(fake, codex_body(input=[{"type": "message", "role": "user", "id": "msg_2", "content": "x"}]))
    assert with_id.status_code == 400 and "msg_2" in with_id.json()["error"]["message"]
    stray = codex_call(fake, codex_body(input=[{"type": "function_call_output", "call_id": "c1", "output": "x"}]))
    assert stray.status_code == 400 and "No tool call found" in stray.json()["error"]["message"]
    chat_tool = codex_call(fake, codex_body(tools=[{"type": "function", "function": {"name": "x"}}]))
    assert chat_tool.status_code == 400 and chat_tool.json()["error"]["param"] == "tools[0].name"
    assert codex_call(fake, codex_body(), account="acct-other").status_code == 403
    chat = requests.post(fake.chatgpt_base + "/chat/completions", json={}, timeout=10)
    assert chat.status_code == 404


def test_codex_responses_stream_text_with_usage_and_rate_limits(fake: FakeOpenAI) -> None:
    resp = codex_call(fake, codex_body(include=["reasoning.encrypted_content"]))
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/event-stream")
    assert resp.headers["x-codex-primary-used-percent"] == "12"
    assert resp.headers["x-codex-secondary-window-minutes"] == "10080"
    events = sse_data(resp.text)
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    items = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert [i["type"] for i in items] == ["reasoning", "message"] and items[0]["encrypted_content"]
    assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") == "pong"
    usage = events[-1]["response"]["usage"]
    assert usage["input_tokens"] > 0 and usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


def test_codex_responses_function_call_round_trip(fake: FakeOpenAI) -> None:
    tools = [{"type": "function", "name": "weather", "parameters": {"type": "object"}, "strict": False}]
    events = sse_data(codex_call(fake, codex_body(tools=tools)).text)
    (call,) = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert call["type"] == "function_call" and call["name"] == "weather"
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta")
    assert deltas == call["arguments"] == fake.tool_call_arguments
    follow = codex_body(tools=tools, input=[
        {"type": "message", "role": "user", "content": "weather?"},
        {"type": "function_call", "call_id": call["call_id"], "name": "weather", "arguments": call["arguments"]},
        {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"},
    ])
    events = sse_data(codex_call(fake, follow).text)
    assert [e["item"]["type"] for e in events if e["type"] == "response.output_item.done"] == ["message"]


@pytest.mark.parametrize("strict", ["absent", None, True])
def test_codex_tools_are_strict_unless_they_say_false(fake: FakeOpenAI, strict: Any) -> None:
    loose = {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
             "required": ["city"]}
    tool: dict[str, Any] = {"type": "function", "name": "weather", "parameters": loose}
    if strict != "absent":
        tool["strict"] = strict
    refused = codex_call(fake, codex_body(tools=[tool]))
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "invalid_function_parameters"
    assert refused.json()["error"]["message"] == ("Invalid schema for function 'weather': In context=(), "
                                                  "'additionalProperties' is required to be supplied and to be false.")
    fixed = {**loose, "additionalProperties": False, "required": ["city", "unit"]}
    assert codex_call(fake, codex_body(tools=[{**tool, "parameters": fixed}])).status_code == 200
    assert codex_call(fake, codex_body(tools=[{**tool, "strict": False}])).status_code == 200


def test_codex_stream_break_ends_the_connection_mid_answer(fake: FakeOpenAI) -> None:
    fake.stream_break = True
    try:
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            codex_call(fake, codex_body()).text  # noqa: B018 - reading the body is the point
    finally:
        fake.stream_break = False
