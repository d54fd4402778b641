"""Tests of the FakeAnthropic test double itself.

The fake is only useful if it is as strict as claude.com / platform.claude.com /
api.anthropic.com are for Claude Code 2.1.x: each test drives it over real HTTP the way Claude Code does
and checks that the right requests succeed and the wrong ones fail with the
real error shape.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from oauth_core.testing.fake_anthropic import (
    AUTHORIZE_SCOPES,
    CLAUDE_CODE_SYSTEM_PREFIX,
    DEFAULT_CLIENT_ID,
    OAUTH_BETA,
    FakeAnthropic,
)

LOOPBACK = "http://localhost:8765/callback"
#: What Claude Code 2.1.332 asks for (both authorize hosts).
SCOPE = " ".join(AUTHORIZE_SCOPES)
#: What a Claude Pro/Max sign-in is granted of it: every user: scope.
PRO_GRANT = ("user:profile user:inference user:sessions:claude_code user:mcp_servers user:file_upload "
             "user:plugins user:privacy_consents:write")
#: The scopes of Claude Code before 2.1 (and of this fake before it followed 2.1).
OLD_SCOPE = "org:create_api_key user:profile user:inference"
VERSION = "2023-06-01"
TIMEOUT = 5


# ---------------------------------------------------------------- helpers


def make_pkce() -> tuple[str, str]:
    verifier = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_params(fake: FakeAnthropic, challenge: str, **overrides: str | None) -> dict[str, str]:
    params: dict[str, Any] = {
        "code": "true",
        "client_id": fake.client_id,
        "response_type": "code",
        "redirect_uri": LOOPBACK,
        "scope": SCOPE,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": secrets.token_urlsafe(32),
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def authorize(fake: FakeAnthropic, challenge: str, *, console: bool = False,
              **overrides: str | None) -> requests.Response:
    return requests.get(
        fake.console_authorize_url if console else fake.authorize_url,
        params=authorize_params(fake, challenge, **overrides),
        allow_redirects=False,
        timeout=TIMEOUT,
    )


def redirect_query(resp: requests.Response) -> dict[str, str]:
    assert resp.status_code == 302, resp.text
    return {k: v[0] for k, v in parse_qs(urlsplit(resp.headers["Location"]).query).items()}


def get_code(fake: FakeAnthropic, redirect_uri: str = LOOPBACK, console: bool = False) -> tuple[str, str, str]:
    """(code, state, verifier) from an approved authorize request."""
    verifier, challenge = make_pkce()
    query = redirect_query(authorize(fake, challenge, redirect_uri=redirect_uri, console=console))
    return query["code"], query["state"], verifier


def token(fake: FakeAnthropic, body: dict[str, Any], **headers: str) -> requests.Response:
    return requests.post(fake.token_url, json=body, headers=headers, timeout=TIMEOUT)


def exchange(
    fake: FakeAnthropic, code: str, state: str, verifier: str, redirect_uri: str = LOOPBACK, /, **extra: Any
) -> requests.Response:
    body = {
        "grant_type": "authorization_code",
        "client_id": fake.client_id,
        "code": code,
        "state": state,
        "code_verifier": verifier,
        "redirect_uri": redirect_uri,
    }
    body.update(extra)
    return token(fake, {k: v for k, v in body.items() if v is not None})


def refresh(fake: FakeAnthropic, refresh_token: str, **extra: Any) -> requests.Response:
    body = {"grant_type": "refresh_token", "client_id": fake.client_id, "refresh_token": refresh_token}
    body.update(extra)
    return token(fake, body)


def oauth_headers(access_token: str, beta: str | None = OAUTH_BETA, version: str | None = VERSION) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {access_token}"}
    if beta is not None:
        headers["anthropic-beta"] = beta
    if version is not None:
        headers["anthropic-version"] = version
    return headers


def models(fake: FakeAnthropic, headers: dict[str, str], **params: Any) -> requests.Response:
    return requests.get(fake.api_base + "/v1/models", headers=headers, params=params, timeout=TIMEOUT)


def create_key(fake: FakeAnthropic, access_token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {access_token}"} if access_token else {}
    return requests.post(fake.create_api_key_url, headers=headers, timeout=TIMEOUT)


def api_error_type(resp: requests.Response) -> str:
    body = resp.json()
    assert body["type"] == "error"
    return body["error"]["type"]


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(stream_delay=0.05) as server:
        yield server


# ---------------------------------------------------------------- addresses and lifecycle


def test_addresses_and_defaults(fake: FakeAnthropic) -> None:
    base = f"http://127.0.0.1:{fake.port}"
    assert fake.issuer == base
    assert fake.authorize_url == base + "/claude.com/cai/oauth/authorize"
    assert fake.console_authorize_url == base + "/platform.claude.com/oauth/authorize"
    assert fake.token_url == base + "/platform.claude.com/v1/oauth/token"
    assert fake.revoke_url == base + "/platform.claude.com/v1/oauth/token/revoke"
    assert fake.manual_redirect_uri == base + "/platform.claude.com/oauth/code/callback"
    assert fake.success_url == base + "/platform.claude.com/oauth/code/success?app=claude-code"
    assert fake.api_base == base
    assert fake.create_api_key_url == base + "/api/oauth/claude_cli/create_api_key"
    assert fake.profile_url == base + "/api/oauth/profile"
    assert fake.roles_url == base + "/api/oauth/claude_cli/roles"
    assert fake.client_id == DEFAULT_CLIENT_ID == "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
    assert fake.provider_settings()["revoke_url"] == fake.revoke_url
    # Any loopback port on localhost (Claude Code takes a random one), and the manual page.
    for uri in ("http://localhost:8765/callback", "http://localhost:1/callback", "http://localhost:65535/callback",
                fake.manual_redirect_uri):
        assert fake.redirect_uri_allowed(uri), uri
    for uri in ("http://localhost:65536/callback", "http://localhost:0/callback", "http://127.0.0.1:8765/callback",
                "http://localhost:8765/callback/", "http://localhost/callback", "https://localhost:8765/callback"):
        assert not fake.redirect_uri_allowed(uri), uri


def test_stop_is_idempotent_and_port_needs_start() -> None:
    fake = FakeAnthropic()
    with pytest.raises(RuntimeError):
        _ = fake.port
    fake.start()
    requests.get(fake.issuer + "/nope", timeout=TIMEOUT)
    fake.stop()
    fake.stop()


# ---------------------------------------------------------------- authorization code + PKCE


def test_full_loopback_flow(fake: FakeAnthropic) -> None:
    verifier, challenge = make_pkce()
    params = authorize_params(fake, challenge, redirect_uri="http://localhost:8790/callback")
    resp = requests.get(fake.authorize_url, params=params, allow_redirects=False, timeout=TIMEOUT)
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith("http://localhost:8790/callback?")
    query = redirect_query(resp)
    assert query["state"] == params["state"]

    resp = exchange(fake, query["code"], query["state"], verifier, "http://localhost:8790/callback")
    assert resp.status_code == 200, resp.text
    assert resp.headers["Cache-Control"] == "no-store"
    tokens = resp.json()
    assert set(tokens) == {
        "token_type",
        "access_token",
        "refresh_token",
        "expires_in",
        "scope",
        "organization",
        "account",
    }
    assert tokens["token_type"] == "Bearer"
    assert tokens["access_token"].startswith("sk-ant-oat01-")
    assert tokens["refresh_token"].startswith("sk-ant-ort01-")
    assert tokens["expires_in"] == 28800
    assert tokens["scope"] == PRO_GRANT  # the Pro/Max host grants every user: scope, no org: one
    assert tokens["account"] == {"uuid": fake.account_uuid, "email_address": "claude-user@example.com"}
    assert tokens["organization"] == {
        "uuid": fake.organization_uuid,
        "name": "claude-user@example.com's Organization",
    }
    # The token endpoint accepts a request without anthropic-beta, and records headers.
    token_path = urlsplit(fake.token_url).path
    assert fake.count(token_path, grant_type="authorization_code") == 1
    assert fake.requests_to(token_path)[0].json["code"] == query["code"]
    assert fake.requests_to(urlsplit(fake.authorize_url).path)[0].status == 302


def test_manual_flow_shows_code_and_state(fake: FakeAnthropic) -> None:
    verifier, challenge = make_pkce()
    state = "st<&>" + secrets.token_urlsafe(8)
    resp = authorize(fake, challenge, redirect_uri=fake.manual_redirect_uri, state=state)
    assert resp.status_code == 302
    location = resp.headers["Location"]
    assert location.startswith(fake.manual_redirect_uri + "?")
    query = redirect_query(resp)

    page = requests.get(location, timeout=TIMEOUT)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "st<&>" not in page.text  # escaped
    match = re.search(r"<code[^>]*>(.*?)</code>", page.text)
    assert match
    pasted = unescape(match.group(1))
    assert pasted == f"{query['code']}#{state}"

    code, _, pasted_state = pasted.partition("#")
    resp = exchange(fake, code, pasted_state, verifier, fake.manual_redirect_uri)
    assert resp.status_code == 200, resp.text


def test_code_page_without_code_is_400(fake: FakeAnthropic) -> None:
    assert requests.get(fake.manual_redirect_uri, timeout=TIMEOUT).status_code == 400
    resp = requests.get(fake.manual_redirect_uri, params={"error": "access_denied"}, timeout=TIMEOUT)
    assert resp.status_code == 400 and "access_denied" in resp.text


@pytest.mark.parametrize(
    "overrides",
    [
        {"client_id": "someone-else"},
        {"client_id": None},
        {"redirect_uri": "http://localhost:70000/callback"},
        {"redirect_uri": "http://127.0.0.1:8765/callback"},
        {"redirect_uri": "http://localhost:8765/callback/"},
        {"redirect_uri": None},
    ],
)
def test_authorize_bad_client_or_redirect_is_400_without_redirect(
    fake: FakeAnthropic, overrides: dict[str, str | None]
) -> None:
    _, challenge = make_pkce()
    resp = authorize(fake, challenge, **overrides)
    assert resp.status_code == 400
    assert "Location" not in resp.headers
    assert resp.headers["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code": None}, "invalid_request"),
        ({"code": "false"}, "invalid_request"),
        ({"response_type": None}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": None}, "invalid_request"),
        ({"scope": "user:profile user:inference"}, "invalid_scope"),
        ({"scope": OLD_SCOPE}, "invalid_scope"),
        ({"scope": SCOPE + " user:design:read"}, "invalid_scope"),
        ({"scope": "openid profile"}, "invalid_scope"),
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"code_challenge": "a" * 129}, "invalid_request"),
        ({"code_challenge": "+" * 43}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
    ],
)
def test_authorize_rejects_by_redirecting_an_error(
    fake: FakeAnthropic, overrides: dict[str, str | None], error: str
) -> None:
    _, challenge = make_pkce()
    resp = authorize(fake, challenge, state="keep-me", **overrides)
    assert resp.headers["Location"].startswith(LOOPBACK + "?")
    query = redirect_query(resp)
    assert query["error"] == error
    assert query["error_description"]
    assert query["state"] == "keep-me"
    assert "code" not in query


def test_authorize_scope_any_order_and_missing_state(fake: FakeAnthropic) -> None:
    _, challenge = make_pkce()
    shuffled = " ".join(reversed(AUTHORIZE_SCOPES)).replace(" ", "  ", 1)
    query = redirect_query(authorize(fake, challenge, scope=shuffled))
    assert "code" in query
    query = redirect_query(authorize(fake, challenge, state=None))
    assert query["error"] == "invalid_request" and "state" not in query


def test_authorize_repeated_parameter_rejected(fake: FakeAnthropic) -> None:
    _, challenge = make_pkce()
    params = list(authorize_params(fake, challenge).items()) + [("scope", SCOPE)]
    resp = requests.get(fake.authorize_url, params=params, allow_redirects=False, timeout=TIMEOUT)
    assert redirect_query(resp)["error"] == "invalid_request"


def test_authorize_error_knob(fake: FakeAnthropic) -> None:
    fake.authorize_error = "access_denied"
    _, challenge = make_pkce()
    query = redirect_query(authorize(fake, challenge, state="s1"))
    assert query == {"error": "access_denied", "error_description": query["error_description"], "state": "s1"}


def test_custom_allowed_redirect_uris() -> None:
    with FakeAnthropic(allowed_redirect_uris=["http://localhost:9999/cb"]) as fake:
        _, challenge = make_pkce()
        assert authorize(fake, challenge).status_code == 400
        assert authorize(fake, challenge, redirect_uri="http://localhost:9999/cb").status_code == 302


# ---------------------------------------------------------------- token endpoint strictness


def test_token_requires_json(fake: FakeAnthropic) -> None:
    code, state, verifier = get_code(fake)
    form = {
        "grant_type": "authorization_code",
        "client_id": fake.client_id,
        "code": code,
        "state": state,
        "code_verifier": verifier,
        "redirect_uri": LOOPBACK,
    }
    resp = requests.post(fake.token_url, data=form, timeout=TIMEOUT)
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_request"
    assert fake.requests_to(urlsplit(fake.token_url).path)[0].form == form
    # Not a JSON object.
    resp = requests.post(fake.token_url, json=["x"], timeout=TIMEOUT)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_request"
    # The code is still good after those failures.
    assert exchange(fake, code, state, verifier).status_code == 200


@pytest.mark.parametrize("missing", ["client_id", "code", "state", "code_verifier", "redirect_uri", "grant_type"])
def test_code_exchange_missing_parameter(fake: FakeAnthropic, missing: str) -> None:
    code, state, verifier = get_code(fake)
    resp = exchange(fake, code, state, verifier, **{missing: None})
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("code", "not-a-code"),
        ("state", "another-state"),
        ("code_verifier", "x" * 43),
        ("code_verifier", "short"),
        ("redirect_uri", "http://localhost:8766/callback"),
    ],
)
def test_code_exchange_wrong_value_is_invalid_grant(fake: FakeAnthropic, field: str, value: str) -> None:
    code, state, verifier = get_code(fake)
    resp = exchange(fake, code, state, verifier, **{field: value})
    assert resp.status_code == 400
    body = resp.json()
    assert body["error"] == "invalid_grant"
    assert body["error_description"]


def test_code_exchange_unknown_client_and_grant_type(fake: FakeAnthropic) -> None:
    code, state, verifier = get_code(fake)
    resp = exchange(fake, code, state, verifier, client_id="someone-else")
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"
    resp = exchange(fake, code, state, verifier, grant_type="password")
    assert resp.status_code == 400 and resp.json()["error"] == "unsupported_grant_type"


def test_code_is_single_use_and_replay_revokes(fake: FakeAnthropic) -> None:
    code, state, verifier = get_code(fake)
    first = exchange(fake, code, state, verifier)
    assert first.status_code == 200
    again = exchange(fake, code, state, verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    # RFC 6749 4.1.2: what the code produced is revoked.
    assert refresh(fake, first.json()["refresh_token"]).json()["error"] == "invalid_grant"


def test_code_expires() -> None:
    with FakeAnthropic(code_ttl=600) as fake:
        code, state, verifier = get_code(fake)
        fake.clock_offset = 601
        resp = exchange(fake, code, state, verifier)
        assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"


# ---------------------------------------------------------------- refresh


def test_refresh_rotation_and_reuse(fake: FakeAnthropic) -> None:
    first = fake.mint_tokens()
    resp = refresh(fake, first["refresh_token"])
    assert resp.status_code == 200, resp.text
    second = resp.json()
    assert second["access_token"].startswith("sk-ant-oat01-")
    assert second["refresh_token"].startswith("sk-ant-ort01-")
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["expires_in"] == 28800
    assert second["account"]["email_address"] == fake.email
    assert second["organization"]["uuid"] == fake.organization_uuid

    assert fake.count(urlsplit(fake.token_url).path, grant_type="refresh_token") == 1

    reused = refresh(fake, first["refresh_token"])
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    assert "already used" in reused.json()["error_description"]
    # The whole family is revoked: the new refresh and access tokens die too.
    assert refresh(fake, second["refresh_token"]).json()["error"] == "invalid_grant"
    assert models(fake, oauth_headers(second["access_token"])).status_code == 401


def test_refresh_unknown_missing_and_wrong_client(fake: FakeAnthropic) -> None:
    resp = refresh(fake, "sk-ant-ort01-nope")
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"
    resp = token(fake, {"grant_type": "refresh_token", "client_id": fake.client_id})
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_request"
    tokens = fake.mint_tokens()
    resp = refresh(fake, tokens["refresh_token"], client_id="other")
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"
    # A Pro/Max grant has no org:create_api_key: asking for it again on refresh is refused.
    resp = refresh(fake, tokens["refresh_token"], scope=SCOPE)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_scope"
    assert refresh(fake, tokens["refresh_token"], scope=PRO_GRANT).status_code == 200


def test_refresh_omits_and_identity_changes() -> None:
    with FakeAnthropic(refresh_omits=("refresh_token",)) as fake:
        tokens = fake.mint_tokens()
        fake.email = "new@example.com"
        resp = refresh(fake, tokens["refresh_token"])
        assert resp.status_code == 200
        assert "refresh_token" not in resp.json()
        assert resp.json()["account"]["email_address"] == "new@example.com"
        # No rotation: the old refresh token is still good.
        assert refresh(fake, tokens["refresh_token"]).status_code == 200


def test_revoke_all(fake: FakeAnthropic) -> None:
    tokens = fake.mint_tokens()
    key = fake.mint_api_key()
    fake.revoke_all()
    assert refresh(fake, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    assert models(fake, oauth_headers(tokens["access_token"])).status_code == 401
    assert models(fake, {"x-api-key": key, "anthropic-version": VERSION}).status_code == 401


def test_mint_tokens_overrides(fake: FakeAnthropic) -> None:
    tokens = fake.mint_tokens(email="o@example.com", organization_name="Acme", expires_in=60)
    assert tokens["account"]["email_address"] == "o@example.com"
    assert tokens["organization"]["name"] == "Acme"
    assert tokens["expires_in"] == 60
    with pytest.raises(TypeError):
        fake.mint_tokens(bogus=1)
    expired = fake.mint_tokens(access_token_ttl=-1)
    resp = models(fake, oauth_headers(expired["access_token"]))
    assert resp.status_code == 401 and "expired" in resp.json()["error"]["message"]


# ---------------------------------------------------------------- create_api_key


def test_create_api_key_with_a_console_grant() -> None:
    with FakeAnthropic(plan=None) as fake:
        tokens = fake.mint_tokens(console=True)
        assert tokens["scope"] == "org:create_api_key user:profile"
        resp = requests.post(fake.create_api_key_url, headers={"Authorization": f"Bearer {tokens['access_token']}"},
                             timeout=TIMEOUT)  # no body, as Claude Code sends it
        assert resp.status_code == 200, resp.text
        key = resp.json()["raw_key"]
        assert key.startswith("sk-ant-api03-")
        assert key in fake.issued_api_keys
        listed = models(fake, {"x-api-key": key, "anthropic-version": VERSION})
        assert listed.status_code == 200
        # A Console grant cannot call the API with its bearer: it has no user:inference.
        resp = models(fake, oauth_headers(tokens["access_token"]))
        assert resp.status_code == 403 and api_error_type(resp) == "permission_error"


def test_create_api_key_refused_for_a_pro_max_grant(fake: FakeAnthropic) -> None:
    tokens = fake.mint_tokens()
    resp = create_key(fake, tokens["access_token"])
    assert resp.status_code == 403
    assert api_error_type(resp) == "permission_error"
    assert "org:create_api_key" in resp.json()["error"]["message"]
    assert not fake.issued_api_keys
    # An organisation that does not allow keys refuses a Console grant too (per-grant knob).
    refused = create_key(fake, fake.mint_tokens(console=True, api_key_allowed=False)["access_token"])
    assert refused.status_code == 403 and api_error_type(refused) == "permission_error"


def test_create_api_key_needs_scope() -> None:
    with FakeAnthropic(api_key_allowed=True) as fake:
        tokens = fake.mint_tokens(scope="user:profile user:inference")
        resp = create_key(fake, tokens["access_token"])
        assert resp.status_code == 403 and api_error_type(resp) == "permission_error"


@pytest.mark.parametrize("bad", [None, "sk-ant-oat01-unknown", "expired"])
def test_create_api_key_unauthenticated(fake: FakeAnthropic, bad: str | None) -> None:
    fake.api_key_allowed = True
    if bad == "expired":
        bad = fake.mint_tokens()["access_token"]
        fake.expire_access_tokens()
    resp = create_key(fake, bad)
    assert resp.status_code == 401
    assert api_error_type(resp) == "authentication_error"


# ---------------------------------------------------------------- models


def test_models_with_api_key(fake: FakeAnthropic) -> None:
    key = fake.mint_api_key()
    resp = models(fake, {"x-api-key": key, "anthropic-version": VERSION})
    assert resp.status_code == 200
    body = resp.json()
    ids = [m["id"] for m in body["data"]]
    assert "claude-opus-4-1-20250805" in ids
    assert "claude-sonnet-4-20250514" in ids
    assert "claude-3-5-haiku-20241022" in ids
    assert body["has_more"] is False
    assert body["first_id"] == ids[0] and body["last_id"] == ids[-1]
    opus = body["data"][0]
    assert opus == {
        "type": "model",
        "id": "claude-opus-4-1-20250805",
        "display_name": "Claude Opus 4.1",
        "created_at": "2025-08-05T00:00:00Z",
    }


def test_models_pagination(fake: FakeAnthropic) -> None:
    key = fake.mint_api_key()
    headers = {"x-api-key": key, "anthropic-version": VERSION}
    first = models(fake, headers, limit=2).json()
    assert len(first["data"]) == 2 and first["has_more"] is True
    rest = models(fake, headers, after_id=first["last_id"]).json()
    assert rest["has_more"] is False
    assert [m["id"] for m in first["data"] + rest["data"]] == [m["id"] for m in fake.models]


def test_models_with_bearer_and_beta(fake: FakeAnthropic) -> None:
    tokens = fake.mint_tokens()
    resp = models(fake, oauth_headers(tokens["access_token"], beta=f"interleaved-thinking-2025-05-14,{OAUTH_BETA}"))
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["data"]) == len(fake.models)
    single = requests.get(
        fake.api_base + "/v1/models/claude-sonnet-4-20250514",
        headers=oauth_headers(tokens["access_token"]),
        timeout=TIMEOUT,
    )
    assert single.status_code == 200 and single.json()["display_name"] == "Claude Sonnet 4"


def test_models_bearer_without_beta_refused(fake: FakeAnthropic) -> None:
    tokens = fake.mint_tokens()
    resp = models(fake, oauth_headers(tokens["access_token"], beta=None))
    assert resp.status_code == 401
    assert api_error_type(resp) == "authentication_error"
    assert resp.json()["error"]["message"] == "OAuth authentication is currently not supported."


def test_models_missing_version_refused(fake: FakeAnthropic) -> None:
    tokens = fake.mint_tokens()
    resp = models(fake, oauth_headers(tokens["access_token"], version=None))
    assert resp.status_code == 400
    assert api_error_type(resp) == "invalid_request_error"
    resp = models(fake, {"x-api-key": fake.mint_api_key()})
    assert resp.status_code == 400 and api_error_type(resp) == "invalid_request_error"


def test_models_bad_credentials(fake: FakeAnthropic) -> None:
    assert models(fake, {"anthropic-version": VERSION}).status_code == 401
    resp = models(fake, {"x-api-key": "sk-ant-api03-nope", "anthropic-version": VERSION})
    assert resp.status_code == 401 and api_error_type(resp) == "authentication_error"
    resp = models(fake, oauth_headers("sk-ant-oat01-nope"))
    assert resp.status_code == 401 and api_error_type(resp) == "authentication_error"
    tokens = fake.mint_tokens()
    fake.expire_access_tokens()
    resp = models(fake, oauth_headers(tokens["access_token"]))
    assert resp.status_code == 401 and "expired" in resp.json()["error"]["message"]
    # A token without user:inference may not call the API.
    tokens = fake.mint_tokens(scope="user:profile")
    resp = models(fake, oauth_headers(tokens["access_token"]))
    assert resp.status_code == 403 and api_error_type(resp) == "permission_error"


@pytest.mark.parametrize(("plan", "org_type"), [("max", "claude_max"), ("pro", "claude_pro"),
                                                ("team", "claude_team"), (None, "api")])
def test_profile_shows_plan(fake: FakeAnthropic, plan: str | None, org_type: str) -> None:
    tokens = fake.mint_tokens(plan=plan)
    resp = requests.get(
        fake.profile_url, headers={"Authorization": "Bearer " + tokens["access_token"]}, timeout=TIMEOUT
    )
    assert resp.status_code == 200
    body = resp.json()
    assert body["account"]["uuid"] == fake.account_uuid and body["account"]["email"] == fake.email
    assert body["account"]["has_claude_max"] is (plan == "max")
    assert body["organization"]["organization_type"] == org_type
    assert body["organization"]["uuid"] == fake.organization_uuid
    assert requests.get(fake.profile_url, timeout=TIMEOUT).status_code == 401


def test_roles(fake: FakeAnthropic) -> None:
    tokens = fake.mint_tokens(console=True, organization_role="developer", organization_name="Acme")
    resp = requests.get(fake.roles_url, headers={"Authorization": "Bearer " + tokens["access_token"]},
                        timeout=TIMEOUT)
    assert resp.status_code == 200
    assert resp.json() == {"organization_role": "developer", "workspace_role": None, "organization_name": "Acme"}
    assert requests.get(fake.roles_url, timeout=TIMEOUT).status_code == 401
    no_profile = fake.mint_tokens(scope="user:inference")
    resp = requests.get(fake.roles_url, headers={"Authorization": "Bearer " + no_profile["access_token"]},
                        timeout=TIMEOUT)
    assert resp.status_code == 403


# ---------------------------------------------------------------- Claude Code 2.1.x: hosts, grants, revoke


def test_console_host_grants_keys_and_pro_host_grants_inference(fake: FakeAnthropic) -> None:
    code, state, verifier = get_code(fake, console=True)
    console = exchange(fake, code, state, verifier)
    assert console.status_code == 200, console.text
    assert console.json()["scope"] == "org:create_api_key user:profile"
    code, state, verifier = get_code(fake)
    pro = exchange(fake, code, state, verifier)
    assert pro.json()["scope"] == PRO_GRANT
    # Refreshing with the granted scopes works for both.
    assert refresh(fake, console.json()["refresh_token"], scope=console.json()["scope"]).status_code == 200
    assert refresh(fake, pro.json()["refresh_token"], scope=pro.json()["scope"]).status_code == 200


def test_inference_only_is_a_pro_max_request_only(fake: FakeAnthropic) -> None:
    _, challenge = make_pkce()
    query = redirect_query(authorize(fake, challenge, scope="user:inference"))
    assert "code" in query
    query = redirect_query(authorize(fake, challenge, scope="user:inference", console=True))
    assert query["error"] == "invalid_scope"


def test_the_old_scope_set_is_refused_at_both_hosts(fake: FakeAnthropic) -> None:
    _, challenge = make_pkce()
    for console in (False, True):
        query = redirect_query(authorize(fake, challenge, scope=OLD_SCOPE, console=console))
        assert query["error"] == "invalid_scope" and "code" not in query
        assert SCOPE in query["error_description"]


def test_retired_hosts_and_paths_answer_404(fake: FakeAnthropic) -> None:
    code, state, verifier = get_code(fake)
    body = {"grant_type": "authorization_code", "client_id": fake.client_id, "code": code, "state": state,
            "code_verifier": verifier, "redirect_uri": LOOPBACK}
    for url in (fake.retired_token_url, fake.issuer + "/v1/oauth/token"):
        assert requests.post(url, json=body, timeout=TIMEOUT).status_code == 404, url
    _, challenge = make_pkce()
    params = authorize_params(fake, challenge)
    for url in (fake.retired_authorize_url, fake.issuer + "/oauth/authorize"):
        assert requests.get(url, params=params, allow_redirects=False, timeout=TIMEOUT).status_code == 404, url
    # The code was not spent by those: the real token endpoint still takes it.
    assert exchange(fake, code, state, verifier).status_code == 200


def test_success_page(fake: FakeAnthropic) -> None:
    page = requests.get(fake.success_url, timeout=TIMEOUT)
    assert page.status_code == 200 and "Login successful" in page.text


def revoke(fake: FakeAnthropic, body: Any, **kwargs: Any) -> requests.Response:
    return requests.post(fake.revoke_url, json=body, timeout=TIMEOUT, **kwargs)


def test_revoking_a_refresh_token_ends_its_whole_sign_in(fake: FakeAnthropic) -> None:
    ended, kept = fake.mint_tokens(), fake.mint_tokens()
    resp = revoke(fake, {"token": ended["refresh_token"], "token_type_hint": "refresh_token",
                         "client_id": fake.client_id})
    assert resp.status_code == 200 and resp.headers["request-id"].startswith("req_")
    assert refresh(fake, ended["refresh_token"]).json()["error"] == "invalid_grant"
    assert models(fake, oauth_headers(ended["access_token"])).status_code == 401
    assert models(fake, oauth_headers(kept["access_token"])).status_code == 200
    # Unknown tokens are answered 200 as well (RFC 7009 2.2).
    assert revoke(fake, {"token": "sk-ant-ort01-nope", "token_type_hint": "refresh_token",
                         "client_id": fake.client_id}).status_code == 200


def test_revoke_is_strict_about_its_request(fake: FakeAnthropic) -> None:
    tokens = fake.mint_tokens()
    good = {"token": tokens["refresh_token"], "token_type_hint": "refresh_token", "client_id": fake.client_id}
    form = requests.post(fake.revoke_url, data=good, timeout=TIMEOUT)
    assert form.status_code == 400 and form.json()["error"] == "invalid_request"
    assert revoke(fake, dict(good, client_id="other")).json()["error"] == "invalid_client"
    assert revoke(fake, {k: v for k, v in good.items() if k != "client_id"}).status_code in (400, 401)
    assert revoke(fake, {k: v for k, v in good.items() if k != "token"}).json()["error"] == "invalid_request"
    assert revoke(fake, dict(good, token_type_hint="id_token")).json()["error"] == "unsupported_token_type"
    assert refresh(fake, tokens["refresh_token"]).status_code == 200  # none of those revoked anything


# ---------------------------------------------------------------- messages


def message_body(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "claude-sonnet-4-20250514",
        "max_tokens": 16,
        "system": CLAUDE_CODE_SYSTEM_PREFIX,
        "messages": [{"role": "user", "content": "ping"}],
    }
    body.update(extra)
    return body


def test_messages_json(fake: FakeAnthropic) -> None:
    tokens = fake.mint_tokens()
    resp = requests.post(
        fake.api_base + "/v1/messages",
        json=message_body(),
        headers=oauth_headers(tokens["access_token"]),
        timeout=TIMEOUT,
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["type"] == "message" and body["role"] == "assistant"
    assert body["content"] == [{"type": "text", "text": "pong"}]
    assert body["model"] == "claude-sonnet-4-20250514"
    assert body["id"].startswith("msg_")


def test_messages_validation_and_auth(fake: FakeAnthropic) -> None:
    tokens = fake.mint_tokens()
    url = fake.api_base + "/v1/messages"
    no_beta = requests.post(
        url, json=message_body(), headers=oauth_headers(tokens["access_token"], beta=None), timeout=TIMEOUT
    )
    assert no_beta.status_code == 401
    resp = requests.post(
        url, json={"model": "claude-sonnet-4-20250514"}, headers=oauth_headers(tokens["access_token"]), timeout=TIMEOUT
    )
    assert resp.status_code == 400 and api_error_type(resp) == "invalid_request_error"
    resp = requests.post(
        url, json=message_body(model="claude-nope"), headers=oauth_headers(tokens["access_token"]), timeout=TIMEOUT
    )
    assert resp.status_code == 404 and api_error_type(resp) == "not_found_error"


def test_messages_claude_code_system_line(fake: FakeAnthropic) -> None:
    headers = oauth_headers(fake.mint_tokens()["access_token"])
    url = fake.api_base + "/v1/messages"
    for system in ("Be brief.", None, [{"type": "text", "text": "Be brief."}],
                   [{"type": "text", "text": CLAUDE_CODE_SYSTEM_PREFIX + " Be brief."}]):
        resp = requests.post(url, json=message_body(system=system), headers=headers, timeout=TIMEOUT)
        assert resp.status_code == 400 and api_error_type(resp) == "invalid_request_error", system
        assert "only authorized for use with Claude Code" in resp.json()["error"]["message"]
    good = ([{"type": "text", "text": CLAUDE_CODE_SYSTEM_PREFIX}, {"type": "text", "text": "Be brief."}],
            CLAUDE_CODE_SYSTEM_PREFIX + "\nBe brief.")
    for system in good:
        assert requests.post(url, json=message_body(system=system), headers=headers, timeout=TIMEOUT).ok
    # Haiku is exempt; so are API keys; and the knob turns the rule off.
    haiku = message_body(model="claude-3-5-haiku-20241022", system="Be brief.")
    assert requests.post(url, json=haiku, headers=headers, timeout=TIMEOUT).status_code == 200
    key_headers = {"x-api-key": fake.mint_api_key(), "anthropic-version": VERSION}
    assert requests.post(url, json=message_body(system="x"), headers=key_headers, timeout=TIMEOUT).status_code == 200
    fake.require_claude_code_system = False
    assert requests.post(url, json=message_body(system="x"), headers=headers, timeout=TIMEOUT).status_code == 200


def test_messages_tools_are_called_and_results_must_answer_a_call(fake: FakeAnthropic) -> None:
    headers = oauth_headers(fake.mint_tokens()["access_token"])
    url = fake.api_base + "/v1/messages"
    tools = [{"name": "weather", "description": "Weather in a city",
              "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    resp = requests.post(url, json=message_body(tools=tools), headers=headers, timeout=TIMEOUT)
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert answer["stop_reason"] == "tool_use"
    text, call = answer["content"]
    assert text == {"type": "text", "text": fake.tool_preamble}
    assert call["type"] == "tool_use" and call["name"] == "weather" and call["input"] == {"city": "Paris"}
    assert resp.headers["anthropic-ratelimit-unified-5h-utilization"] == "0.21"
    turn = [{"role": "user", "content": "weather?"}, {"role": "assistant", "content": answer["content"]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"], "content": "sunny"}]}]
    done = requests.post(url, json=message_body(tools=tools, messages=turn), headers=headers, timeout=TIMEOUT)
    assert done.status_code == 200 and done.json()["content"] == [{"type": "text", "text": "pong"}]
    turn[2]["content"][0]["tool_use_id"] = "toolu_unknown"
    stray = requests.post(url, json=message_body(tools=tools, messages=turn), headers=headers, timeout=TIMEOUT)
    assert stray.status_code == 400 and "unexpected `tool_use_id`" in stray.json()["error"]["message"]
    no_schema = requests.post(url, json=message_body(tools=[{"name": "x"}]), headers=headers, timeout=TIMEOUT)
    assert no_schema.status_code == 400 and "input_schema" in no_schema.json()["error"]["message"]
    system_role = message_body(messages=[{"role": "system", "content": "x"}, {"role": "user", "content": "y"}])
    assert requests.post(url, json=system_role, headers=headers, timeout=TIMEOUT).status_code == 400


def test_messages_stream_tool_use_as_input_json_deltas(fake: FakeAnthropic) -> None:
    headers = oauth_headers(fake.mint_tokens()["access_token"])
    fake.stream_delay = 0
    tools = [{"name": "weather", "input_schema": {"type": "object"}}]
    resp = requests.post(fake.api_base + "/v1/messages", json=message_body(tools=tools, stream=True),
                         headers=headers, timeout=TIMEOUT)
    datas = [json.loads(line[6:]) for line in resp.text.splitlines() if line.startswith("data: ")]
    kinds = [d["type"] for d in datas]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    starts = [d["content_block"] for d in datas if d["type"] == "content_block_start"]
    assert [b["type"] for b in starts] == ["text", "tool_use"] and starts[1]["input"] == {}
    partial = "".join(d["delta"]["partial_json"] for d in datas
                      if d["type"] == "content_block_delta" and d["delta"]["type"] == "input_json_delta")
    assert json.loads(partial) == {"city": "Paris"}
    assert datas[-2]["delta"]["stop_reason"] == "tool_use" and datas[-2]["usage"]["output_tokens"] >= 1


def test_messages_stream_arrives_in_chunks(fake: FakeAnthropic) -> None:
    key = fake.mint_api_key()
    fake.stream_hold = threading.Event()  # the fake stops after its first events until released
    fake.stream_hold_timeout = 10
    with requests.post(
        fake.api_base + "/v1/messages",
        json=message_body(stream=True),
        headers={"x-api-key": key, "anthropic-version": VERSION},
        stream=True,
        timeout=TIMEOUT,
    ) as resp:
        assert resp.status_code == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        lines = resp.iter_lines()
        assert next(lines) == b"event: message_start"
        # Received before the fake lets the rest go (only this test releases it): sent as it came,
        # not buffered to the end. The fake reaches its hold just after sending this line: wait for it.
        assert fake.stream_held.wait(10) and not fake.stream_released.is_set()
        fake.stream_hold.set()
        text = "\n".join(["event: message_start", *(line.decode() for line in lines)])
    events = [line[len("event: ") :] for line in text.splitlines() if line.startswith("event: ")]
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert events.count("content_block_delta") == 3
    datas = [json.loads(line[len("data: ") :]) for line in text.splitlines() if line.startswith("data: ")]
    deltas = "".join(d["delta"]["text"] for d in datas if d["type"] == "content_block_delta")
    assert deltas == "pong"


def test_stream_iter_lines_and_keepalive(fake: FakeAnthropic) -> None:
    headers = oauth_headers(fake.mint_tokens()["access_token"])
    with requests.Session() as session:
        for _ in range(2):  # the connection is reusable after a chunked answer
            with session.post(
                fake.api_base + "/v1/messages",
                json=message_body(stream=True),
                headers=headers,
                stream=True,
                timeout=TIMEOUT,
            ) as resp:
                lines = [line for line in resp.iter_lines() if line]
            assert lines[-1] == b'data: {"type": "message_stop"}'


# ---------------------------------------------------------------- fail_next, misc


def test_fail_next(fake: FakeAnthropic) -> None:
    tokens = fake.mint_tokens()
    fake.fail_next(fake.token_url, 500, times=2)
    assert refresh(fake, tokens["refresh_token"]).status_code == 500
    resp = refresh(fake, tokens["refresh_token"])
    assert resp.status_code == 500 and api_error_type(resp) == "api_error"
    # The injected failures did not consume the refresh token.
    assert refresh(fake, tokens["refresh_token"]).status_code == 200

    fake.fail_next("/v1/models", 529)
    resp = models(fake, oauth_headers(tokens["access_token"]))
    assert resp.status_code == 529 and api_error_type(resp) == "overloaded_error"

    fake.fail_next("/v1/models", 429, body={"custom": True}, headers={"retry-after": "1"})
    resp = models(fake, oauth_headers(tokens["access_token"]))
    assert resp.status_code == 429 and resp.json() == {"custom": True} and resp.headers["retry-after"] == "1"

    fake.fail_next("/v1/models", 503, body="down", delay=0.2)
    began = time.monotonic()
    resp = models(fake, oauth_headers(tokens["access_token"]))
    assert resp.status_code == 503 and resp.text == "down"
    assert time.monotonic() - began >= 0.2
    assert fake.count("/v1/models") == 3
    assert [r.status for r in fake.requests_to("/v1/models")] == [529, 429, 503]
    with pytest.raises(ValueError):
        fake.fail_next("/x", 500, times=0)


def test_unknown_path_and_method(fake: FakeAnthropic) -> None:
    resp = requests.get(fake.issuer + "/nope", timeout=TIMEOUT)
    assert resp.status_code == 404 and api_error_type(resp) == "not_found_error"
    resp = requests.get(fake.token_url, timeout=TIMEOUT)
    assert resp.status_code == 405 and resp.headers["Allow"] == "POST"


def test_concurrent_refreshes_only_one_wins(fake: FakeAnthropic) -> None:
    tokens = fake.mint_tokens()
    statuses: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        status = refresh(fake, tokens["refresh_token"]).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] + [400] * 5
