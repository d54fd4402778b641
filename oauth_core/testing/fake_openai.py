"""A strict, in-process fake of auth.openai.com, api.openai.com and the Codex backend.

Why a real HTTP server rather than mocked ``requests`` calls: the code under test
must be exercised exactly as it runs for users (real sockets, real redirects, a
real browser process following them, real content types on the wire), and the
same fake must serve subprocesses such as the ``oauth-hub`` CLI or a scripted
``$BROWSER``. It binds 127.0.0.1 on an ephemeral port, so tests can run in
parallel and never touch the network.

Why strict: a lenient fake lets bugs through that the real issuer rejects (a
``plain`` PKCE method, a redirect URI on the wrong port, a JSON body where a form
is required, a reused refresh token). Every rule here mirrors what the real
service does or what RFC 6749 / 7636 / 7009 / 8693 require, and each rejection
uses the error shape the real service uses:

* OAuth protocol errors at ``/oauth/token``: ``400 {"error", "error_description"}``;
* refresh-token failures: ``401 {"error": {"message", "type", "code"}}`` with
  ``code`` one of ``refresh_token_reused|_expired|_invalidated`` (what the Codex
  CLI keys its "log in again" message on);
* API errors: ``{"error": {"message", "type", "param", "code"}}``.

The platform API (``/v1``) answers what an API key may call: ``GET /v1/models``,
``POST /v1/chat/completions`` and ``POST /v1/responses`` (whole or streamed, the
reply being ``reply_text``), for an issued key and a listed model only.

All state lives behind one lock because the server answers each connection on
its own thread while the test thread reads and tweaks the same state.
Nothing is logged: URLs and bodies carry codes and tokens.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt

from oauth_core.testing import _chat
from oauth_core.testing._codex_backend import CodexResponsesMixin
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
    FORM,
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
    json_response,
    oauth_error,
    s256,
    serve_until_interrupted,
    single,
    str_param,
    text_page,
)
from oauth_core.testing.jwt_keys import SigningKey

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "AUTH_CLAIMS",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CODEX_MODELS",
    "DEFAULT_MODELS",
    "FakeOpenAI",
    "ID_TOKEN_TYPE",
    "PROFILE_CLAIMS",
    "RecordedRequest",
    "TOKEN_EXCHANGE_GRANT",
]

DEFAULT_CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
AUTH_CLAIMS = "https://api.openai.com/auth"
PROFILE_CLAIMS = "https://api.openai.com/profile"
ACCESS_TOKEN_AUDIENCE = "https://api.openai.com/v1"
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"

BASE_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
CONNECTOR_SCOPES = frozenset({"api.connectors.read", "api.connectors.invoke"})
#: What Codex 0.171 asks for (order does not matter); the only set this client id
#: may ask for here. Codex before the connectors left out the last two: refused, so a
#: client that drifted from the reference client is caught.
CODEX_SCOPES = BASE_SCOPES | CONNECTOR_SCOPES
ALLOWED_SCOPE_SETS = (CODEX_SCOPES,)

DEFAULT_MODELS: tuple[str, ...] = (
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1",
    "gpt-4.1-mini",
    "o1",
    "o3",
    "o3-mini",
    "o4-mini",
    "chatgpt-4o-latest",
    "gpt-3.5-turbo",
    "text-embedding-3-small",
    "text-embedding-ada-002",
    "whisper-1",
    "tts-1",
    "dall-e-3",
    "gpt-image-1",
    "omni-moderation-latest",
    "gpt-4o-realtime-preview",
    "gpt-4o-audio-preview",
    "babbage-002",
    "davinci-002",
)

DEFAULT_CODEX_MODELS: tuple[dict[str, Any], ...] = (
    {
        "slug": "gpt-5",
        "display_name": "GPT-5",
        "context_window": 272000,
        "visibility": "list",
        "priority": 1,
    },
    {
        "slug": "gpt-5-codex",
        "display_name": "GPT-5 Codex",
        "context_window": 272000,
        "visibility": "list",
        "priority": 0,
    },
    {
        "slug": "gpt-5-mini",
        "display_name": "GPT-5 mini",
        "context_window": 272000,
        "visibility": "list",
        "priority": 3,
    },
    {
        "slug": "codex-mini-latest",
        "display_name": "codex-mini-latest",
        "context_window": 200000,
        "visibility": "hide",
        "priority": 5,
    },
)

_USER_CODE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I/O: they read as 1/0


@dataclass
class _DeviceAuth:
    device_auth_id: str
    user_code: str
    client_id: str
    expires_at: float
    approved: bool = False
    consumed: bool = False


def _api_error(
    status: int,
    message: str,
    code: str | None,
    type_: str = "invalid_request_error",
    param: str | None = None,
) -> ReplyError:
    """OpenAI's API error envelope (also used for refresh-token failures)."""
    return ReplyError(
        json_response(
            status,
            {"error": {"message": message, "type": type_, "param": param, "code": code}},
        )
    )


def _b64url_token(nbytes: int) -> str:
    return secrets.token_urlsafe(nbytes)


class _Handler(RequestHandler):
    server_version = "fake-openai"


class FakeOpenAI(CodexResponsesMixin, VendorGrantBook):
    """Fake of auth.openai.com (OAuth + PKCE + device code + token exchange),
    api.openai.com ``/v1`` (models, Chat Completions, Responses) and chatgpt.com ``/backend-api/codex/models`` and
    ``/backend-api/codex/responses`` (see :mod:`oauth_core.testing._codex_backend`).

    Every constructor argument is also a plain attribute that tests may change
    between steps (e.g. ``fake.plan = "pro"`` before a refresh). Identity values
    are read when tokens are minted, so a refresh picks up the change.

    Typical use::

        with FakeOpenAI() as fake:
            tokens = fake.mint_tokens()
            requests.get(fake.chatgpt_base + "/models?client_version=1", ...)
    """

    _handler_class = _Handler
    _label = "FakeOpenAI"
    _code_errors = CodeErrors(
        unknown="Invalid authorization code.",
        used="Authorization code has already been used.",
        expired="Authorization code has expired.",
        other_client="Code was issued to another client.",
    )

    def __init__(
        self,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        email: str = "user@example.com",
        plan: str = "plus",
        account_id: str = "acct-fake-0001",
        user_id: str = "user-fake-0001",
        organization_id: str | None = "org-fake-0001",
        project_id: str | None = "proj_fake-0001",
        completed_platform_onboarding: bool = True,
        is_org_owner: bool = True,
        api_key_exchange: bool = True,
        access_token_ttl: int = 3600,
        id_token_ttl: int = 3600,
        refresh_token_ttl: float | None = None,
        code_ttl: float = 60,
        device_code_ttl: float = 900,
        device_poll_interval: str = "5",
        device_pending_status: int = 403,
        refresh_omits: tuple[str, ...] = (),
        revoke_family_on_reuse: bool = True,
        models: list[str] | None = None,
        codex_models: list[dict[str, Any]] | None = None,
        allowed_redirect_uris: list[str] | None = None,
        authorize_error: str | None = None,
        clock_offset: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        connection_timeout: float = 10.0,
        signing_key: SigningKey | None = None,
        reply_text: str = "pong",
        stream_delay: float = 0.0,
    ) -> None:
        super().__init__(host=host, port=port, connection_timeout=connection_timeout, clock_offset=clock_offset)
        self.client_id = client_id
        self.email = email
        self.plan = plan
        self.account_id = account_id
        self.user_id = user_id
        self.organization_id = organization_id
        self.project_id = project_id
        self.completed_platform_onboarding = completed_platform_onboarding
        self.is_org_owner = is_org_owner
        self.api_key_exchange = api_key_exchange
        self.access_token_ttl = access_token_ttl
        self.id_token_ttl = id_token_ttl
        self.refresh_token_ttl = refresh_token_ttl
        self.code_ttl = code_ttl
        self.device_code_ttl = device_code_ttl
        self.device_poll_interval = device_poll_interval
        self.device_pending_status = device_pending_status
        self.refresh_omits = tuple(refresh_omits)
        # Refresh-token reuse is treated as theft (OAuth 2.0 Security BCP 4.14):
        # the whole family dies, so a client that races without a lock loses its
        # *new* token as well, just as users of parallel tools report.
        self.revoke_family_on_reuse = revoke_family_on_reuse
        self.models: list[str] = list(models) if models is not None else list(DEFAULT_MODELS)
        self.codex_models: list[dict[str, Any]] = (
            [dict(m) for m in codex_models] if codex_models is not None else [dict(m) for m in DEFAULT_CODEX_MODELS]
        )
        self.allowed_redirect_uris = allowed_redirect_uris
        self.authorize_error = authorize_error
        self.reply_text = reply_text
        self.stream_delay = stream_delay
        self.codex_usage = dict(CodexResponsesMixin.codex_usage)

        #: Valid API keys handed out by the token exchange. Discard one to revoke it.
        self.issued_api_keys: set[str] = set()

        # A fresh key per instance by default, so a token can never verify
        # against another test's server; a suite that starts many fakes may
        # pass one shared key to save the ~30 ms RSA key generation each.
        self.key = signing_key or SigningKey()
        self._id_tokens: dict[str, str] = {}  # jti -> grant_id
        self._devices: dict[str, _DeviceAuth] = {}
        self._routes = {
            "/oauth/authorize": {"GET": self._authorize},
            "/oauth/token": {"POST": self._token},
            "/oauth/revoke": {"POST": self._revoke},
            "/.well-known/jwks.json": {"GET": self._jwks},
            "/.well-known/openid-configuration": {"GET": self._openid_configuration},
            "/v1/models": {"GET": self._api_models},
            "/v1/chat/completions": {"POST": self._api_chat},
            "/v1/responses": {"POST": self._api_responses},
            "/backend-api/codex/models": {"GET": self._codex_models},
            "/backend-api/codex/responses": {"POST": self._codex_responses},
            "/api/accounts/deviceauth/usercode": {"POST": self._device_usercode},
            "/api/accounts/deviceauth/token": {"POST": self._device_token},
            "/codex/device": {"GET": self._device_page},
            "/deviceauth/callback": {"GET": self._device_callback_page},
        }
        self._prefix_routes = {"/v1/models/": {"GET": self._api_model}}

    # ------------------------------------------------------------------ addresses

    @property
    def issuer(self) -> str:
        """Stands in for ``https://auth.openai.com``."""
        return super().issuer

    @property
    def api_base(self) -> str:
        """Stands in for ``https://api.openai.com/v1``."""
        return self.issuer + "/v1"

    @property
    def chatgpt_base(self) -> str:
        """Stands in for ``https://chatgpt.com/backend-api/codex``."""
        return self.issuer + "/backend-api/codex"

    @property
    def jwks_url(self) -> str:
        return self.issuer + "/.well-known/jwks.json"

    @property
    def device_callback_uri(self) -> str:
        """The redirect URI a device-code authorization code is bound to."""
        return self.issuer + "/deviceauth/callback"

    def redirect_uris(self) -> list[str]:
        """The effective redirect-URI allow-list (ports 1455 and 1457 only, like OpenAI)."""
        if self.allowed_redirect_uris is not None:
            return list(self.allowed_redirect_uris)
        return [
            "http://127.0.0.1:1455/auth/callback",
            "http://localhost:1455/auth/callback",
            "http://127.0.0.1:1457/auth/callback",
            "http://localhost:1457/auth/callback",
            self.device_callback_uri,
        ]

    # ------------------------------------------------------------------ test knobs

    def approve_device(self, user_code: str | None = None) -> None:
        """Simulate the user entering ``user_code`` at /codex/device and approving.

        With no argument, approves the most recently issued pending code (handy
        when the code was only printed by a CLI under test). Raises KeyError if
        there is no such code.
        """
        with self._lock:
            candidates = [d for d in self._devices.values() if not d.consumed]
            if user_code is None:
                if not candidates:
                    raise KeyError("no pending device authorization")
                candidates[-1].approved = True
                return
            wanted = user_code.strip().upper()
            for dev in candidates:
                if dev.user_code == wanted:
                    dev.approved = True
                    return
        raise KeyError("unknown user code")

    def pending_user_codes(self) -> list[str]:
        """User codes issued and not yet consumed (oldest first)."""
        with self._lock:
            return [d.user_code for d in self._devices.values() if not d.consumed]

    def mint_tokens(self, *, scope: str | None = None, **overrides: Any) -> dict[str, Any]:
        """A fresh, valid token set as if a browser sign-in had just completed.

        Lets a test seed a token file without driving a login. ``overrides``
        replace identity attributes for this grant only (and its refreshes):
        ``email``, ``plan``, ``account_id``, ``user_id``, ``organization_id``,
        ``project_id``, ``completed_platform_onboarding``, ``is_org_owner``,
        ``access_token_ttl`` (alias ``expires_in``; may be negative to mint an
        already-expired access token) and ``id_token_ttl``.
        Returns ``{id_token, access_token, refresh_token, expires_in, token_type, scope}``.
        """
        check_overrides(overrides, _IDENTITY_FIELDS)
        with self._lock:
            grant = self._new_grant(self.client_id, scope or " ".join(_ordered(CODEX_SCOPES)))
            grant.overrides = dict(overrides)
            return self._issue(grant)

    def verify_jwt(self, token: str) -> dict[str, Any]:
        """Signature-check a token this fake issued and return its claims."""
        return self.key.verify(token)

    # ------------------------------------------------------------------ tokens

    def _identity(self, overrides: dict[str, Any]) -> dict[str, Any]:
        ident = {name: getattr(self, name) for name in _IDENTITY_FIELDS}
        ident.update(overrides)
        return ident

    def _issue(self, grant: Grant, with_refresh: bool = True) -> dict[str, Any]:
        """Mint id/access(/refresh) tokens for ``grant``; caller holds the lock."""
        ident = self._identity(grant.overrides)
        now = int(self.now())
        sub = "auth0|" + str(ident["user_id"])

        auth: dict[str, Any] = {
            "chatgpt_account_id": ident["account_id"],
            "chatgpt_plan_type": ident["plan"],
            "chatgpt_user_id": ident["user_id"],
            "user_id": ident["user_id"],
            "completed_platform_onboarding": bool(ident["completed_platform_onboarding"]),
            "is_org_owner": bool(ident["is_org_owner"]),
            "organizations": [],
        }
        if ident["organization_id"] is not None:
            auth["organization_id"] = ident["organization_id"]
            auth["organizations"] = [
                {
                    "id": ident["organization_id"],
                    "is_default": True,
                    "role": "owner" if ident["is_org_owner"] else "reader",
                    "title": "Personal",
                }
            ]
        if ident["project_id"] is not None:
            auth["project_id"] = ident["project_id"]

        id_jti = secrets.token_hex(16)
        id_claims = {
            "iss": self.issuer,
            "aud": [grant.client_id],
            "sub": sub,
            "email": ident["email"],
            "email_verified": True,
            "iat": now,
            "exp": now + int(ident["id_token_ttl"]),
            "auth_time": now,
            "jti": id_jti,
            AUTH_CLAIMS: auth,
        }
        self._id_tokens[id_jti] = grant.grant_id

        ttl = int(ident["access_token_ttl"])
        at_jti = secrets.token_hex(16)
        at_claims = {
            "iss": self.issuer,
            "aud": [ACCESS_TOKEN_AUDIENCE],
            "sub": sub,
            "client_id": grant.client_id,
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "jti": at_jti,
            "scp": grant.scope.split(),
            AUTH_CLAIMS: {
                "chatgpt_account_id": ident["account_id"],
                "chatgpt_plan_type": ident["plan"],
                "chatgpt_user_id": ident["user_id"],
                "user_id": ident["user_id"],
            },
            PROFILE_CLAIMS: {"email": ident["email"], "email_verified": True},
        }
        self._access[at_jti] = AccessRecord(grant.grant_id, float(now + ttl))

        out: dict[str, Any] = {
            "id_token": self.key.sign(id_claims),
            "access_token": self.key.sign(at_claims),
        }
        if with_refresh:
            rt = "rt_" + _b64url_token(32)
            self._refresh[rt] = RefreshRecord(grant.grant_id, self.now())
            out["refresh_token"] = rt
        out.update({"expires_in": ttl, "token_type": "Bearer", "scope": grant.scope})
        return out

    def _grant_live(self, grant_id: str | None) -> bool:
        grant = self._grants.get(grant_id or "")
        return grant is not None and not grant.revoked

    def _check_access_token(self, token: str) -> dict[str, Any] | str:
        """Claims of a usable access token, or a reason string why it is not."""
        try:
            claims = self.key.verify(token)
        except jwt.InvalidTokenError:
            return "invalid"
        with self._lock:
            rec = self._access.get(str(claims.get("jti")))
            if rec is None or ACCESS_TOKEN_AUDIENCE not in _as_list(claims.get("aud")):
                return "invalid"
            if claims.get("iss") != self.issuer:
                return "invalid"
            if rec.revoked or not self._grant_live(rec.grant_id):
                return "revoked"
            if rec.force_expired or float(claims.get("exp", 0)) <= self.now():
                return "expired"
        return claims

    # ------------------------------------------------------------------ dispatch

    def _handle(self, req: Request) -> tuple[Response, float]:
        # An undecodable form body is refused before anything else, injected
        # faults included, as auth.openai.com does.
        if req.content_type == FORM and req.form is None:
            raise oauth_error(400, "invalid_request", "Body is not valid UTF-8.")
        return super()._handle(req)

    def _not_found(self, req: Request) -> Response:
        return _api_error(404, f"Not found: {req.path}", "not_found").response

    def _method_not_allowed(self, req: Request) -> Response:
        return _api_error(405, f"Method {req.method} not allowed", "method_not_allowed").response

    def _length_required(self) -> Response:
        return _api_error(411, "Length required", None).response

    def _bad_body_length(self, status: int) -> Response:
        return _api_error(status, "Bad body length", None).response

    def _internal_error(self) -> Response:
        return _api_error(500, "Internal error in fake", None, "server_error").response

    def _injected_failure(self, status: int) -> Response:
        return _api_error(status, "Injected failure", None, "server_error").response

    @staticmethod
    def _params(req: Request, allowed: Iterable[str]) -> tuple[dict[str, Any], str]:
        """Body parameters of a POST, and which encoding carried them.

        Only the encodings in ``allowed`` are accepted; anything else (another
        content type, a body that does not parse) is an ``invalid_request``.
        Which encoding each *grant* needs is checked by the caller. Repeated
        form parameters are rejected (RFC 6749 3.2).
        """
        allowed = tuple(allowed)
        if req.content_type == FORM and FORM in allowed:
            assert req.form is not None
            params: dict[str, Any] = {}
            for name in req.form:
                try:
                    params[name] = single(req.form, name)
                except ValueError:
                    raise oauth_error(
                        400, "invalid_request", f"Parameter '{name}' was included more than once."
                    ) from None
            return params, FORM
        if req.content_type == JSON and JSON in allowed:
            if not isinstance(req.json, dict):
                raise oauth_error(400, "invalid_request", "Request body must be a JSON object.")
            return dict(req.json), JSON
        raise oauth_error(
            400,
            "invalid_request",
            f"Unsupported content type {req.content_type or '(none)'!r}.",
        )

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
            return text_page(400, "Unknown client", "The client_id is missing or not registered.")
        if redirect_uri is None or redirect_uri not in self.redirect_uris():
            return text_page(
                400,
                "Invalid redirect_uri",
                "The redirect_uri is missing or not on this client's allow-list.",
            )

        state: str | None = None
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

        response_type = p.get("response_type")
        if not response_type:
            return fail("invalid_request", "Missing required parameter: response_type.")
        if response_type != "code":
            return fail("unsupported_response_type", "Only response_type=code is supported.")
        scope = p.get("scope")
        if not scope or not scope.strip():
            return fail("invalid_request", "Missing required parameter: scope.")
        scopes = set(scope.split(" ")) - {""}
        unknown = scopes - BASE_SCOPES - CONNECTOR_SCOPES
        if unknown:
            return fail("invalid_scope", f"Unknown scope(s): {' '.join(sorted(unknown))}.")
        if "openid" not in scopes:
            return fail("invalid_scope", "The openid scope is required.")
        if scopes not in ALLOWED_SCOPE_SETS:
            return fail(
                "invalid_scope",
                "Scope must be 'openid profile email offline_access api.connectors.read api.connectors.invoke'.",
            )
        challenge = p.get("code_challenge")
        if not challenge:
            return fail("invalid_request", "code_challenge is required (PKCE).")
        if not CHALLENGE_RE.match(challenge):
            return fail("invalid_request", "code_challenge must be 43-128 base64url characters.")
        method = p.get("code_challenge_method")
        if method is None or method == "plain":
            return fail("invalid_request", "code_challenge_method must be S256.")
        if method != "S256":
            return fail("invalid_request", "Transform algorithm not supported.")
        if not state:
            return fail("invalid_request", "Missing required parameter: state.")
        if p.get("id_token_add_organizations") != "true":
            return fail("invalid_request", "id_token_add_organizations=true is required.")
        if p.get("codex_cli_simplified_flow") != "true":
            return fail("invalid_request", "codex_cli_simplified_flow=true is required.")
        if not p.get("originator"):
            return fail("invalid_request", "Missing required parameter: originator.")
        if self.authorize_error:
            return fail(self.authorize_error, "The user or the server declined the request.")

        code = "ac_" + _b64url_token(32)
        with self._lock:
            self._codes[code] = AuthCode(
                client_id=client_id,
                redirect_uri=redirect_uri,
                code_challenge=challenge,
                scope=scope,
                expires_at=self.now() + self.code_ttl,
            )
        location = add_query(redirect_uri, {"code": code, "scope": scope, "state": state})
        return Response(302, b"", "text/plain", {"Location": location})

    # ------------------------------------------------------------------ /oauth/token

    def _token(self, req: Request) -> Response:
        params, encoding = self._params(req, (FORM, JSON))
        grant_type = params.get("grant_type")
        if not grant_type or not isinstance(grant_type, str):
            raise oauth_error(400, "invalid_request", "Missing required parameter: grant_type.")
        wanted = {
            "authorization_code": FORM,
            TOKEN_EXCHANGE_GRANT: FORM,
            "refresh_token": JSON,
        }.get(grant_type)
        if wanted is None:
            raise oauth_error(400, "unsupported_grant_type", f"Unsupported grant_type {grant_type!r}.")
        if encoding != wanted:
            raise oauth_error(400, "invalid_request", f"grant_type={grant_type} requires a {wanted} body.")
        if grant_type == "authorization_code":
            body = self._grant_code(params)
        elif grant_type == "refresh_token":
            body = self._grant_refresh(params)
        else:
            body = self._grant_exchange(params)
        return json_response(200, body, NO_STORE)

    def _grant_code(self, params: dict[str, Any]) -> dict[str, Any]:
        client_id = self._client(params)
        code = str_param(params, "code")
        redirect_uri = str_param(params, "redirect_uri")
        verifier = str_param(params, "code_verifier")
        with self._lock:
            rec = self._code_for_exchange(code, client_id, redirect_uri)
            if not VERIFIER_RE.match(verifier):
                raise oauth_error(400, "invalid_grant", "code_verifier must be 43-128 unreserved characters.")
            if not pkce_matches(verifier, rec.code_challenge):
                raise oauth_error(400, "invalid_grant", "PKCE verification failed.")
            return self._redeem(rec)

    def _grant_refresh(self, params: dict[str, Any]) -> dict[str, Any]:
        client_id, token, scope = self._refresh_params(params)
        with self._lock:
            rec, grant = self._refresh_grant(token)
            if rec is None or grant is None or rec.revoked or grant.revoked:
                raise _refresh_error("refresh_token_invalidated")
            if grant.client_id != client_id:
                raise _refresh_error("refresh_token_invalidated")
            if rec.used:
                if self.revoke_family_on_reuse:
                    self._revoke_grant(grant.grant_id)
                raise _refresh_error("refresh_token_reused")
            if self.refresh_token_ttl is not None and (self.now() > rec.issued_at + self.refresh_token_ttl):
                raise _refresh_error("refresh_token_expired")
            self._check_narrower_scope(scope, grant)
            return self._rotate(grant, rec)

    def _grant_exchange(self, params: dict[str, Any]) -> dict[str, Any]:
        self._client(params)
        requested = str_param(params, "requested_token")
        if requested != "openai-api-key":
            raise oauth_error(400, "invalid_request", "requested_token must be openai-api-key.")
        subject_type = str_param(params, "subject_token_type")
        if subject_type != ID_TOKEN_TYPE:
            raise oauth_error(400, "invalid_request", f"subject_token_type must be {ID_TOKEN_TYPE}.")
        subject = str_param(params, "subject_token")
        try:
            claims = self.key.verify(subject)
        except jwt.InvalidTokenError:
            raise _api_error(401, "Invalid ID token.", "invalid_subject_token") from None
        with self._lock:
            grant_id = self._id_tokens.get(str(claims.get("jti")))
            if (
                claims.get("iss") != self.issuer
                or self.client_id not in _as_list(claims.get("aud"))
                or grant_id is None
            ):
                raise _api_error(401, "Invalid ID token.", "invalid_subject_token")
            if float(claims.get("exp", 0)) <= self.now():
                raise _api_error(401, "ID token has expired.", "token_expired")
            if not self._grant_live(grant_id):
                raise _api_error(401, "ID token has been revoked.", "invalid_subject_token")
            auth = claims.get(AUTH_CLAIMS) or {}
            org = auth.get("organization_id") or claims.get("organization_id")
            proj = auth.get("project_id") or claims.get("project_id")
            if not org or not proj:
                raise _api_error(
                    401,
                    "This account has no API organization/project; an API key cannot be issued.",
                    "missing_organization",
                )
            if not self.api_key_exchange:
                raise _api_error(
                    401,
                    "API key exchange is not enabled for this account.",
                    "api_key_exchange_disabled",
                )
            key = "sk-proj-" + _b64url_token(96)
            self.issued_api_keys.add(key)
        return {
            "access_token": key,
            "issued_token_type": ACCESS_TOKEN_TYPE,
            "token_type": "Bearer",
        }

    # ------------------------------------------------------------------ /oauth/revoke

    def _revoke(self, req: Request) -> Response:
        params, _ = self._params(req, (JSON, FORM))
        token = str_param(params, "token")
        client_id = str_param(params, "client_id")
        if client_id != self.client_id:
            raise oauth_error(401, "invalid_client", "Unknown or invalid client_id.")
        hint = params.get("token_type_hint")
        if hint is not None and hint not in ("refresh_token", "access_token"):
            raise oauth_error(400, "unsupported_token_type", "Unsupported token_type_hint.")
        with self._lock:
            rec = self._refresh.get(token)
            if rec is not None:
                # RFC 7009 2.1: revoking a refresh token revokes its access tokens too.
                self._revoke_grant(rec.grant_id)
            else:
                try:
                    claims = self.key.verify(token)
                except jwt.InvalidTokenError:
                    claims = None
                if claims is not None:
                    at = self._access.get(str(claims.get("jti")))
                    if at is not None:
                        at.revoked = True
        # RFC 7009 2.2: unknown tokens also get 200.
        return json_response(200, {})

    # ------------------------------------------------------------------ discovery

    def _jwks(self, req: Request) -> Response:
        return json_response(200, self.key.jwks())

    def _openid_configuration(self, req: Request) -> Response:
        iss = self.issuer
        return json_response(
            200,
            {
                "issuer": iss,
                "authorization_endpoint": iss + "/oauth/authorize",
                "token_endpoint": iss + "/oauth/token",
                "revocation_endpoint": iss + "/oauth/revoke",
                "jwks_uri": self.jwks_url,
                "device_authorization_endpoint": iss + "/api/accounts/deviceauth/usercode",
                "response_types_supported": ["code"],
                "response_modes_supported": ["query"],
                "grant_types_supported": [
                    "authorization_code",
                    "refresh_token",
                    TOKEN_EXCHANGE_GRANT,
                ],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["none"],
                "scopes_supported": _ordered(BASE_SCOPES) + _ordered(CONNECTOR_SCOPES),
                "claims_supported": [
                    "iss",
                    "aud",
                    "sub",
                    "exp",
                    "iat",
                    "auth_time",
                    "email",
                    "email_verified",
                    AUTH_CLAIMS,
                ],
            },
        )

    # ------------------------------------------------------------------ api.openai.com

    def _api_key(self, req: Request) -> str:
        header = req.headers.get("Authorization") or ""
        if not header:
            raise _api_error(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                None,
            )
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or key not in self.issued_api_keys:
            # The real message echoes a masked key; we echo nothing.
            raise _api_error(401, "Incorrect API key provided", "invalid_api_key")
        return key

    @staticmethod
    def _model_object(model_id: str) -> dict[str, Any]:
        owner = "openai-internal" if model_id.startswith(("whisper", "tts")) else "system"
        return {"id": model_id, "object": "model", "created": 1698785189, "owned_by": owner}

    def _api_models(self, req: Request) -> Response:
        self._api_key(req)
        data = [self._model_object(m) for m in list(self.models)]
        return json_response(200, {"object": "list", "data": data})

    def _api_model(self, req: Request) -> Response:
        self._api_key(req)
        model_id = req.path[len("/v1/models/") :]
        if model_id not in self.models:
            raise _api_error(404, f"The model '{model_id}' does not exist", "model_not_found", param="model")
        return json_response(200, self._model_object(model_id))

    def _api_body(self, req: Request, check: Any) -> dict[str, Any]:
        """The key, then the JSON body checked as the platform API checks it, then the model."""
        self._api_key(req)
        if req.content_type != JSON or not isinstance(req.json, dict):
            raise _api_error(400, "We could not parse the JSON body of your request.", None)
        try:
            body: dict[str, Any] = check(req.json)
        except _chat.BodyError as exc:
            raise _api_error(400, str(exc), None, param=exc.param) from None
        if body["model"] not in self.models:
            raise _api_error(404, f"The model `{body['model']}` does not exist or you do not have access to it.",
                             "model_not_found")
        return body

    def _api_chat(self, req: Request) -> Response:
        body = self._api_body(req, _chat.check_chat)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return Response(200, content_type="text/event-stream",
                            stream=_chat.chat_stream(body["model"], self.reply_text, include_usage))
        return json_response(200, _chat.chat_answer(body["model"], self.reply_text))

    def _api_responses(self, req: Request) -> Response:
        body = self._api_body(req, _chat.check_responses)
        if body.get("stream"):
            return Response(200, content_type="text/event-stream",
                            stream=_chat.responses_stream(body["model"], self.reply_text))
        return json_response(200, _chat.responses_answer(body["model"], self.reply_text))

    # ------------------------------------------------------------------ chatgpt backend

    def _codex_models(self, req: Request) -> Response:
        try:
            client_version = single(req.query, "client_version")
        except ValueError:
            client_version = None
        if not client_version:
            raise _api_error(
                400,
                "Missing required query parameter: client_version",
                "missing_parameter",
                param="client_version",
            )
        self._codex_caller(req)
        return json_response(200, {"models": [dict(m) for m in self.codex_models]})

    def _codex_caller(self, req: Request) -> dict[str, Any]:
        """The claims of a ChatGPT-backend call's bearer, whose account header must match it."""
        header = req.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _api_error(401, "Missing bearer token.", "invalid_token")
        claims = self._check_access_token(token.strip())
        if isinstance(claims, str):
            if claims == "expired":
                raise _api_error(401, "Access token has expired.", "token_expired")
            if claims == "revoked":
                raise _api_error(401, "Access token has been revoked.", "token_revoked")
            raise _api_error(401, "Invalid access token.", "invalid_token")
        account = (claims.get(AUTH_CLAIMS) or {}).get("chatgpt_account_id")
        if not req.headers.get("ChatGPT-Account-Id") or req.headers.get("ChatGPT-Account-Id") != account:
            raise _api_error(403, "ChatGPT-Account-Id does not match the token's account.", "account_mismatch")
        return claims

    # ------------------------------------------------------------------ device code

    def _device_usercode(self, req: Request) -> Response:
        params, _ = self._params(req, (JSON,))
        self._client(params)
        now = self.now()
        letters = "".join(secrets.choice(_USER_CODE_LETTERS) for _ in range(4))
        digits = "".join(secrets.choice("0123456789") for _ in range(4))
        dev = _DeviceAuth(
            device_auth_id="deviceauth_" + secrets.token_hex(12),
            user_code=f"{letters}-{digits}",
            client_id=self.client_id,
            expires_at=now + self.device_code_ttl,
        )
        with self._lock:
            self._devices[dev.device_auth_id] = dev
        expires = datetime.fromtimestamp(dev.expires_at, tz=UTC)
        return json_response(
            200,
            {
                "device_auth_id": dev.device_auth_id,
                "user_code": dev.user_code,
                "interval": str(self.device_poll_interval),
                "expires_at": expires.isoformat().replace("+00:00", "Z"),
            },
        )

    def _device_token(self, req: Request) -> Response:
        params, _ = self._params(req, (JSON,))
        device_auth_id = str_param(params, "device_auth_id")
        user_code = str_param(params, "user_code")
        with self._lock:
            dev = self._devices.get(device_auth_id)
            if dev is None or dev.user_code != user_code.strip().upper():
                raise oauth_error(400, "invalid_grant", "Unknown device authorization.")
            if dev.consumed:
                raise oauth_error(400, "invalid_grant", "Device authorization already used.")
            if self.now() > dev.expires_at:
                raise oauth_error(410, "expired_token", "The device code has expired.")
            if not dev.approved:
                raise oauth_error(
                    self.device_pending_status,
                    "authorization_pending",
                    "The user has not yet approved this device.",
                )
            dev.consumed = True
            verifier = _b64url_token(64)
            challenge = s256(verifier)
            code = "ac_" + _b64url_token(32)
            self._codes[code] = AuthCode(
                client_id=dev.client_id,
                redirect_uri=self.device_callback_uri,
                code_challenge=challenge,
                scope=" ".join(_ordered(CODEX_SCOPES)),
                expires_at=self.now() + self.code_ttl,
            )
        return json_response(
            200,
            {"authorization_code": code, "code_challenge": challenge, "code_verifier": verifier},
        )

    def _device_page(self, req: Request) -> Response:
        return text_page(200, "Enter code", "Enter the code shown in your terminal.")

    def _device_callback_page(self, req: Request) -> Response:
        return text_page(200, "Signed in", "You may close this window.")


_IDENTITY_FIELDS = frozenset(
    {
        "email",
        "plan",
        "account_id",
        "user_id",
        "organization_id",
        "project_id",
        "completed_platform_onboarding",
        "is_org_owner",
        "access_token_ttl",
        "id_token_ttl",
    }
)

_REFRESH_MESSAGES = {
    "refresh_token_reused": "Your refresh token has already been used to generate a new "
    "access token. Please try signing in again.",
    "refresh_token_expired": "Your refresh token has expired. Please try signing in again.",
    "refresh_token_invalidated": "Your refresh token has been invalidated. Please try signing in again.",
}


def _refresh_error(code: str) -> ReplyError:
    return _api_error(401, _REFRESH_MESSAGES[code], code)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _ordered(scopes: frozenset[str]) -> list[str]:
    order = [
        "openid",
        "profile",
        "email",
        "offline_access",
        "api.connectors.read",
        "api.connectors.invoke",
    ]
    return [s for s in order if s in scopes]


def main(argv: list[str] | None = None) -> int:
    """Run the fake by hand: ``python -m oauth_core.testing.fake_openai [--port N] [--no-org]``.

    Prints the ``config.toml`` table that points the chatgpt provider at it, so a person
    can try ``oauth-hub login chatgpt`` end to end without an OpenAI account.
    """
    import argparse

    parser = argparse.ArgumentParser(description="A fake auth.openai.com on 127.0.0.1, for trying oauth-hub.")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: any free one)")
    parser.add_argument("--no-org", action="store_true", help="an account without an API org (no API key)")
    parser.add_argument("--access-token-ttl", type=int, default=3600, help="access token lifetime in seconds")
    args = parser.parse_args(argv)
    fake = FakeOpenAI(port=args.port, access_token_ttl=args.access_token_ttl)
    if args.no_org:
        fake.organization_id = None
        fake.project_id = None
    fake.start()
    print(f"Fake OpenAI IdP listening on {fake.issuer} (Ctrl+C to stop). Put this in config.toml:\n")
    print("[providers.chatgpt]")
    print(f'issuer = "{fake.issuer}"\napi_base = "{fake.api_base}"\nchatgpt_base = "{fake.chatgpt_base}"', flush=True)
    serve_until_interrupted(fake)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
