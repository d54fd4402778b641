"""A strict, in-process fake of Anthropic's sign-in for Claude Code and of its API.

One loopback HTTP server stands in for three real hosts:

* ``claude.ai`` — ``GET /oauth/authorize`` (auto-approves: there is no person);
* ``console.anthropic.com`` / ``platform.claude.com`` — ``POST /v1/oauth/token``
  and the manual-flow page ``GET /oauth/code/callback`` that shows ``code#state``;
* ``api.anthropic.com`` — ``POST /api/oauth/claude_cli/create_api_key``,
  ``GET /api/oauth/profile``, ``GET /v1/models`` and ``POST /v1/messages``.

Why a real HTTP server and why strict: see :mod:`oauth_core.testing.fake_openai`,
whose conventions this module follows (same lifecycle, same knobs-as-attributes,
same :class:`RecordedRequest` log, same ``fail_next``/``count``/``requests_to``).

Error shapes, as the real hosts use them:

* at ``/v1/oauth/token``: ``400 {"error", "error_description"}`` (RFC 6749 5.2);
* on ``api.anthropic.com``: ``{"type": "error", "error": {"type", "message"}}``
  with ``type`` one of ``invalid_request_error``, ``authentication_error``,
  ``permission_error``, ``not_found_error``, ``rate_limit_error``, ``api_error``,
  ``overloaded_error``.

Tokens are opaque strings shaped like Anthropic's (``sk-ant-oat01-…`` access,
``sk-ant-ort01-…`` refresh, ``sk-ant-api03-…`` API keys); the fake looks them up
in its own tables. All state lives behind one lock: the server answers each
connection on its own thread while the test thread reads and tweaks the same
state. Nothing is logged: URLs and bodies carry codes and tokens.
"""

from __future__ import annotations

import html
import json
import secrets
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from oauth_core.testing._grants import (
    AccessRecord,
    AuthCode,
    CodeErrors,
    Grant,
    RefreshRecord,
    VendorGrantBook,
    pkce_matches,
)
from oauth_core.testing._server import (
    CHALLENGE_RE,
    JSON,
    NO_STORE,
    VERIFIER_RE,
    RecordedRequest,
    ReplyError,
    Request,
    RequestHandler,
    Response,
    add_query,
    check_overrides,
    html_page,
    json_response,
    oauth_error,
    serve_until_interrupted,
    single,
    str_param,
    text_page,
)

__all__ = [
    "CLAUDE_CODE_SYSTEM_PREFIX",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_MODELS",
    "LOOPBACK_PORTS",
    "OAUTH_BETA",
    "SCOPES",
    "FakeAnthropic",
    "RecordedRequest",
]

DEFAULT_CLIENT_ID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
#: The ``anthropic-beta`` value that lets an OAuth access token be used as Bearer.
OAUTH_BETA = "oauth-2025-04-20"
#: The scope set Claude Code asks for (space separated, any order).
SCOPES = frozenset({"org:create_api_key", "user:profile", "user:inference"})
#: Loopback callback ports on the default redirect allow-list (Code Puppy's range).
LOOPBACK_PORTS = range(8765, 8796)
#: What an OAuth-authenticated /v1/messages system prompt must start with when
#: ``require_claude_code_system`` is on.
CLAUDE_CODE_SYSTEM_PREFIX = "You are Claude Code, Anthropic's official CLI for Claude."

DEFAULT_MODELS: tuple[dict[str, Any], ...] = (
    {
        "type": "model",
        "id": "claude-opus-4-1-20250805",
        "display_name": "Claude Opus 4.1",
        "created_at": "2025-08-05T00:00:00Z",
    },
    {
        "type": "model",
        "id": "claude-opus-4-20250514",
        "display_name": "Claude Opus 4",
        "created_at": "2025-05-22T00:00:00Z",
    },
    {
        "type": "model",
        "id": "claude-sonnet-4-20250514",
        "display_name": "Claude Sonnet 4",
        "created_at": "2025-05-22T00:00:00Z",
    },
    {
        "type": "model",
        "id": "claude-3-7-sonnet-20250219",
        "display_name": "Claude Sonnet 3.7",
        "created_at": "2025-02-24T00:00:00Z",
    },
    {
        "type": "model",
        "id": "claude-3-5-haiku-20241022",
        "display_name": "Claude Haiku 3.5",
        "created_at": "2024-10-22T00:00:00Z",
    },
)

_IDENTITY_FIELDS = frozenset(
    {
        "email",
        "account_uuid",
        "organization_uuid",
        "organization_name",
        "plan",
        "api_key_allowed",
        "access_token_ttl",
    }
)


# ---------------------------------------------------------------------- records


@dataclass(kw_only=True)
class _AuthCode(AuthCode):
    #: The manual flow shows code#state, and the exchange must send the state back.
    state: str


def _request_id() -> str:
    return "req_" + secrets.token_hex(12)


def _api_error(status: int, type_: str, message: str) -> ReplyError:
    """Anthropic's API error envelope."""
    rid = _request_id()
    return ReplyError(
        json_response(
            status,
            {"type": "error", "error": {"type": type_, "message": message}, "request_id": rid},
            {"request-id": rid},
        )
    )


def _random(nbytes: int = 48) -> str:
    return secrets.token_urlsafe(nbytes)


def _betas(headers: Any) -> set[str]:
    """The ``anthropic-beta`` values (comma separated, possibly repeated headers)."""
    values = headers.get_all("anthropic-beta") if hasattr(headers, "get_all") else None
    if values is None:
        one = headers.get("anthropic-beta")
        values = [one] if one else []
    out: set[str] = set()
    for value in values:
        out.update(part.strip() for part in value.split(",") if part.strip())
    return out


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _split3(text: str) -> list[str]:
    """Split text into three non-empty-ish parts (for three text deltas)."""
    if len(text) < 3:
        return [text, "", ""] if text else ["", "", ""]
    a = len(text) // 3
    b = 2 * len(text) // 3
    return [text[:a], text[a:b], text[b:]]


_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


class _Handler(RequestHandler):
    server_version = "fake-anthropic"


class FakeAnthropic(VendorGrantBook):
    """Fake of claude.ai / console.anthropic.com OAuth (PKCE, manual code page,
    refresh rotation) and of api.anthropic.com (API-key creation, profile,
    models, messages).

    Every constructor argument is also a plain attribute that tests may change
    between steps (e.g. ``fake.api_key_allowed = True``). Identity values are
    read when tokens are minted or used, so a change applies to later requests.
    ``fail_next`` without a body answers Anthropic's error envelope with the type
    that fits the status (429 rate_limit_error, 529 overloaded_error, …).

    Typical use::

        with FakeAnthropic() as fake:
            tokens = fake.mint_tokens()
            requests.get(fake.api_base + "/v1/models", headers={
                "Authorization": "Bearer " + tokens["access_token"],
                "anthropic-version": "2023-06-01", "anthropic-beta": OAUTH_BETA})
    """

    _handler_class = _Handler
    _label = "FakeAnthropic"
    _code_errors = CodeErrors(
        unknown="Invalid 'code' in request.",
        used="Authorization code has already been used.",
        expired="Authorization code has expired.",
        other_client="Code was issued to another client.",
    )

    def __init__(
        self,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        email: str = "claude-user@example.com",
        account_uuid: str = "5a1d2c3b-0000-4000-8000-00000000a001",
        organization_uuid: str = "7e0f9a8b-0000-4000-8000-00000000f001",
        organization_name: str | None = None,
        plan: str | None = "max",
        api_key_allowed: bool = False,
        access_token_ttl: int = 28800,
        refresh_token_ttl: float | None = None,
        code_ttl: float = 600,
        refresh_omits: tuple[str, ...] = (),
        revoke_family_on_reuse: bool = True,
        models: list[dict[str, Any]] | None = None,
        allowed_redirect_uris: list[str] | None = None,
        authorize_error: str | None = None,
        reply_text: str = "pong",
        stream_delay: float = 0.05,
        require_claude_code_system: bool = False,
        clock_offset: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        connection_timeout: float = 10.0,
    ) -> None:
        super().__init__(host=host, port=port, connection_timeout=connection_timeout, clock_offset=clock_offset)
        self.client_id = client_id
        self.email = email
        self.account_uuid = account_uuid
        self.organization_uuid = organization_uuid
        #: None means "<email>'s Organization", like a fresh Anthropic account.
        self.organization_name = organization_name
        #: Subscription: "max", "pro", "team", "enterprise"; None for a Console-only account.
        self.plan = plan
        #: A Console org may mint an API key; a Pro/Max account gets 403 permission_error.
        self.api_key_allowed = api_key_allowed
        self.access_token_ttl = access_token_ttl
        self.refresh_token_ttl = refresh_token_ttl
        self.code_ttl = code_ttl
        #: Fields left out of a refresh answer. Leaving out "refresh_token" also
        #: means no rotation: the old refresh token stays valid.
        self.refresh_omits = tuple(refresh_omits)
        #: A reused refresh token is treated as theft and kills its whole family.
        self.revoke_family_on_reuse = revoke_family_on_reuse
        self.models: list[dict[str, Any]] = (
            [dict(m) for m in models] if models is not None else [dict(m) for m in DEFAULT_MODELS]
        )
        self.allowed_redirect_uris = allowed_redirect_uris
        #: When set (e.g. "access_denied"), authorize redirects with this error.
        self.authorize_error = authorize_error
        #: The assistant's answer on /v1/messages (streamed as three deltas).
        self.reply_text = reply_text
        #: Sleep between streamed content_block_delta events.
        self.stream_delay = stream_delay
        #: When set to an Event, a stream stops after its first events (message_start,
        #: content_block_start, ping) and waits for the test to set it (at most
        #: ``stream_hold_timeout`` s) before the deltas: a client that already has the
        #: first events proves they were sent as they came, not buffered to the end.
        #: ``stream_held`` is set while a stream waits, ``stream_released`` once it goes on.
        self.stream_hold: threading.Event | None = None
        self.stream_hold_timeout = 30.0
        self.stream_held = threading.Event()
        self.stream_released = threading.Event()
        #: Reject OAuth-authenticated /v1/messages whose system prompt does not
        #: start with CLAUDE_CODE_SYSTEM_PREFIX (what the real API does for some
        #: subscription tokens).
        self.require_claude_code_system = require_claude_code_system

        #: Valid API keys (create_api_key answers, mint_api_key). Discard one to revoke it.
        self.issued_api_keys: set[str] = set()

        self._routes = {
            "/oauth/authorize": {"GET": self._authorize},
            "/oauth/code/callback": {"GET": self._code_page},
            "/v1/oauth/token": {"POST": self._token},
            "/api/oauth/claude_cli/create_api_key": {"POST": self._create_api_key},
            "/api/oauth/profile": {"GET": self._profile},
            "/v1/models": {"GET": self._models},
            "/v1/messages": {"POST": self._messages},
        }
        self._prefix_routes = {"/v1/models/": {"GET": self._model}}

    # ------------------------------------------------------------------ addresses

    @property
    def issuer(self) -> str:
        """Base URL of the fake; stands in for claude.ai and console.anthropic.com."""
        return super().issuer

    @property
    def authorize_url(self) -> str:
        """Stands in for ``https://claude.ai/oauth/authorize``."""
        return self.issuer + "/oauth/authorize"

    @property
    def token_url(self) -> str:
        """Stands in for ``https://console.anthropic.com/v1/oauth/token``."""
        return self.issuer + "/v1/oauth/token"

    @property
    def manual_redirect_uri(self) -> str:
        """Stands in for ``https://console.anthropic.com/oauth/code/callback``."""
        return self.issuer + "/oauth/code/callback"

    @property
    def api_base(self) -> str:
        """Stands in for ``https://api.anthropic.com`` (models at ``api_base + "/v1/models"``)."""
        return self.issuer

    @property
    def create_api_key_url(self) -> str:
        """Stands in for ``https://api.anthropic.com/api/oauth/claude_cli/create_api_key``."""
        return self.issuer + "/api/oauth/claude_cli/create_api_key"

    @property
    def profile_url(self) -> str:
        """Stands in for ``https://api.anthropic.com/api/oauth/profile``."""
        return self.issuer + "/api/oauth/profile"

    def redirect_uris(self) -> list[str]:
        """The effective redirect-URI allow-list."""
        if self.allowed_redirect_uris is not None:
            return list(self.allowed_redirect_uris)
        uris = [f"http://localhost:{port}/callback" for port in LOOPBACK_PORTS]
        uris.append(self.manual_redirect_uri)
        return uris

    # ------------------------------------------------------------------ test knobs

    def mint_tokens(self, *, scope: str | None = None, **overrides: Any) -> dict[str, Any]:
        """A fresh, valid token answer as if a browser sign-in had just completed.

        Lets a test seed a token file without driving a login. ``overrides``
        replace identity attributes for this grant only (and its refreshes):
        ``email``, ``account_uuid``, ``organization_uuid``, ``organization_name``,
        ``plan``, ``api_key_allowed`` and ``access_token_ttl`` (alias
        ``expires_in``; may be negative to mint an already-expired token).
        ``scope`` defaults to the full Claude Code scope set.
        Returns the same shape as the code exchange: ``{token_type, access_token,
        refresh_token, expires_in, scope, organization, account}``.
        """
        check_overrides(overrides, _IDENTITY_FIELDS)
        with self._lock:
            grant = self._new_grant(self.client_id, scope if scope is not None else _scope_string(SCOPES))
            grant.overrides = dict(overrides)
            return self._issue(grant)

    def mint_api_key(self) -> str:
        """A valid ``sk-ant-api03-`` key, as if create_api_key had been called."""
        key = "sk-ant-api03-" + _random(64)
        with self._lock:
            self.issued_api_keys.add(key)
        return key

    @staticmethod
    def _recorded_grant_type(record: RecordedRequest) -> Any:
        """The token endpoint takes JSON only, so count() looks at the JSON body only."""
        return (record.json or {}).get("grant_type")

    # ------------------------------------------------------------------ tokens

    def _identity(self, overrides: dict[str, Any]) -> dict[str, Any]:
        ident = {name: getattr(self, name) for name in _IDENTITY_FIELDS}
        ident.update(overrides)
        if not ident.get("organization_name"):
            ident["organization_name"] = f"{ident['email']}'s Organization"
        return ident

    def _issue(self, grant: Grant, with_refresh: bool = True) -> dict[str, Any]:
        """Mint access(/refresh) tokens for ``grant``; caller holds the lock."""
        ident = self._identity(grant.overrides)
        ttl = int(ident["access_token_ttl"])
        access = "sk-ant-oat01-" + _random(72)
        self._access[access] = AccessRecord(grant.grant_id, self.now() + ttl)
        out: dict[str, Any] = {"token_type": "Bearer", "access_token": access}
        if with_refresh:
            refresh = "sk-ant-ort01-" + _random(72)
            self._refresh[refresh] = RefreshRecord(grant.grant_id, self.now())
            out["refresh_token"] = refresh
        out.update(
            {
                "expires_in": ttl,
                "scope": grant.scope,
                "organization": {"uuid": ident["organization_uuid"], "name": ident["organization_name"]},
                "account": {"uuid": ident["account_uuid"], "email_address": ident["email"]},
            }
        )
        return out

    def _check_access_token(self, token: str) -> Grant | str:
        """The grant of a usable access token, or why it is not usable."""
        with self._lock:
            rec = self._access.get(token)
            if rec is None:
                return "invalid"
            grant = self._grants.get(rec.grant_id)
            if grant is None or grant.revoked or rec.revoked:
                return "revoked"
            if rec.force_expired or self.now() >= rec.expires_at:
                return "expired"
            return grant

    # ------------------------------------------------------------------ dispatch

    def _not_found(self, req: Request) -> Response:
        return _api_error(404, "not_found_error", "Not found").response

    def _method_not_allowed(self, req: Request) -> Response:
        return _api_error(405, "invalid_request_error", f"Method {req.method} not allowed").response

    def _length_required(self) -> Response:
        return _api_error(411, "invalid_request_error", "Length required").response

    def _bad_body_length(self, status: int) -> Response:
        return _api_error(status, _ERROR_TYPES[status], "Bad body length").response

    def _internal_error(self) -> Response:
        return _api_error(500, "api_error", "Internal error in fake").response

    def _injected_failure(self, status: int) -> Response:
        return _api_error(status, _ERROR_TYPES.get(status, "api_error"), "Injected failure").response

    # ------------------------------------------------------------------ /oauth/authorize

    def _authorize(self, req: Request) -> Response:
        q = req.query
        # RFC 6749 4.1.2.1: with a bad client or redirect URI, never redirect.
        try:
            client_id = single(q, "client_id")
            redirect_uri = single(q, "redirect_uri")
        except ValueError as exc:
            return text_page(400, "Invalid request", f"Parameter '{exc}' was given more than once.")
        if client_id is None or client_id != self.client_id:
            return text_page(400, "Invalid OAuth Request", "Unknown client_id.")
        if redirect_uri is None or redirect_uri not in self.redirect_uris():
            return text_page(400, "Invalid OAuth Request", "Invalid redirect_uri.")

        try:
            state = single(q, "state")
        except ValueError:
            state = None

        def fail(error: str, description: str) -> Response:
            params = {"error": error, "error_description": description}
            if state:
                params["state"] = state
            return Response(302, b"", "text/plain", {"Location": add_query(redirect_uri, params)})

        for name, values in q.items():
            if len(values) > 1:
                return fail("invalid_request", f"Parameter '{name}' was included more than once.")
        p = {k: v[0] for k, v in q.items()}

        if p.get("code") != "true":
            return fail("invalid_request", "Missing or invalid parameter: code (must be 'true').")
        response_type = p.get("response_type")
        if not response_type:
            return fail("invalid_request", "Missing required parameter: response_type.")
        if response_type != "code":
            return fail("unsupported_response_type", "Only response_type=code is supported.")
        scope = p.get("scope")
        if not scope or not scope.strip():
            return fail("invalid_request", "Missing required parameter: scope.")
        scopes = set(scope.split(" ")) - {""}
        unknown = scopes - SCOPES
        if unknown:
            return fail("invalid_scope", f"Unknown scope(s): {' '.join(sorted(unknown))}.")
        if scopes != SCOPES:
            return fail("invalid_scope", f"Scope must be '{_scope_string(SCOPES)}'.")
        challenge = p.get("code_challenge")
        if not challenge:
            return fail("invalid_request", "code_challenge is required (PKCE).")
        if not CHALLENGE_RE.match(challenge):
            return fail("invalid_request", "code_challenge must be 43-128 base64url characters.")
        method = p.get("code_challenge_method")
        if method != "S256":
            return fail("invalid_request", "code_challenge_method must be S256.")
        if not state:
            return fail("invalid_request", "Missing required parameter: state.")
        if self.authorize_error:
            return fail(self.authorize_error, "The user or the server declined the request.")

        code = _random(32)
        with self._lock:
            self._codes[code] = _AuthCode(
                client_id=client_id,
                redirect_uri=redirect_uri,
                code_challenge=challenge,
                state=state,
                scope=_scope_string(scopes),
                expires_at=self.now() + self.code_ttl,
            )
        # The manual redirect URI is this same server's code page, so both cases
        # are one redirect; the page then shows code#state.
        location = add_query(redirect_uri, {"code": code, "state": state})
        return Response(302, b"", "text/plain", {"Location": location})

    def _code_page(self, req: Request) -> Response:
        """The manual flow's page: shows ``code#state`` for the person to paste back."""
        try:
            code = single(req.query, "code")
            state = single(req.query, "state")
            error = single(req.query, "error")
        except ValueError as exc:
            return text_page(400, "Invalid request", f"Parameter '{exc}' was given more than once.")
        if error:
            desc = (req.query.get("error_description") or [""])[0]
            return text_page(400, "Authorization failed", f"{error}: {desc}".rstrip(": "))
        if not code or not state:
            return text_page(400, "Invalid request", "Missing code or state.")
        shown = html.escape(f"{code}#{state}")
        return html_page(
            200,
            "Authentication Code",
            f"<p>Paste this into Claude Code:</p><pre><code id='authentication-code'>{shown}</code></pre>",
        )

    # ------------------------------------------------------------------ /v1/oauth/token

    def _token(self, req: Request) -> Response:
        if req.content_type != JSON:
            raise oauth_error(
                400, "invalid_request", f"Unsupported content type {req.content_type or '(none)'!r}; use JSON."
            )
        if not isinstance(req.json, dict):
            raise oauth_error(400, "invalid_request", "Request body must be a JSON object.")
        params = dict(req.json)
        grant_type = params.get("grant_type")
        if not grant_type or not isinstance(grant_type, str):
            raise oauth_error(400, "invalid_request", "Missing required parameter: grant_type.")
        if grant_type == "authorization_code":
            body = self._grant_code(params)
        elif grant_type == "refresh_token":
            body = self._grant_refresh(params)
        else:
            raise oauth_error(400, "unsupported_grant_type", f"Unsupported grant_type {grant_type!r}.")
        return json_response(200, body, NO_STORE)

    def _grant_code(self, params: dict[str, Any]) -> dict[str, Any]:
        client_id = self._client(params)
        code = str_param(params, "code")
        state = str_param(params, "state")
        verifier = str_param(params, "code_verifier")
        redirect_uri = str_param(params, "redirect_uri")
        with self._lock:
            rec = self._code_for_exchange(code, client_id, redirect_uri)
            assert isinstance(rec, _AuthCode)
            if rec.state != state:
                raise oauth_error(400, "invalid_grant", "state does not match the authorization request.")
            if not VERIFIER_RE.match(verifier) or not pkce_matches(verifier, rec.code_challenge):
                raise oauth_error(400, "invalid_grant", "Invalid code_verifier.")
            return self._redeem(rec)

    def _grant_refresh(self, params: dict[str, Any]) -> dict[str, Any]:
        client_id, token, scope = self._refresh_params(params)
        with self._lock:
            rec, grant = self._refresh_grant(token)
            if rec is None or grant is None:
                raise oauth_error(400, "invalid_grant", "Invalid refresh token.")
            if grant.client_id != client_id:
                raise oauth_error(400, "invalid_grant", "Refresh token was issued to another client.")
            if rec.used:
                if self.revoke_family_on_reuse:
                    self._revoke_grant(grant.grant_id)
                raise oauth_error(400, "invalid_grant", "Refresh token already used.")
            if rec.revoked or grant.revoked:
                raise oauth_error(400, "invalid_grant", "Refresh token has been revoked.")
            if self.refresh_token_ttl is not None and self.now() > rec.issued_at + self.refresh_token_ttl:
                raise oauth_error(400, "invalid_grant", "Refresh token has expired.")
            self._check_narrower_scope(scope, grant)
            return self._rotate(grant, rec)

    # ------------------------------------------------------------------ api.anthropic.com

    def _bearer_grant(self, req: Request) -> Grant:
        """The grant behind ``Authorization: Bearer <access token>`` (401 otherwise)."""
        header = (req.headers.get("Authorization") or "").strip()
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _api_error(401, "authentication_error", "OAuth access token required (Authorization: Bearer).")
        result = self._check_access_token(token)
        if result == "expired":
            raise _api_error(
                401,
                "authentication_error",
                "OAuth token has expired. Please obtain a new token or refresh your existing token.",
            )
        if result == "revoked":
            raise _api_error(401, "authentication_error", "OAuth token has been revoked. Please obtain a new token.")
        if isinstance(result, str):
            raise _api_error(401, "authentication_error", "Invalid bearer token")
        return result

    @staticmethod
    def _require_scope(grant: Grant, scope: str) -> None:
        if scope not in grant.scope.split():
            raise _api_error(403, "permission_error", f"OAuth token does not meet scope requirement {scope}")

    def _api_auth(self, req: Request) -> Grant | None:
        """Authenticate an API call: an issued ``x-api-key`` (returns None), or an
        OAuth Bearer token with the ``oauth-2025-04-20`` beta (returns its grant)."""
        api_key = req.headers.get("x-api-key")
        if api_key is not None:
            with self._lock:
                ok = api_key.strip() in self.issued_api_keys
            if not ok:
                raise _api_error(401, "authentication_error", "invalid x-api-key")
            return None
        if req.headers.get("Authorization"):
            if OAUTH_BETA not in _betas(req.headers):
                raise _api_error(401, "authentication_error", "OAuth authentication is currently not supported.")
            grant = self._bearer_grant(req)
            self._require_scope(grant, "user:inference")
            return grant
        raise _api_error(401, "authentication_error", "x-api-key header is required")

    @staticmethod
    def _require_version(req: Request) -> None:
        if not (req.headers.get("anthropic-version") or "").strip():
            raise _api_error(400, "invalid_request_error", "anthropic-version: header is required")

    def _create_api_key(self, req: Request) -> Response:
        grant = self._bearer_grant(req)
        self._require_scope(grant, "org:create_api_key")
        ident = self._identity(grant.overrides)
        if not ident["api_key_allowed"]:
            raise _api_error(
                403,
                "permission_error",
                "This organization is not allowed to create API keys with an OAuth token.",
            )
        return json_response(200, {"raw_key": self.mint_api_key()}, {"request-id": _request_id()})

    def _profile(self, req: Request) -> Response:
        """Best-effort shape of ``GET /api/oauth/profile`` (where the plan shows up)."""
        grant = self._bearer_grant(req)
        self._require_scope(grant, "user:profile")
        ident = self._identity(grant.overrides)
        plan = ident["plan"]
        return json_response(
            200,
            {
                "account": {
                    "uuid": ident["account_uuid"],
                    "email": ident["email"],
                    "email_address": ident["email"],
                    "has_claude_max": plan == "max",
                    "has_claude_pro": plan == "pro",
                },
                "organization": {
                    "uuid": ident["organization_uuid"],
                    "name": ident["organization_name"],
                    "organization_type": f"claude_{plan}" if plan else "api",
                },
            },
        )

    def _models(self, req: Request) -> Response:
        self._api_auth(req)
        self._require_version(req)
        models = [dict(m) for m in self.models]
        limit_raw = (req.query.get("limit") or ["20"])[0]
        try:
            limit = int(limit_raw)
        except ValueError:
            limit = -1
        if not 1 <= limit <= 1000:
            raise _api_error(400, "invalid_request_error", "limit: Input should be between 1 and 1000")
        after = (req.query.get("after_id") or [None])[0]
        before = (req.query.get("before_id") or [None])[0]
        ids = [m.get("id") for m in models]
        if after is not None:
            if after not in ids:
                raise _api_error(400, "invalid_request_error", "after_id: unknown model id")
            models = models[ids.index(after) + 1 :]
        elif before is not None:
            if before not in ids:
                raise _api_error(400, "invalid_request_error", "before_id: unknown model id")
            models = models[: ids.index(before)][-limit:]
        page = models[:limit]
        return json_response(
            200,
            {
                "data": page,
                "has_more": len(models) > len(page),
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
            },
            {"request-id": _request_id()},
        )

    def _model(self, req: Request) -> Response:
        self._api_auth(req)
        self._require_version(req)
        model_id = req.path[len("/v1/models/") :]
        for model in self.models:
            if model.get("id") == model_id:
                return json_response(200, dict(model))
        raise _api_error(404, "not_found_error", f"model: {model_id}")

    def _messages(self, req: Request) -> Response:
        grant = self._api_auth(req)
        self._require_version(req)
        if req.content_type != JSON or not isinstance(req.json, dict):
            raise _api_error(400, "invalid_request_error", "Request body must be a JSON object.")
        body = req.json
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise _api_error(400, "invalid_request_error", "model: Field required")
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise _api_error(400, "invalid_request_error", "max_tokens: Field required")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _api_error(400, "invalid_request_error", "messages: Field required")
        if model not in {m.get("id") for m in self.models}:
            raise _api_error(404, "not_found_error", f"model: {model}")
        if grant is not None and self.require_claude_code_system and not _system_ok(body.get("system")):
            raise _api_error(
                400,
                "invalid_request_error",
                "This credential is only authorized for use with Claude Code and cannot be used "
                "for other API requests.",
            )
        msg_id = "msg_" + secrets.token_hex(12)
        text = self.reply_text
        input_tokens = max(1, len(json.dumps(messages)) // 4)
        rid = _request_id()
        if body.get("stream") is True:
            return Response(
                200,
                content_type="text/event-stream; charset=utf-8",
                headers={"Cache-Control": "no-cache", "request-id": rid},
                stream=self._stream_events(msg_id, model, text, input_tokens),
            )
        return json_response(
            200,
            {
                "id": msg_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": input_tokens, "output_tokens": 1},
            },
            {"request-id": rid},
        )

    def _stream_events(self, msg_id: str, model: str, text: str, input_tokens: int) -> Iterator[bytes]:
        delay = self.stream_delay
        yield _sse(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": msg_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": input_tokens, "output_tokens": 1},
                },
            },
        )
        yield _sse(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        )
        yield _sse("ping", {"type": "ping"})
        hold = self.stream_hold
        if hold is not None:
            self.stream_held.set()
            hold.wait(self.stream_hold_timeout)
            self.stream_released.set()
        for part in _split3(text):
            if delay > 0:
                time.sleep(delay)
            yield _sse(
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": part}},
            )
        yield _sse("content_block_stop", {"type": "content_block_stop", "index": 0})
        yield _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 3},
            },
        )
        yield _sse("message_stop", {"type": "message_stop"})


def _scope_string(scopes: Iterable[str]) -> str:
    order = ["org:create_api_key", "user:profile", "user:inference"]
    scopes = set(scopes)
    return " ".join([s for s in order if s in scopes] + sorted(scopes - set(order)))


def _system_ok(system: Any) -> bool:
    if isinstance(system, str):
        return system.startswith(CLAUDE_CODE_SYSTEM_PREFIX)
    if isinstance(system, list) and system and isinstance(system[0], dict):
        return str(system[0].get("text", "")).startswith(CLAUDE_CODE_SYSTEM_PREFIX)
    return False


def main(argv: list[str] | None = None) -> int:
    """Run the fake by hand: ``python -m oauth_core.testing.fake_anthropic [--port N] [--console]``."""
    import argparse

    parser = argparse.ArgumentParser(description="A fake claude.ai / Anthropic API on 127.0.0.1, for trying oauth-hub.")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: any free one)")
    parser.add_argument("--console", action="store_true", help="a Console org account (may create an API key)")
    parser.add_argument("--access-token-ttl", type=int, default=28800, help="access token lifetime in seconds")
    args = parser.parse_args(argv)
    fake = FakeAnthropic(port=args.port, access_token_ttl=args.access_token_ttl, api_key_allowed=args.console)
    if args.console:
        fake.plan = None
    fake.start()
    print(f"Fake Anthropic listening on {fake.issuer} (Ctrl+C to stop).")
    print(f"authorize_url = {fake.authorize_url}\ntoken_url = {fake.token_url}")
    print(f"manual_redirect_uri = {fake.manual_redirect_uri}\napi_base = {fake.api_base}", flush=True)
    serve_until_interrupted(fake)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
