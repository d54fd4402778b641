"""Tests of the FakeOIDC test double itself.

The fake is only useful if it is as strict as the standards it claims: each test
drives it over real HTTP the way a relying party would (discovery first, then the
discovered endpoints) and checks that right requests succeed and wrong ones fail with
the standard error shape.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests

from oauth_core.testing.fake_oidc import DEFAULT_CLIENT_ID, JWKS_PATH, TOKEN_PATH, FakeOIDC
from oauth_core.testing.jwt_keys import SigningKey

REDIRECT = "http://127.0.0.1:53682/callback"
TIMEOUT = 5


# ---------------------------------------------------------------- helpers


def make_pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def discover(fake: FakeOIDC) -> dict[str, Any]:
    resp = requests.get(fake.issuer + "/.well-known/openid-configuration", timeout=TIMEOUT)
    assert resp.status_code == 200
    return resp.json()


def authorize(fake: FakeOIDC, challenge: str | None = None, **overrides: str | None) -> requests.Response:
    params: dict[str, Any] = {
        "response_type": "code",
        "client_id": fake.client_id,
        "redirect_uri": REDIRECT,
        "scope": "openid profile email offline_access",
        "code_challenge": challenge or make_pkce()[1],
        "code_challenge_method": "S256",
        "state": "st-" + secrets.token_urlsafe(8),
    }
    params.update(overrides)
    return requests.get(
        fake.authorization_endpoint,
        params={k: v for k, v in params.items() if v is not None},
        allow_redirects=False,
        timeout=TIMEOUT,
    )


def callback(resp: requests.Response) -> dict[str, str]:
    assert resp.status_code == 302, resp.text
    return {k: v[0] for k, v in parse_qs(urlsplit(resp.headers["Location"]).query).items()}


def get_code(fake: FakeOIDC, redirect_uri: str = REDIRECT, **overrides: str | None) -> tuple[str, str]:
    verifier, challenge = make_pkce()
    query = callback(authorize(fake, challenge, redirect_uri=redirect_uri, **overrides))
    return query["code"], verifier


def token(fake: FakeOIDC, data: dict[str, str], **kwargs: Any) -> requests.Response:
    return requests.post(fake.token_endpoint, data=data, timeout=TIMEOUT, **kwargs)


def exchange(fake: FakeOIDC, code: str, verifier: str | None, redirect_uri: str = REDIRECT, **extra: str):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "client_id": fake.client_id}
    if verifier is not None:
        data["code_verifier"] = verifier
    data.update(extra)
    return token(fake, data)


def refresh(fake: FakeOIDC, refresh_token: str, **extra: str) -> requests.Response:
    return token(fake, {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": fake.client_id,
                        **extra})


def userinfo(fake: FakeOIDC, access_token: str, method: str = "GET") -> requests.Response:
    return requests.request(method, fake.userinfo_endpoint, headers={"Authorization": f"Bearer {access_token}"},
                            timeout=TIMEOUT)


def revoke(fake: FakeOIDC, tok: str, **extra: str) -> requests.Response:
    return requests.post(fake.revocation_endpoint, data={"token": tok, "client_id": fake.client_id, **extra},
                         timeout=TIMEOUT)


def verify_id_token(fake: FakeOIDC, id_token: str, nonce: str | None = None) -> dict[str, Any]:
    """What a relying party does: JWKS from discovery, then iss/aud/exp (and nonce)."""
    config = discover(fake)
    jwks = jwt.PyJWKSet.from_dict(requests.get(config["jwks_uri"], timeout=TIMEOUT).json())
    kid = jwt.get_unverified_header(id_token)["kid"]
    key = next(k for k in jwks.keys if k.key_id == kid)
    claims = jwt.decode(id_token, key.key, algorithms=config["id_token_signing_alg_values_supported"],
                        audience=fake.client_id, issuer=config["issuer"],
                        options={"require": ["iss", "sub", "aud", "exp", "iat"]})
    assert claims.get("nonce") == nonce
    return claims


def error(resp: requests.Response) -> str:
    return resp.json()["error"]


@pytest.fixture(scope="module")
def shared_key() -> SigningKey:
    return SigningKey()


@pytest.fixture(scope="module")
def other_key() -> SigningKey:
    return SigningKey()


@pytest.fixture
def fake(shared_key: SigningKey, other_key: SigningKey) -> Iterator[FakeOIDC]:
    with FakeOIDC(signing_key=shared_key, forge_key=other_key) as server:
        yield server


# ---------------------------------------------------------------- the whole flow


def test_full_flow_discovery_authorize_token_refresh_userinfo_revoke(fake: FakeOIDC) -> None:
    config = discover(fake)
    assert config["issuer"] == fake.issuer
    assert config["jwks_uri"] == fake.issuer + JWKS_PATH != fake.issuer + "/.well-known/jwks.json"
    assert config["response_types_supported"] == ["code"]
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert config["token_endpoint_auth_methods_supported"] == ["none"]
    assert config["authorization_response_iss_parameter_supported"] is True
    assert config["scopes_supported"] == ["openid", "profile", "email", "offline_access"]
    for name in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "revocation_endpoint",
                 "end_session_endpoint"):
        assert config[name].startswith(fake.issuer + "/")

    verifier, challenge = make_pkce()
    nonce = secrets.token_urlsafe(16)
    resp = requests.get(config["authorization_endpoint"], allow_redirects=False, timeout=TIMEOUT, params={
        "response_type": "code", "client_id": DEFAULT_CLIENT_ID, "redirect_uri": REDIRECT,
        "scope": "openid profile email offline_access", "code_challenge": challenge,
        "code_challenge_method": "S256", "state": "xyz", "nonce": nonce,
    })
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith(REDIRECT + "?")
    query = callback(resp)
    assert query["state"] == "xyz"
    assert query["iss"] == config["issuer"]  # RFC 9207

    resp = requests.post(config["token_endpoint"], timeout=TIMEOUT, data={
        "grant_type": "authorization_code", "code": query["code"], "redirect_uri": REDIRECT,
        "client_id": DEFAULT_CLIENT_ID, "code_verifier": verifier,
    })
    assert resp.status_code == 200, resp.text
    assert resp.headers["Cache-Control"] == "no-store"
    tokens = resp.json()
    assert set(tokens) == {"access_token", "token_type", "expires_in", "id_token", "refresh_token", "scope"}
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 3600
    assert tokens["scope"] == "openid profile email offline_access"

    claims = verify_id_token(fake, tokens["id_token"], nonce=nonce)
    assert claims["sub"] == fake.subject
    assert claims["email"] == "user@example.com" and claims["email_verified"] is True
    assert claims["name"] == "Fake User"
    assert claims["aud"] == DEFAULT_CLIENT_ID
    assert claims["auth_time"] <= claims["iat"]
    digest = hashlib.sha256(tokens["access_token"].encode()).digest()
    assert claims["at_hash"] == base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()

    at_header = jwt.get_unverified_header(tokens["access_token"])
    assert at_header["typ"] == "at+jwt" and at_header["alg"] == "RS256"
    at = fake.verify_jwt(tokens["access_token"])
    assert at["aud"] == DEFAULT_CLIENT_ID and at["client_id"] == DEFAULT_CLIENT_ID
    assert at["scope"] == tokens["scope"]

    resp = requests.get(config["userinfo_endpoint"], timeout=TIMEOUT,
                        headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert resp.status_code == 200
    assert resp.json() == {"sub": fake.subject, "name": "Fake User", "email": "user@example.com",
                           "email_verified": True}

    # Refresh rotates; the new ID token has no nonce, the same sub and auth_time.
    first_rt = tokens["refresh_token"]
    resp = refresh(fake, first_rt)
    assert resp.status_code == 200, resp.text
    renewed = resp.json()
    assert renewed["refresh_token"] != first_rt
    assert renewed["access_token"] != tokens["access_token"]
    new_claims = verify_id_token(fake, renewed["id_token"], nonce=None)
    assert new_claims["sub"] == claims["sub"]
    assert new_claims["auth_time"] == claims["auth_time"]
    assert userinfo(fake, renewed["access_token"]).status_code == 200

    # Reuse of the rotated token: invalid_grant, and the whole grant dies.
    resp = refresh(fake, first_rt)
    assert resp.status_code == 400 and error(resp) == "invalid_grant"
    assert error(refresh(fake, renewed["refresh_token"])) == "invalid_grant"
    assert userinfo(fake, renewed["access_token"]).status_code == 401
    assert fake.count(TOKEN_PATH, "refresh_token") == 3
    assert fake.count(TOKEN_PATH, "authorization_code") == 1

    # Revocation (RFC 7009) on a fresh grant: the refresh token takes the grant with it.
    other = fake.mint_tokens()
    resp = requests.post(config["revocation_endpoint"], timeout=TIMEOUT, data={
        "token": other["refresh_token"], "token_type_hint": "refresh_token", "client_id": DEFAULT_CLIENT_ID})
    assert resp.status_code == 200
    assert error(refresh(fake, other["refresh_token"])) == "invalid_grant"
    assert userinfo(fake, other["access_token"]).status_code == 401
    assert revoke(fake, "no-such-token").status_code == 200
    assert revoke(fake, other["refresh_token"]).status_code == 200  # already revoked: still 200


# ---------------------------------------------------------------- /authorize strictness


@pytest.mark.parametrize(
    "overrides",
    [
        {"client_id": None},
        {"client_id": "someone-else"},
        {"redirect_uri": None},
        {"redirect_uri": "https://evil.example/callback"},
        {"redirect_uri": "http://127.0.0.2:8080/callback"},
        {"redirect_uri": "https://127.0.0.1:8080/callback"},  # loopback redirects are plain http
        {"redirect_uri": "http://127.0.0.1/callback"},  # no port
        {"redirect_uri": "http://127.0.0.1:8080"},  # no path
        {"redirect_uri": "http://127.0.0.1:8080/cb#frag"},
        {"redirect_uri": "http://user@127.0.0.1:8080/cb"},
        {"redirect_uri": "http://127.0.0.1.evil.example:8080/cb"},
    ],
)
def test_bad_client_or_redirect_uri_shows_an_error_page_and_never_redirects(fake: FakeOIDC, overrides) -> None:
    resp = authorize(fake, **overrides)
    assert resp.status_code == 400
    assert "Location" not in resp.headers
    assert resp.headers["Content-Type"].startswith("text/html")


def test_repeated_client_id_is_an_error_page(fake: FakeOIDC) -> None:
    url = fake.authorization_endpoint + f"?client_id={fake.client_id}&client_id={fake.client_id}"
    resp = requests.get(url, allow_redirects=False, timeout=TIMEOUT)
    assert resp.status_code == 400 and "Location" not in resp.headers


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"response_type": None}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": "code id_token"}, "unsupported_response_type"),
        ({"response_mode": "fragment"}, "invalid_request"),
        ({"scope": None}, "invalid_scope"),
        ({"scope": "profile email"}, "invalid_scope"),  # no openid
        ({"scope": "openid admin"}, "invalid_scope"),
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),  # absent means plain
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": "S512"}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"code_challenge": "A" * 44}, "invalid_request"),
        ({"code_challenge": "A" * 42 + "="}, "invalid_request"),
        ({"code_challenge": "A" * 42 + "B"}, "invalid_request"),  # not a canonical 32-byte encoding
        ({"code_challenge": "A" * 42 + "+"}, "invalid_request"),
        ({"nonce": ""}, "invalid_request"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"request": "eyJ..."}, "request_not_supported"),
        ({"request_uri": "urn:x"}, "request_uri_not_supported"),
    ],
)
def test_authorize_errors_redirect_with_error_state_and_iss(fake: FakeOIDC, overrides, expected) -> None:
    query = callback(authorize(fake, state="keep-me", **overrides))
    assert query["error"] == expected
    assert query["error_description"]
    assert query["state"] == "keep-me"
    assert query["iss"] == fake.issuer
    assert "code" not in query


def test_missing_state_is_refused_unless_the_knob_allows_it(fake: FakeOIDC) -> None:
    query = callback(authorize(fake, state=None))
    assert query["error"] == "invalid_request" and "state" not in query
    fake.require_state = False
    query = callback(authorize(fake, state=None))
    assert "code" in query and "state" not in query


def test_repeated_parameter_is_refused(fake: FakeOIDC) -> None:
    _, challenge = make_pkce()
    url = (f"{fake.authorization_endpoint}?client_id={fake.client_id}&redirect_uri={REDIRECT}&response_type=code"
           f"&scope=openid&code_challenge={challenge}&code_challenge_method=S256&state=a&scope=email")
    query = callback(requests.get(url, allow_redirects=False, timeout=TIMEOUT))
    assert query["error"] == "invalid_request"


def test_authorize_error_knob_and_no_iss_knob(fake: FakeOIDC) -> None:
    fake.authorize_error = "access_denied"
    query = callback(authorize(fake, state="s1"))
    assert query == {"error": "access_denied", "error_description": query["error_description"], "state": "s1",
                     "iss": fake.issuer}
    fake.authorize_error = None
    fake.send_iss_in_callback = False
    query = callback(authorize(fake))
    assert "code" in query and "iss" not in query
    assert discover(fake)["authorization_response_iss_parameter_supported"] is False


def test_loopback_redirect_port_may_vary_but_exact_list_is_exact(fake: FakeOIDC) -> None:
    for uri in ("http://127.0.0.1:1/a", "http://127.0.0.1:65535/x/y?keep=1", "http://localhost:8080/callback"):
        assert "code" in callback(authorize(fake, redirect_uri=uri)), uri
    location = authorize(fake, redirect_uri="http://127.0.0.1:9/x/y?keep=1").headers["Location"]
    assert location.startswith("http://127.0.0.1:9/x/y?keep=1&code=")

    fake.allowed_redirect_uris = ["http://127.0.0.1:1455/auth/callback", "https://app.example/cb"]
    assert "code" in callback(authorize(fake, redirect_uri="http://127.0.0.1:4242/auth/callback"))
    assert "code" in callback(authorize(fake, redirect_uri="https://app.example/cb"))
    assert authorize(fake, redirect_uri="http://127.0.0.1:4242/other").status_code == 400
    assert authorize(fake, redirect_uri="http://localhost:1455/auth/callback").status_code == 400

    fake.exact_redirect_uris = ["http://127.0.0.1:1455/auth/callback"]
    assert "code" in callback(authorize(fake, redirect_uri="http://127.0.0.1:1455/auth/callback"))
    assert authorize(fake, redirect_uri="http://127.0.0.1:1456/auth/callback").status_code == 400


# ---------------------------------------------------------------- /token strictness


def test_code_is_single_use_and_replay_revokes_its_tokens(fake: FakeOIDC) -> None:
    code, verifier = get_code(fake)
    tokens = exchange(fake, code, verifier).json()
    assert userinfo(fake, tokens["access_token"]).status_code == 200
    resp = exchange(fake, code, verifier)
    assert resp.status_code == 400 and error(resp) == "invalid_grant"
    assert userinfo(fake, tokens["access_token"]).status_code == 401
    assert error(refresh(fake, tokens["refresh_token"])) == "invalid_grant"


@pytest.mark.parametrize(
    ("change", "status", "expected"),
    [
        ({"code_verifier": secrets.token_urlsafe(48)}, 400, "invalid_grant"),  # wrong verifier
        ({"code_verifier": "too-short"}, 400, "invalid_grant"),
        ({"code_verifier": None}, 400, "invalid_request"),
        ({"redirect_uri": "http://127.0.0.1:53683/callback"}, 400, "invalid_grant"),
        ({"redirect_uri": None}, 400, "invalid_request"),
        ({"code": "not-a-code"}, 400, "invalid_grant"),
        ({"code": None}, 400, "invalid_request"),
        ({"client_id": "someone-else"}, 401, "invalid_client"),
        ({"client_id": None}, 401, "invalid_client"),
        ({"client_secret": "x"}, 401, "invalid_client"),  # a public client sends no secret
        ({"grant_type": None}, 400, "invalid_request"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"grant_type": "client_credentials"}, 400, "unsupported_grant_type"),
    ],
)
def test_code_exchange_rejections(fake: FakeOIDC, change, status, expected) -> None:
    code, verifier = get_code(fake)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "client_id": fake.client_id, "code_verifier": verifier}
    data.update(change)
    resp = token(fake, {k: v for k, v in data.items() if v is not None})
    assert resp.status_code == status, resp.text
    assert error(resp) == expected
    assert resp.json()["error_description"]
    assert resp.headers["Cache-Control"] == "no-store"
    if status == 401:
        assert resp.headers["WWW-Authenticate"].startswith("Basic")
    # A failed attempt does not burn the code.
    assert exchange(fake, code, verifier).status_code == 200


def test_token_endpoint_wants_a_form_body_and_nothing_in_the_url(fake: FakeOIDC) -> None:
    code, verifier = get_code(fake)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "client_id": fake.client_id, "code_verifier": verifier}
    resp = requests.post(fake.token_endpoint, json=data, timeout=TIMEOUT)
    assert resp.status_code == 400 and error(resp) == "invalid_request"
    resp = requests.post(fake.token_endpoint, params=data, timeout=TIMEOUT)
    assert resp.status_code == 400 and error(resp) == "invalid_request"
    resp = requests.post(fake.token_endpoint, data=[*data.items(), ("code", "again")], timeout=TIMEOUT)
    assert error(resp) == "invalid_request"  # repeated parameter
    resp = requests.get(fake.token_endpoint, timeout=TIMEOUT)
    assert resp.status_code == 405 and resp.headers["Allow"] == "POST"
    assert exchange(fake, code, verifier).status_code == 200


def test_expired_code(fake: FakeOIDC) -> None:
    code, verifier = get_code(fake)
    fake.clock_offset = fake.code_ttl + 1
    resp = exchange(fake, code, verifier)
    assert error(resp) == "invalid_grant" and "expired" in resp.json()["error_description"]


def test_pkce_optional_knob_still_blocks_downgrade(fake: FakeOIDC) -> None:
    fake.require_pkce = False
    query = callback(authorize(fake, code_challenge=None, code_challenge_method=None))
    assert error(exchange(fake, query["code"], secrets.token_urlsafe(48))) == "invalid_grant"
    assert exchange(fake, query["code"], None).status_code == 200
    # A challenge, when sent, is still S256 only.
    assert callback(authorize(fake, code_challenge_method="plain"))["error"] == "invalid_request"


def test_confidential_client_basic_or_post_but_not_both(fake: FakeOIDC) -> None:
    fake.client_secret = "s3cr3t:+/"
    assert discover(fake)["token_endpoint_auth_methods_supported"] == ["client_secret_basic", "client_secret_post"]
    code, verifier = get_code(fake)
    resp = exchange(fake, code, verifier)
    assert resp.status_code == 401 and error(resp) == "invalid_client"
    resp = exchange(fake, code, verifier, client_secret="wrong")
    assert resp.status_code == 401 and error(resp) == "invalid_client"
    resp = exchange(fake, code, verifier, client_secret="s3cr3t:+/")
    assert resp.status_code == 200, resp.text

    code, verifier = get_code(fake)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}
    # RFC 6749 2.3.1: id and secret are form-urlencoded before base64.
    basic = base64.b64encode(b"oauth-hub-test:s3cr3t%3A%2B%2F").decode()
    resp = token(fake, {**data, "client_secret": "s3cr3t:+/"}, headers={"Authorization": f"Basic {basic}"})
    assert resp.status_code == 400 and error(resp) == "invalid_request"
    resp = token(fake, data, auth=("oauth-hub-test", "nope"))
    assert resp.status_code == 401 and resp.headers["WWW-Authenticate"].startswith("Basic")
    resp = token(fake, data, headers={"Authorization": f"Basic {basic}"})
    assert resp.status_code == 200, resp.text
    assert refresh(fake, resp.json()["refresh_token"], client_secret="s3cr3t:+/").status_code == 200


# ---------------------------------------------------------------- refresh tokens


def test_refresh_token_only_with_offline_access(fake: FakeOIDC) -> None:
    code, verifier = get_code(fake, scope="openid email")
    tokens = exchange(fake, code, verifier).json()
    assert "refresh_token" not in tokens
    assert "name" not in verify_id_token(fake, tokens["id_token"])  # no profile scope, no name
    assert userinfo(fake, tokens["access_token"]).json() == {"sub": fake.subject, "email": "user@example.com",
                                                              "email_verified": True}
    fake.issue_refresh_token = False
    assert "refresh_token" not in fake.mint_tokens()


def test_no_rotation_keeps_the_refresh_token(fake: FakeOIDC) -> None:
    fake.rotate_refresh_tokens = False
    rt = fake.mint_tokens()["refresh_token"]
    for _ in range(2):
        resp = refresh(fake, rt)
        assert resp.status_code == 200 and "refresh_token" not in resp.json()


def test_refresh_may_narrow_scope_but_not_widen_it(fake: FakeOIDC) -> None:
    tokens = fake.mint_tokens(scope="openid email offline_access")
    resp = refresh(fake, tokens["refresh_token"], scope="openid profile")
    assert error(resp) == "invalid_scope"
    narrowed = refresh(fake, tokens["refresh_token"], scope="email").json()
    assert narrowed["scope"] == "email" and "id_token" not in narrowed
    resp = userinfo(fake, narrowed["access_token"])
    assert resp.status_code == 403 and 'error="insufficient_scope"' in resp.headers["WWW-Authenticate"]
    # The grant keeps its original scope for the next refresh (RFC 6749 6).
    again = refresh(fake, narrowed["refresh_token"]).json()
    assert again["scope"] == "openid email offline_access" and "id_token" in again


def test_concurrent_refreshes_with_one_token_let_exactly_one_win(fake: FakeOIDC) -> None:
    rt = fake.mint_tokens()["refresh_token"]
    results: list[int] = []
    barrier = threading.Barrier(6)

    def go() -> None:
        barrier.wait()
        results.append(refresh(fake, rt).status_code)

    threads = [threading.Thread(target=go) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200] + [400] * 5


# ---------------------------------------------------------------- ID token, audience, mint_tokens


def test_nonce_is_echoed_only_when_sent(fake: FakeOIDC) -> None:
    code, verifier = get_code(fake, nonce="n-123")
    verify_id_token(fake, exchange(fake, code, verifier).json()["id_token"], nonce="n-123")
    code, verifier = get_code(fake)
    verify_id_token(fake, exchange(fake, code, verifier).json()["id_token"], nonce=None)


def test_audience_param_sets_access_token_aud(fake: FakeOIDC) -> None:
    code, verifier = get_code(fake, audience="https://api.example")
    tokens = exchange(fake, code, verifier).json()
    assert fake.verify_jwt(tokens["access_token"])["aud"] == "https://api.example"
    assert verify_id_token(fake, tokens["id_token"])["aud"] == fake.client_id
    assert userinfo(fake, tokens["access_token"]).status_code == 200
    fake.audience_param = False
    code, verifier = get_code(fake, audience="https://api.example")
    tokens = exchange(fake, code, verifier).json()
    assert fake.verify_jwt(tokens["access_token"])["aud"] == fake.client_id


def test_mint_tokens_overrides_and_identity_changes(fake: FakeOIDC) -> None:
    tokens = fake.mint_tokens(subject="alice", email="a@example.com", nonce="n", expires_in=60)
    claims = verify_id_token(fake, tokens["id_token"], nonce="n")
    assert (claims["sub"], claims["email"], tokens["expires_in"]) == ("alice", "a@example.com", 60)
    fake.subject = "bob"
    fake.name = "Renamed"
    renewed = refresh(fake, tokens["refresh_token"]).json()
    claims = verify_id_token(fake, renewed["id_token"])
    assert claims["sub"] == "alice"  # sub never changes within a grant
    assert claims["email"] == "a@example.com" and claims["name"] == "Renamed"
    with pytest.raises(TypeError):
        fake.mint_tokens(plan="pro")
    with pytest.raises(ValueError):
        fake.mint_tokens(scope="openid admin")
    expired = fake.mint_tokens(expires_in=-10)
    assert userinfo(fake, expired["access_token"]).status_code == 401


# ---------------------------------------------------------------- keys


def test_key_rotation_publishes_both_and_signs_with_the_new(fake: FakeOIDC) -> None:
    old = fake.mint_tokens()
    old_kid = fake.key.kid
    new_key = fake.rotate_keys()
    kids = [k["kid"] for k in requests.get(discover(fake)["jwks_uri"], timeout=TIMEOUT).json()["keys"]]
    assert kids == [new_key.kid, old_kid]
    new = fake.mint_tokens()
    assert jwt.get_unverified_header(new["id_token"])["kid"] == new_key.kid
    verify_id_token(fake, new["id_token"])
    verify_id_token(fake, old["id_token"])
    assert userinfo(fake, old["access_token"]).status_code == 200

    fake.rotate_keys(keep_old=False, new_key=SigningKey(key_size=1024))
    assert len(fake.jwks()["keys"]) == 1
    with pytest.raises(StopIteration):  # its kid is no longer in the JWKS
        verify_id_token(fake, new["id_token"])
    assert userinfo(fake, new["access_token"]).status_code == 401


def test_sign_and_forge(fake: FakeOIDC) -> None:
    now = int(time.time())
    claims = {"iss": fake.issuer, "sub": "mallory", "aud": fake.client_id, "iat": now, "exp": now + 60}
    assert verify_id_token(fake, fake.sign(claims))["sub"] == "mallory"
    forged = fake.forge(claims)
    assert jwt.get_unverified_header(forged)["kid"] == fake.key.kid  # looks published
    with pytest.raises(jwt.InvalidSignatureError):
        verify_id_token(fake, forged)
    # An access token re-signed with the wrong key is refused at /userinfo.
    good = fake.mint_tokens()["access_token"]
    bad = fake.forge(fake.verify_jwt(good), headers={"typ": "at+jwt"})
    resp = userinfo(fake, bad)
    assert resp.status_code == 401 and 'error="invalid_token"' in resp.headers["WWW-Authenticate"]


# ---------------------------------------------------------------- /userinfo, /revoke


def test_userinfo_bearer_rules(fake: FakeOIDC) -> None:
    tokens = fake.mint_tokens()
    assert userinfo(fake, tokens["access_token"], method="POST").status_code == 200
    resp = requests.get(fake.userinfo_endpoint, timeout=TIMEOUT)
    assert resp.status_code == 401 and resp.headers["WWW-Authenticate"] == 'Bearer realm="fake-oidc"'
    resp = requests.get(fake.userinfo_endpoint, params={"access_token": tokens["access_token"]}, timeout=TIMEOUT)
    assert resp.status_code == 400 and error(resp) == "invalid_request"
    resp = requests.post(fake.userinfo_endpoint, data={"access_token": tokens["access_token"]}, timeout=TIMEOUT)
    assert resp.status_code == 400
    assert userinfo(fake, tokens["id_token"]).status_code == 401  # an ID token is not an access token
    assert userinfo(fake, "garbage").status_code == 401
    fake.expire_access_tokens()
    resp = userinfo(fake, tokens["access_token"])
    assert resp.status_code == 401 and "expired" in resp.json()["error_description"]
    fresh = fake.mint_tokens()
    fake.clock_offset = 3601
    assert userinfo(fake, fresh["access_token"]).status_code == 401


def test_revoke_rules(fake: FakeOIDC) -> None:
    tokens = fake.mint_tokens()
    resp = requests.post(fake.revocation_endpoint, json={"token": "x", "client_id": fake.client_id}, timeout=TIMEOUT)
    assert resp.status_code == 400 and error(resp) == "invalid_request"
    resp = requests.post(fake.revocation_endpoint, data={"client_id": fake.client_id}, timeout=TIMEOUT)
    assert resp.status_code == 400 and error(resp) == "invalid_request"
    resp = requests.post(fake.revocation_endpoint, data={"token": "x", "client_id": "nope"}, timeout=TIMEOUT)
    assert resp.status_code == 401 and error(resp) == "invalid_client"
    # Revoking an access token leaves the grant alive.
    assert revoke(fake, tokens["access_token"], token_type_hint="access_token").status_code == 200
    assert userinfo(fake, tokens["access_token"]).status_code == 401
    renewed = refresh(fake, tokens["refresh_token"]).json()
    assert userinfo(fake, renewed["access_token"]).status_code == 200
    # A wrong hint is only a hint.
    assert revoke(fake, renewed["refresh_token"], token_type_hint="access_token").status_code == 200
    assert error(refresh(fake, renewed["refresh_token"])) == "invalid_grant"

    more = fake.mint_tokens()
    fake.revoke_all()
    assert userinfo(fake, more["access_token"]).status_code == 401
    assert error(refresh(fake, more["refresh_token"])) == "invalid_grant"


def test_end_session(fake: FakeOIDC) -> None:
    id_token = fake.mint_tokens()["id_token"]
    resp = requests.get(fake.end_session_endpoint, allow_redirects=False, timeout=TIMEOUT, params={
        "id_token_hint": id_token, "post_logout_redirect_uri": "http://127.0.0.1:9/bye", "state": "s"})
    assert resp.status_code == 302 and resp.headers["Location"] == "http://127.0.0.1:9/bye?state=s"
    resp = requests.get(fake.end_session_endpoint, allow_redirects=False, timeout=TIMEOUT, params={
        "client_id": fake.client_id, "post_logout_redirect_uri": "https://evil.example/"})
    assert resp.status_code == 400
    resp = requests.get(fake.end_session_endpoint, timeout=TIMEOUT, params={"id_token_hint": fake.forge({})})
    assert resp.status_code == 400
    assert requests.get(fake.end_session_endpoint, timeout=TIMEOUT).status_code == 200


# ---------------------------------------------------------------- harness


def test_fail_next_count_and_recording(fake: FakeOIDC) -> None:
    fake.fail_next(TOKEN_PATH, 503, times=2)
    fake.fail_next(JWKS_PATH, 500, body="boom", delay=0.05)
    tokens = fake.mint_tokens()
    for _ in range(2):
        resp = refresh(fake, tokens["refresh_token"])
        assert resp.status_code == 503 and error(resp) == "server_error"
    assert refresh(fake, tokens["refresh_token"]).status_code == 200  # failures did not consume it
    started = time.monotonic()
    resp = requests.get(fake.jwks_uri, timeout=TIMEOUT)
    assert resp.status_code == 500 and resp.text == "boom" and time.monotonic() - started >= 0.05
    assert requests.get(fake.jwks_uri, timeout=TIMEOUT).status_code == 200
    assert fake.count(TOKEN_PATH) == 3 and fake.count(TOKEN_PATH, "refresh_token") == 3
    assert [r.status for r in fake.requests_to(TOKEN_PATH)] == [503, 503, 200]
    recorded = fake.requests_to(TOKEN_PATH)[-1]
    assert recorded.method == "POST" and recorded.form is not None
    assert recorded.form["refresh_token"] == tokens["refresh_token"]
    assert recorded.headers["content-type"] == "application/x-www-form-urlencoded"
    resp = requests.get(fake.issuer + "/nope", timeout=TIMEOUT)
    assert resp.status_code == 404 and error(resp) == "not_found"
    with pytest.raises(ValueError):
        fake.fail_next(TOKEN_PATH, 500, times=0)


def test_lifecycle(shared_key: SigningKey) -> None:
    fake = FakeOIDC(signing_key=shared_key)
    with pytest.raises(RuntimeError):
        _ = fake.issuer
    with fake:
        assert fake.start() is fake
        port = fake.port
        session = requests.Session()  # a keep-alive connection must not hold up stop()
        assert session.get(fake.discovery_url, timeout=TIMEOUT).status_code == 200
    fake.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/.well-known/openid-configuration", timeout=1)
    session.close()


def test_main_prints_a_config_snippet_and_serves() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OAUTH_HUB")}
    proc = subprocess.Popen([sys.executable, "-m", "oauth_core.testing.fake_oidc", "--client-id", "cli-test"],
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        while not any(line.startswith("client_id") for line in lines):
            line = proc.stdout.readline()
            assert line, "the fake exited early"
            lines.append(line)
        text = "".join(lines)
        assert "[providers.fake-oidc]" in text and 'type = "oidc"' in text and 'client_id = "cli-test"' in text
        issuer = next(line.split('"')[1] for line in lines if line.startswith("issuer"))
        assert requests.get(issuer + "/.well-known/openid-configuration", timeout=TIMEOUT).json()["issuer"] == issuer
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        if proc.stdout is not None:
            proc.stdout.close()


# ---------------------------------------------------------------- device authorization (RFC 8628)

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def start_device(fake: FakeOIDC, **form: str) -> dict[str, Any]:
    config = discover(fake)
    assert DEVICE_GRANT in config["grant_types_supported"]
    resp = requests.post(config["device_authorization_endpoint"], timeout=TIMEOUT,
                         data={"client_id": fake.client_id, "scope": "openid email offline_access", **form})
    assert resp.status_code == 200, resp.text
    return resp.json()


def poll(fake: FakeOIDC, device_code: str, client_id: str | None = None) -> requests.Response:
    return requests.post(fake.token_endpoint, timeout=TIMEOUT, data={
        "grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": client_id or fake.client_id})


def test_device_flow_pending_then_tokens_once(fake: FakeOIDC) -> None:
    fake.device_interval = 0  # no pacing here: the slow_down test below covers it
    device = start_device(fake)
    assert set(device) == {"device_code", "user_code", "verification_uri", "verification_uri_complete",
                           "expires_in", "interval"}
    assert device["verification_uri"] == fake.verification_uri
    assert error(poll(fake, device["device_code"])) == "authorization_pending"
    assert error(poll(fake, device["device_code"], client_id="other")) == "invalid_client"
    page = requests.get(device["verification_uri_complete"], timeout=TIMEOUT)
    assert page.status_code == 200 and device["user_code"] in page.text
    fake.approve_device(device["user_code"].lower())  # people type codes in any case
    tokens = poll(fake, device["device_code"])
    assert tokens.status_code == 200 and {"access_token", "id_token", "refresh_token"} <= set(tokens.json())
    assert "nonce" not in fake.verify_jwt(tokens.json()["id_token"])
    assert error(poll(fake, device["device_code"])) == "invalid_grant"  # used up
    with pytest.raises(KeyError):
        fake.approve_device(device["user_code"])
    assert fake.device_poll_answers == ["authorization_pending", "tokens", "invalid_grant"]


def test_device_flow_paces_polls_and_expires(fake: FakeOIDC) -> None:
    fake.device_interval = 30
    device = start_device(fake)
    assert error(poll(fake, device["device_code"])) == "authorization_pending"
    assert error(poll(fake, device["device_code"])) == "slow_down"  # 30 s had not passed
    fake.clock_offset += 36  # interval is now 35 s
    assert error(poll(fake, device["device_code"])) == "authorization_pending"
    fake.clock_offset += fake.device_code_ttl
    assert error(poll(fake, device["device_code"])) == "expired_token"


def test_device_flow_denied_unknown_scope_and_off(fake: FakeOIDC) -> None:
    fake.device_interval = 0
    device = start_device(fake)
    fake.approve_device(device["user_code"], approve=False)
    assert error(poll(fake, device["device_code"])) == "access_denied"
    bad = requests.post(fake.device_authorization_endpoint, timeout=TIMEOUT,
                        data={"client_id": fake.client_id, "scope": "openid admin"})
    assert bad.status_code == 400 and error(bad) == "invalid_scope"
    fake.device_flow = False
    assert "device_authorization_endpoint" not in discover(fake)
    assert error(poll(fake, device["device_code"])) == "unsupported_grant_type"


# ---------------------------------------------------------------- servers that differ within the standards


@pytest.mark.parametrize("alg", ["PS512", "ES512", "EdDSA"])
def test_signing_algorithm_is_published_and_used(alg: str) -> None:
    with FakeOIDC(signing_alg=alg) as fake:
        config = discover(fake)
        assert config["id_token_signing_alg_values_supported"] == [alg]
        token = fake.mint_tokens()["id_token"]
        [jwk] = requests.get(config["jwks_uri"], timeout=TIMEOUT).json()["keys"]
        assert jwk["alg"] == alg and jwt.get_unverified_header(token)["alg"] == alg
        claims = jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=[alg], audience=fake.client_id)
        assert claims["email"] == fake.email
        assert jwt.get_unverified_header(fake.forge({"a": 1}))["alg"] == alg  # forgeries look alike


def test_claims_kept_out_of_the_id_token_are_at_userinfo() -> None:
    with FakeOIDC(claims_in_id_token=False) as fake:
        answer = fake.mint_tokens()
        assert {"email", "name"}.isdisjoint(fake.verify_jwt(answer["id_token"]))
        info = requests.get(fake.userinfo_endpoint, timeout=TIMEOUT,
                            headers={"Authorization": f"Bearer {answer['access_token']}"}).json()
        assert info["email"] == fake.email and info["name"] == fake.name


def test_discovery_can_leave_out_endpoints_that_still_work() -> None:
    with FakeOIDC(omit_from_discovery=["revocation_endpoint"]) as fake:
        assert "revocation_endpoint" not in discover(fake)
        answer = fake.mint_tokens()
        revoked = requests.post(fake.revocation_endpoint, timeout=TIMEOUT,
                                data={"token": answer["refresh_token"], "client_id": fake.client_id})
        assert revoked.status_code == 200


def test_callback_iss_knob() -> None:
    for value, expected in (("https://evil.example", ["https://evil.example"]), ("", None)):
        with FakeOIDC(callback_iss=value) as fake:
            assert discover(fake)["authorization_response_iss_parameter_supported"] is True
            location = urlsplit(authorize(fake).headers["Location"])
            assert parse_qs(location.query).get("iss") == expected
