"""A strict, in-process fake of Anthropic's sign-in for Claude Code and of its API.

It follows Claude Code 2.1.x (measured on 2.1.332, the npm ``latest`` of
``@anthropic-ai/claude-code-linux-x64``). One loopback HTTP server stands in for
several real hosts. ``api.anthropic.com`` is served at the root; every other host
lives under a path prefix named after it, so a client pointed at the wrong host
reaches the wrong prefix and gets what the real one would give it (404):

* ``claude.com`` — ``GET /claude.com/cai/oauth/authorize``: the Claude Pro/Max
  sign-in (auto-approves: there is no person). Grants the ``user:*`` scopes asked for.
* ``platform.claude.com`` — ``GET /platform.claude.com/oauth/authorize``: the
  Console (API billing) sign-in, which grants only ``org:create_api_key user:profile``;
  ``POST …/v1/oauth/token`` (JSON; code exchange and refresh),
  ``POST …/v1/oauth/token/revoke`` (JSON ``{token, token_type_hint, client_id}``),
  the manual-flow page ``GET …/oauth/code/callback`` that shows ``code#state`` and the
  success page ``GET …/oauth/code/success``;
* ``api.anthropic.com`` — ``POST /api/oauth/claude_cli/create_api_key``,
  ``GET /api/oauth/profile``, ``GET /api/oauth/claude_cli/roles``, ``GET /v1/models``
  and ``POST /v1/messages``.
* retired hosts — ``/console.anthropic.com/…`` (the token host before mid-2026) and
  ``/claude.ai/oauth/authorize`` answer 404, as do the old root paths.

Both authorize hosts take exactly the scope set Claude Code 2.1.x asks for
(:data:`AUTHORIZE_SCOPES`, the same on both) or ``user:inference`` alone (the
long-lived token of ``claude setup-token``); the older
``org:create_api_key user:profile user:inference`` is refused with ``invalid_scope``.
Which scopes are *granted* depends on the host, and the token answer says which
(``scope``): a client tells a Console sign-in from a Pro/Max one by the absence of
``user:inference``.

Why a real HTTP server and why strict: see :mod:`oauth_core.testing.fake_openai`,
whose conventions this module follows (same lifecycle, same knobs-as-attributes,
same :class:`RecordedRequest` log, same ``fail_next``/``count``/``requests_to``).
Use the address properties (``token_url``, ``authorize_url``, …) or
:meth:`FakeAnthropic.provider_settings`, never hand-built paths.

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
import re
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
    Break,
    RecordedRequest,
    ReplyError,
    Request,
    RequestHandler,
    Response,
    Stall,
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
    "AUTHORIZE_SCOPES",
    "CLAUDE_CODE_SYSTEM_PREFIX",
    "CONSOLE_GRANTABLE",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_MODELS",
    "OAUTH_BETA",
    "SCOPES",
    "FakeAnthropic",
    "RecordedRequest",
]

DEFAULT_CLIENT_ID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
#: The ``anthropic-beta`` value that lets an OAuth access token be used as Bearer.
OAUTH_BETA = "oauth-2025-04-20"
#: The scopes Claude Code 2.1.x asks for at both authorize hosts, in its order
#: (its ``org:create_api_key user:profile`` + ``user:*`` set, with the plugins and
#: privacy-consent scopes its production build registers).
AUTHORIZE_SCOPES: tuple[str, ...] = (
    "org:create_api_key",
    "user:profile",
    "user:inference",
    "user:sessions:claude_code",
    "user:mcp_servers",
    "user:file_upload",
    "user:plugins",
    "user:privacy_consents:write",
)
SCOPES = frozenset(AUTHORIZE_SCOPES)
#: What the Console host grants of a request (an API-billing sign-in: keys, no inference).
CONSOLE_GRANTABLE = frozenset({"org:create_api_key", "user:profile"})
#: ``claude setup-token`` asks for this alone (a long-lived inference token).
INFERENCE_ONLY = frozenset({"user:inference"})

# Where each real host lives on this one server (see the module docstring).
CLAUDE_COM = "/claude.com"
PLATFORM = "/platform.claude.com"
AUTHORIZE_PATH = CLAUDE_COM + "/cai/oauth/authorize"
CONSOLE_AUTHORIZE_PATH = PLATFORM + "/oauth/authorize"
TOKEN_PATH = PLATFORM + "/v1/oauth/token"
REVOKE_PATH = TOKEN_PATH + "/revoke"
CODE_PAGE_PATH = PLATFORM + "/oauth/code/callback"
SUCCESS_PATH = PLATFORM + "/oauth/code/success"
PROFILE_PATH = "/api/oauth/profile"
ROLES_PATH = "/api/oauth/claude_cli/roles"
CREATE_API_KEY_PATH = "/api/oauth/claude_cli/create_api_key"
#: Hosts Claude Code no longer uses: nothing is served under them (404).
RETIRED_HOSTS = ("/console.anthropic.com", "/claude.ai")
#: What an OAuth-authenticated /v1/messages system prompt must start with (Sonnet and
#: Opus; Haiku is exempt) unless ``require_claude_code_system`` is turned off.
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
        "organization_role",
        "access_token_ttl",
    }
)

_ORG_TYPES = {"max": "claude_max", "pro": "claude_pro", "team": "claude_team", "enterprise": "claude_enterprise"}


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
    """Fake of the Claude Code sign-in (claude.com and platform.claude.com: PKCE,
    Pro/Max and Console authorize hosts, manual code page, refresh rotation,
    revocation) and of api.anthropic.com (API-key creation, profile, roles,
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
        api_key_allowed: bool = True,
        organization_role: str = "admin",
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
        require_claude_code_system: bool = True,
        tool_call_arguments: str = '{"city": "Paris"}',
        tool_call_name: str | None = None,
        tool_preamble: str = "Let me check.",
        stream_stall: float = 0.0,
        stream_break: bool = False,
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
        #: Whether the organisation lets a Console sign-in mint an API key (403
        #: permission_error when not). A Pro/Max grant lacks the scope anyway.
        self.api_key_allowed = api_key_allowed
        #: What GET /api/oauth/claude_cli/roles reports as ``organization_role``.
        self.organization_role = organization_role
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
        #: None: any ``http://localhost:<port>/callback`` (RFC 8252 loopback, as the
        #: real service allows Claude Code's random port) and the manual page.
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
        #: Reject OAuth-authenticated /v1/messages to Sonnet/Opus whose system prompt
        #: does not begin with CLAUDE_CODE_SYSTEM_PREFIX (a string's prefix, or the
        #: whole first block of a list), as the real API does for Pro/Max tokens.
        self.require_claude_code_system = require_claude_code_system
        #: When offered tools (and no tool result came back yet) the fake calls the first
        #: one with these arguments (JSON text), after ``tool_preamble`` as text if set.
        self.tool_call_arguments = tool_call_arguments
        #: The tool the fake calls when offered it (by name); otherwise the first tool offered.
        self.tool_call_name = tool_call_name
        self.tool_preamble = tool_preamble
        #: When > 0, the stream goes silent this long after its first delta and notices
        #: meanwhile when the client hangs up (``aborted_streams``).
        self.stream_stall = stream_stall
        #: When true, the API dies after the first delta: the connection closes mid-answer.
        self.stream_break = stream_break
        #: Subscription usage sent back on OAuth calls: window -> (utilization 0..1, resets in s).
        self.unified_usage: dict[str, tuple[float, int]] = {"5h": (0.21, 3600), "7d": (0.68, 3 * 86400)}

        #: Valid API keys (create_api_key answers, mint_api_key). Discard one to revoke it.
        self.issued_api_keys: set[str] = set()

        self._routes = {
            AUTHORIZE_PATH: {"GET": self._authorize_claude_ai},
            CONSOLE_AUTHORIZE_PATH: {"GET": self._authorize_console},
            CODE_PAGE_PATH: {"GET": self._code_page},
            SUCCESS_PATH: {"GET": self._success_page},
            TOKEN_PATH: {"POST": self._token},
            REVOKE_PATH: {"POST": self._revoke},
            CREATE_API_KEY_PATH: {"POST": self._create_api_key},
            PROFILE_PATH: {"GET": self._profile},
            ROLES_PATH: {"GET": self._roles},
            "/v1/models": {"GET": self._models},
            "/v1/messages": {"POST": self._messages},
        }
        self._prefix_routes = {"/v1/models/": {"GET": self._model}}

    # ------------------------------------------------------------------ addresses

    @property
    def issuer(self) -> str:
        """Base URL of the fake (``api.anthropic.com`` lives at its root)."""
        return super().issuer

    @property
    def authorize_url(self) -> str:
        """Stands in for ``https://claude.com/cai/oauth/authorize`` (Claude Pro/Max)."""
        return self.issuer + AUTHORIZE_PATH

    @property
    def console_authorize_url(self) -> str:
        """Stands in for ``https://platform.claude.com/oauth/authorize`` (Console)."""
        return self.issuer + CONSOLE_AUTHORIZE_PATH

    @property
    def token_url(self) -> str:
        """Stands in for ``https://platform.claude.com/v1/oauth/token``."""
        return self.issuer + TOKEN_PATH

    @property
    def revoke_url(self) -> str:
        """Stands in for ``https://platform.claude.com/v1/oauth/token/revoke``."""
        return self.issuer + REVOKE_PATH

    @property
    def manual_redirect_uri(self) -> str:
        """Stands in for ``https://platform.claude.com/oauth/code/callback``."""
        return self.issuer + CODE_PAGE_PATH

    @property
    def success_url(self) -> str:
        """Stands in for ``https://platform.claude.com/oauth/code/success?app=claude-code``."""
        return self.issuer + SUCCESS_PATH + "?app=claude-code"

    @property
    def retired_token_url(self) -> str:
        """Stands in for ``https://console.anthropic.com/v1/oauth/token`` (404 now)."""
        return self.issuer + "/console.anthropic.com/v1/oauth/token"

    @property
    def retired_authorize_url(self) -> str:
        """Stands in for ``https://claude.ai/oauth/authorize`` (404 here)."""
        return self.issuer + "/claude.ai/oauth/authorize"

    @property
    def api_base(self) -> str:
        """Stands in for ``https://api.anthropic.com`` (models at ``api_base + "/v1/models"``)."""
        return self.issuer

    @property
    def create_api_key_url(self) -> str:
        """Stands in for ``https://api.anthropic.com/api/oauth/claude_cli/create_api_key``."""
        return self.issuer + CREATE_API_KEY_PATH

    @property
    def profile_url(self) -> str:
        """Stands in for ``https://api.anthropic.com/api/oauth/profile``."""
        return self.issuer + PROFILE_PATH

    @property
    def roles_url(self) -> str:
        """Stands in for ``https://api.anthropic.com/api/oauth/claude_cli/roles``."""
        return self.issuer + ROLES_PATH

    def provider_settings(self) -> dict[str, str]:
        """The ``[providers.claude_code]`` settings that point oauth-hub at this fake."""
        return {
            "authorize_url": self.authorize_url,
            "console_authorize_url": self.console_authorize_url,
            "token_url": self.token_url,
            "revoke_url": self.revoke_url,
            "manual_redirect_uri": self.manual_redirect_uri,
            "success_url": self.success_url,
            "api_base": self.api_base,
            "create_api_key_url": self.create_api_key_url,
            "profile_url": self.profile_url,
            "roles_url": self.roles_url,
        }

    def redirect_uri_allowed(self, uri: str) -> bool:
        """Whether ``uri`` is on the client's redirect allow-list."""
        if self.allowed_redirect_uris is not None:
            return uri in self.allowed_redirect_uris
        if uri == self.manual_redirect_uri:
            return True
        match = re.fullmatch(r"http://localhost:([1-9][0-9]{0,4})/callback", uri)
        return bool(match) and int(match.group(1)) <= 65535

    # ------------------------------------------------------------------ test knobs

    def mint_tokens(self, *, scope: str | None = None, console: bool = False, **overrides: Any) -> dict[str, Any]:
        """A fresh, valid token answer as if a browser sign-in had just completed.

        Lets a test seed a token file without driving a login. ``overrides``
        replace identity attributes for this grant only (and its refreshes):
        ``email``, ``account_uuid``, ``organization_uuid``, ``organization_name``,
        ``plan``, ``api_key_allowed``, ``organization_role`` and ``access_token_ttl``
        (alias ``expires_in``; may be negative to mint an already-expired token).
        ``scope`` defaults to what a Claude Pro/Max sign-in is granted, or with
        ``console`` to what a Console sign-in is granted.
        Returns the same shape as the code exchange: ``{token_type, access_token,
        refresh_token, expires_in, scope, organization, account}``.
        """
        check_overrides(overrides, _IDENTITY_FIELDS)
        if scope is None:
            scope = _scope_string(_granted(SCOPES, console=console))
        with self._lock:
            grant = self._new_grant(self.client_id, scope)
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

    def _authorize_claude_ai(self, req: Request) -> Response:
        return self._authorize(req, console=False)

    def _authorize_console(self, req: Request) -> Response:
        return self._authorize(req, console=True)

    def _authorize(self, req: Request, *, console: bool) -> Response:
        q = req.query
        # RFC 6749 4.1.2.1: with a bad client or redirect URI, never redirect.
        try:
            client_id = single(q, "client_id")
            redirect_uri = single(q, "redirect_uri")
        except ValueError as exc:
            return text_page(400, "Invalid request", f"Parameter '{exc}' was given more than once.")
        if client_id is None or client_id != self.client_id:
            return text_page(400, "Invalid OAuth Request", "Unknown client_id.")
        if redirect_uri is None or not self.redirect_uri_allowed(redirect_uri):
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
        if scopes != SCOPES and not (scopes == INFERENCE_ONLY and not console):
            return fail("invalid_scope", f"Scope must be '{' '.join(AUTHORIZE_SCOPES)}'.")
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
                scope=_scope_string(_granted(scopes, console=console)),
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

    def _success_page(self, req: Request) -> Response:
        """Where Claude Code sends the browser once the sign-in has worked."""
        return text_page(200, "Login successful", "You're all set up for Claude Code. You can close this window.")

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

    def _revoke(self, req: Request) -> Response:
        """RFC 7009 as Claude Code calls it: JSON ``{token, token_type_hint, client_id}``.

        A refresh token takes its whole sign-in (every token of the grant) with it; an
        access token only itself. Unknown tokens are answered 200 too (RFC 7009 2.2).
        """
        if req.content_type != JSON or not isinstance(req.json, dict):
            raise oauth_error(400, "invalid_request", "Request body must be a JSON object.")
        params = dict(req.json)
        self._client(params)
        token = str_param(params, "token")
        hint = params.get("token_type_hint")
        if hint is not None and hint not in ("refresh_token", "access_token"):
            raise oauth_error(400, "unsupported_token_type", f"Unsupported token_type_hint {hint!r}.")
        with self._lock:
            refresh = self._refresh.get(token)
            access = self._access.get(token)
            if refresh is not None:
                self._revoke_grant(refresh.grant_id)
            elif access is not None:
                access.revoked = True
        return json_response(200, {}, {"request-id": _request_id(), **NO_STORE})

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
        """``GET /api/oauth/profile``: the fields Claude Code 2.1.x reads (the plan is
        ``organization.organization_type``: ``claude_max``, ``claude_pro``, ``claude_team``,
        ``claude_enterprise``; anything else is no subscription)."""
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
                    "display_name": ident["email"].split("@")[0],
                    "has_claude_max": plan == "max",
                    "has_claude_pro": plan == "pro",
                },
                "organization": {
                    "uuid": ident["organization_uuid"],
                    "name": ident["organization_name"],
                    "organization_type": _ORG_TYPES.get(plan or "", "api"),
                    "billing_type": "stripe_subscription" if plan else "prepaid",
                    "rate_limit_tier": f"default_claude_{plan}" if plan else None,
                },
            },
            {"request-id": _request_id()},
        )

    def _roles(self, req: Request) -> Response:
        """``GET /api/oauth/claude_cli/roles``: the person's role in the organisation."""
        grant = self._bearer_grant(req)
        self._require_scope(grant, "user:profile")
        ident = self._identity(grant.overrides)
        return json_response(
            200,
            {
                "organization_role": ident["organization_role"],
                "workspace_role": None,
                "organization_name": ident["organization_name"],
            },
            {"request-id": _request_id()},
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
        _check_messages(messages)
        tools = _check_tools(body.get("tools"))
        if model not in {m.get("id") for m in self.models}:
            raise _api_error(404, "not_found_error", f"model: {model}")
        if (grant is not None and self.require_claude_code_system and "haiku" not in model
                and not _system_ok(body.get("system"))):
            raise _api_error(
                400,
                "invalid_request_error",
                "This credential is only authorized for use with Claude Code and cannot be used "
                "for other API requests.",
            )
        blocks = self._reply_blocks(messages, tools, body.get("tool_choice"))
        input_tokens = max(1, len(json.dumps(messages)) // 4)
        output_tokens = max(1, len(json.dumps(blocks)) // 8)
        stop_reason = "tool_use" if blocks[-1]["type"] == "tool_use" else "end_turn"
        msg_id = "msg_" + secrets.token_hex(12)
        rid = _request_id()
        headers = {"request-id": rid, **(self._unified_headers() if grant is not None else {})}
        if body.get("stream") is True:
            return Response(
                200,
                content_type="text/event-stream; charset=utf-8",
                headers={"Cache-Control": "no-cache", **headers},
                stream=self._stream_events(msg_id, model, blocks, stop_reason, input_tokens, output_tokens),
            )
        return json_response(
            200,
            {
                "id": msg_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": blocks,
                "stop_reason": stop_reason,
                "stop_sequence": None,
                "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens,
                          "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
            },
            headers,
        )

    def _reply_blocks(self, messages: list[Any], tools: list[dict[str, Any]], choice: Any) -> list[dict[str, Any]]:
        """What the model says: a tool call when offered tools and no result came back yet, else text."""
        last = messages[-1] if isinstance(messages[-1], dict) else {}
        content = last.get("content")
        answered = isinstance(content, list) and any(
            isinstance(b, dict) and b.get("type") == "tool_result" for b in content)
        no_tools = isinstance(choice, dict) and choice.get("type") == "none"
        if tools and not answered and not no_tools:
            blocks: list[dict[str, Any]] = []
            if self.tool_preamble:
                blocks.append({"type": "text", "text": self.tool_preamble})
            tool = next((t for t in tools if t.get("name") == self.tool_call_name), tools[0])
            blocks.append({"type": "tool_use", "id": "toolu_" + secrets.token_hex(12), "name": tool["name"],
                           "input": json.loads(self.tool_call_arguments)})
            return blocks
        return [{"type": "text", "text": self.reply_text}]

    def _unified_headers(self) -> dict[str, str]:
        """The subscription's rate-limit state, as ``anthropic-ratelimit-unified-*`` headers."""
        now = int(self.now())
        headers = {"anthropic-ratelimit-unified-status": "allowed",
                   "anthropic-ratelimit-unified-representative-claim": "five_hour"}
        for window, (utilization, resets_in) in self.unified_usage.items():
            headers[f"anthropic-ratelimit-unified-{window}-utilization"] = f"{utilization:g}"
            headers[f"anthropic-ratelimit-unified-{window}-reset"] = str(now + resets_in)
            headers[f"anthropic-ratelimit-unified-{window}-status"] = "allowed"
        return headers

    def _stream_events(self, msg_id: str, model: str, blocks: list[dict[str, Any]], stop_reason: str,
                       input_tokens: int, output_tokens: int) -> Iterator[bytes | Stall | Break]:
        delay = self.stream_delay
        stalled = False
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
                    "usage": {"input_tokens": input_tokens, "output_tokens": 1,
                              "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
                },
            },
        )
        for index, block in enumerate(blocks):
            if block["type"] == "text":
                start = {"type": "text", "text": ""}
                pieces = [("text_delta", "text", part) for part in _split3(block["text"])]
            else:
                start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
                pieces = [("input_json_delta", "partial_json", part) for part in
                          _split3(json.dumps(block["input"]))]
            yield _sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": start})
            if index == 0:
                yield _sse("ping", {"type": "ping"})
                hold = self.stream_hold
                if hold is not None:
                    self.stream_held.set()
                    hold.wait(self.stream_hold_timeout)
                    self.stream_released.set()
            for kind, field, part in pieces:
                if delay > 0:
                    time.sleep(delay)
                yield _sse("content_block_delta",
                           {"type": "content_block_delta", "index": index, "delta": {"type": kind, field: part}})
                if self.stream_break:
                    yield Break()
                    return
                if self.stream_stall and not stalled:
                    stalled = True
                    yield Stall(self.stream_stall)
            yield _sse("content_block_stop", {"type": "content_block_stop", "index": index})
        yield _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": output_tokens},
            },
        )
        yield _sse("message_stop", {"type": "message_stop"})


def _check_messages(messages: list[Any]) -> None:
    """Roles, content blocks, and tool results that answer the previous turn's tool calls."""
    previous_calls: set[str] = set()
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise _api_error(400, "invalid_request_error", f"messages.{i}.role: Input should be 'user' or 'assistant'")
        content = message.get("content")
        if isinstance(content, str):
            previous_calls = set()
            continue
        if not isinstance(content, list):
            raise _api_error(400, "invalid_request_error", f"messages.{i}.content: Field required")
        calls: set[str] = set()
        for j, block in enumerate(content):
            kind = block.get("type") if isinstance(block, dict) else None
            if kind not in _BLOCK_TYPES:
                raise _api_error(400, "invalid_request_error", f"messages.{i}.content.{j}.type: Input tag "
                                 f"{kind!r} found using 'type' does not match any of the expected tags")
            if kind == "tool_use":
                if message["role"] != "assistant":
                    raise _api_error(400, "invalid_request_error",
                                     f"messages.{i}.content.{j}: tool_use blocks are only allowed in assistant turns")
                if not isinstance(block.get("id"), str) or not isinstance(block.get("input"), dict):
                    raise _api_error(400, "invalid_request_error", f"messages.{i}.content.{j}.input: Field required")
                calls.add(block["id"])
            if kind == "tool_result" and block.get("tool_use_id") not in previous_calls:
                raise _api_error(
                    400, "invalid_request_error",
                    f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: "
                    f"{block.get('tool_use_id')}. Each `tool_result` block must have a corresponding `tool_use` "
                    "block in the previous message.")
        previous_calls = calls


_BLOCK_TYPES = frozenset({"text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking"})


def _check_tools(tools: Any) -> list[dict[str, Any]]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise _api_error(400, "invalid_request_error", "tools: Input should be a valid list")
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise _api_error(400, "invalid_request_error", f"tools.{i}.custom.name: Field required")
        if "type" not in tool and not isinstance(tool.get("input_schema"), dict):
            raise _api_error(400, "invalid_request_error", f"tools.{i}.custom.input_schema: Field required")
    return [t for t in tools if "input_schema" in t]


def _scope_string(scopes: Iterable[str]) -> str:
    order = list(AUTHORIZE_SCOPES)
    scopes = set(scopes)
    return " ".join([s for s in order if s in scopes] + sorted(scopes - set(order)))


def _granted(requested: Iterable[str], *, console: bool) -> set[str]:
    """What an authorize host grants of the scopes asked for: the Console host only
    key creation and the profile, the Claude Pro/Max host every ``user:`` scope."""
    requested = set(requested)
    if console:
        return requested & CONSOLE_GRANTABLE
    return {scope for scope in requested if scope.startswith("user:")}


def _system_ok(system: Any) -> bool:
    """Claude Code's identity line: the start of a string system prompt, or the whole first block."""
    if isinstance(system, str):
        return system.startswith(CLAUDE_CODE_SYSTEM_PREFIX)
    if isinstance(system, list) and system and isinstance(system[0], dict):
        return system[0].get("type") == "text" and str(system[0].get("text", "")).strip() == CLAUDE_CODE_SYSTEM_PREFIX
    return False


def main(argv: list[str] | None = None) -> int:
    """Run the fake by hand: ``python -m oauth_core.testing.fake_anthropic [--port N] [--console]``."""
    import argparse

    parser = argparse.ArgumentParser(description="A fake claude.ai / Anthropic API on 127.0.0.1, for trying oauth-hub.")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: any free one)")
    parser.add_argument("--console", action="store_true", help="an account without a Claude subscription")
    parser.add_argument("--access-token-ttl", type=int, default=28800, help="access token lifetime in seconds")
    args = parser.parse_args(argv)
    fake = FakeAnthropic(port=args.port, access_token_ttl=args.access_token_ttl)
    if args.console:
        fake.plan = None
    fake.start()
    print(f"Fake Anthropic listening on {fake.issuer} (Ctrl+C to stop). In config.toml:")
    print("[providers.claude_code]")
    for key, value in fake.provider_settings().items():
        print(f'{key} = "{value}"')
    print("", flush=True)
    serve_until_interrupted(fake)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
