"""A strict, standards-compliant OpenID Connect provider, in process, for tests.

It stands in for any OIDC identity provider (Okta, Auth0, Keycloak, Entra ID, Google
...) when testing oauth-hub's generic ``oidc`` provider type or a third-party provider
plugin. Why a real HTTP server and why strict: see :mod:`oauth_core.testing.fake_openai`,
whose conventions this module follows (same lifecycle, knobs as plain attributes, the
same :class:`RecordedRequest` log, ``fail_next``/``count``/``requests_to``/``mint_tokens``).

Unlike the vendor fakes, nothing here mirrors one vendor's quirks; every rule comes
from a specification, so a client that passes against this fake only relies on what
the standards promise:

* OAuth 2.0 (RFC 6749): form-encoded token requests, single-use codes bound to the
  client and redirect URI, error shapes of section 5.2, no redirect to an unverified
  redirect URI (4.1.2.1), one client authentication method at a time (2.3);
* PKCE (RFC 7636) with ``S256`` only, and no verifier for a code that had no
  challenge (the downgrade check of RFC 9700 2.1.1);
* loopback redirect URIs whose port may vary (RFC 8252 7.3);
* OpenID Connect Core 1.0 and Discovery 1.0: endpoints are found only through
  ``/.well-known/openid-configuration`` (the JWKS sits at a path no client guesses),
  ID tokens carry ``nonce`` when one was sent and, on refresh, none (section 12.2),
  ``auth_time`` of the original sign-in and the same ``sub``;
* JWT access tokens (RFC 9068, ``typ: at+jwt``) checked at ``/userinfo`` as bearer
  tokens in the ``Authorization`` header (RFC 6750);
* refresh-token rotation with reuse detection: a reused refresh token kills the whole
  grant (OAuth 2.0 Security BCP, RFC 9700 4.14.2);
* ``iss`` in every authorization response (RFC 9207);
* token revocation (RFC 7009), RP-initiated logout;
* the device authorization grant (RFC 8628): ``authorization_pending`` until the code
  is approved at the verification page, ``slow_down`` (and 5 more seconds of interval)
  for a poll that comes too early, ``expired_token``, ``access_denied``;
* ID tokens signed with any asymmetric JOSE algorithm (``signing_alg``: RS*, PS*, ES*,
  EdDSA), as ``id_token_signing_alg_values_supported`` says.

Knobs for servers that behave differently within the standards: claims kept out of the
ID token (``claims_in_id_token=False``, panva's oidc-provider default: the email is
only at ``/userinfo``), ``scopes_supported`` without ``offline_access`` (then no refresh
token, as at most providers), no refresh token at all (``issue_refresh_token=False``),
and metadata left out of discovery although the endpoint exists (``omit_from_discovery``,
as django-oauth-toolkit leaves out its revocation endpoint).

Scope drives claims, as at real providers: ``email``/``email_verified`` only with the
``email`` scope, ``name`` only with ``profile``; a client that asks for ``openid`` alone
and still expects an email is caught.

All state lives behind one lock: the server answers each connection on its own thread
while the test thread reads and tweaks the same state. Nothing is logged: URLs and
bodies carry codes and tokens.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus, urlsplit

import jwt

from oauth_core.testing._grants import (
    AccessRecord,
    AuthCode,
    CodeErrors,
    Grant,
    GrantBook,
    RefreshRecord,
    new_grant_id,
    pkce_matches,
)
from oauth_core.testing._server import (
    FORM,
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
    text_page,
)
from oauth_core.testing.jwt_keys import SigningKey

__all__ = [
    "AUTHORIZE_PATH",
    "DEFAULT_CLIENT_ID",
    "DEVICE_AUTHORIZATION_PATH",
    "DEVICE_CODE_GRANT",
    "DEVICE_PATH",
    "DEFAULT_SCOPES",
    "DISCOVERY_PATH",
    "END_SESSION_PATH",
    "FakeOIDC",
    "JWKS_PATH",
    "RecordedRequest",
    "REVOKE_PATH",
    "TOKEN_PATH",
    "USERINFO_PATH",
    "main",
]

DEFAULT_CLIENT_ID = "oauth-hub-test"
DEFAULT_SCOPES: tuple[str, ...] = ("openid", "profile", "email", "offline_access")

DISCOVERY_PATH = "/.well-known/openid-configuration"
AUTHORIZE_PATH = "/authorize"
TOKEN_PATH = "/token"
# Deliberately not /.well-known/jwks.json: a client must read jwks_uri from discovery.
JWKS_PATH = "/keys/jwks.json"
USERINFO_PATH = "/userinfo"
REVOKE_PATH = "/revoke"
END_SESSION_PATH = "/logout"
DEVICE_AUTHORIZATION_PATH = "/device_authorization"
DEVICE_PATH = "/device"  # the verification page a person opens (RFC 8628 3.3)
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SLOW_DOWN_STEP = 5  # seconds added to the interval by each slow_down (RFC 8628 3.5)

ACCESS_TOKEN_TYP = "at+jwt"

# An S256 challenge is base64url-nopad of 32 bytes: exactly 43 characters.
_S256_RE = re.compile(r"^[A-Za-z0-9\-_]{43}$")
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost")

#: mint_tokens() overrides that apply to one grant (and its refreshes).
_OVERRIDABLE = frozenset({"subject", "email", "email_verified", "name", "access_token_ttl", "id_token_ttl"})


@dataclass(kw_only=True)
class _Grant(Grant):
    subject: str  # fixed for the grant's life (OIDC 12.2: a refresh keeps sub)
    auth_time: int  # the original sign-in, repeated in every ID token (OIDC 12.2)
    audience: str | None


@dataclass(kw_only=True)
class _AuthCode(AuthCode):
    nonce: str | None
    audience: str | None
    auth_time: int


@dataclass(kw_only=True)
class _AccessRecord(AccessRecord):
    scope: str


@dataclass(kw_only=True)
class _DeviceRecord:
    """One device authorization (RFC 8628), until its tokens are fetched or it expires."""

    client_id: str
    scope: str
    user_code: str
    expires_at: float
    interval: float
    status: str = "pending"  # "approved", "denied", "used"
    last_poll: float | None = None


def _invalid_client(description: str) -> ReplyError:
    # RFC 6749 5.2: 401 with a WWW-Authenticate challenge naming the scheme we accept.
    return oauth_error(401, "invalid_client", description, {"WWW-Authenticate": 'Basic realm="fake-oidc"'})


def _bearer_error(status: int, code: str | None, description: str = "") -> ReplyError:
    """RFC 6750 3: the error goes in WWW-Authenticate; none at all when no token was sent."""
    challenge = 'Bearer realm="fake-oidc"'
    if code is None:
        return ReplyError(Response(status, b"", "application/json", {"WWW-Authenticate": challenge, **NO_STORE}))
    challenge += f', error="{code}", error_description="{description}"'
    return ReplyError(
        json_response(
            status,
            {"error": code, "error_description": description},
            {"WWW-Authenticate": challenge, **NO_STORE},
        )
    )


def _html_page(status: int, title: str, message: str) -> Response:
    """A page of plain ``message``; never cached, as it answers one request."""
    return text_page(status, title, message, {"Cache-Control": "no-store"})


def _required(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise oauth_error(400, "invalid_request", f"Missing required parameter: {name}.")
    return value


def _well_formed_s256(challenge: str) -> bool:
    """True for a canonical base64url-nopad encoding of 32 bytes (what S256 yields)."""
    if not _S256_RE.match(challenge):
        return False
    try:
        raw = base64.urlsafe_b64decode(challenge + "=")
    except (binascii.Error, ValueError):
        return False
    return len(raw) == 32 and base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == challenge


def _loopback_parts(uri: str) -> tuple[str, str, str] | None:
    """(host, path, query) of an ``http://127.0.0.1|localhost:<port>/<path>`` URI, else None.

    The port must be explicit, the path present, and there may be no user info or
    fragment (RFC 6749 3.1.2 forbids fragments in redirect URIs).
    """
    if "#" in uri:
        return None
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname
    if parts.scheme != "http" or host not in _LOOPBACK_HOSTS or port is None or port < 1:
        return None
    if parts.netloc != f"{host}:{port}" or not parts.path.startswith("/"):
        return None
    return host, parts.path, parts.query


def _at_hash(access_token: str) -> str:
    """OIDC Core 3.1.3.6: left half of SHA-256 of the access token, base64url-nopad."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode("ascii")


def _scope_list(scope: str) -> list[str]:
    return [s for s in scope.split(" ") if s]


class _Handler(RequestHandler):
    server_version = "fake-oidc"


class FakeOIDC(GrantBook):
    """A generic OpenID Connect provider on 127.0.0.1 (authorization code + PKCE).

    Every constructor argument is also a plain attribute that tests may change between
    steps (``fake.rotate_refresh_tokens = False`` before a refresh, ``fake.clock_offset
    += 3600`` to expire things). Identity values (``email``, ``name``...) are read when
    tokens are minted, so a refresh picks up a change; ``subject`` is fixed per grant.

    Typical use::

        with FakeOIDC() as idp:
            config = requests.get(idp.discovery_url).json()
            ...  # authorize (auto-approved), then POST config["token_endpoint"]
    """

    _handler_class = _Handler
    _label = "FakeOIDC"
    _code_errors = CodeErrors(
        unknown="Unknown authorization code.",
        used="The authorization code has already been used.",
        expired="The authorization code has expired.",
        other_client="The authorization code was issued to another client.",
    )

    def __init__(
        self,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str | None = None,
        allowed_redirect_uris: list[str] | None = None,
        exact_redirect_uris: list[str] | None = None,
        scopes_supported: list[str] | None = None,
        require_pkce: bool = True,
        require_state: bool = True,
        issue_refresh_token: bool = True,
        rotate_refresh_tokens: bool = True,
        access_token_ttl: int = 3600,
        id_token_ttl: int = 3600,
        code_ttl: float = 60,
        subject: str = "fake-user-0001",
        email: str = "user@example.com",
        email_verified: bool = True,
        name: str = "Fake User",
        send_iss_in_callback: bool = True,
        authorize_error: str | None = None,
        clock_offset: float = 0.0,
        audience_param: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        connection_timeout: float = 10.0,
        signing_key: SigningKey | None = None,
        forge_key: SigningKey | None = None,
        signing_alg: str = "RS256",
        id_token_signing_alg_values: list[str] | None = None,
        claims_in_id_token: bool = True,
        device_flow: bool = True,
        device_interval: int = 5,
        device_code_ttl: float = 600,
        omit_from_discovery: list[str] | None = None,
        callback_iss: str | None = None,
    ) -> None:
        super().__init__(host=host, port=port, connection_timeout=connection_timeout, clock_offset=clock_offset)
        self.client_id = client_id
        #: None: a public client (token_endpoint_auth_method "none"). A string: a
        #: confidential client that must use client_secret_basic or client_secret_post.
        self.client_secret = client_secret
        #: Registered redirect URIs. A loopback one matches any port (RFC 8252 7.3),
        #: others match exactly. None: any http://127.0.0.1|localhost:<port>/<path>.
        self.allowed_redirect_uris = allowed_redirect_uris
        #: When set, only these exact strings (port included) are accepted; wins over
        #: allowed_redirect_uris.
        self.exact_redirect_uris = exact_redirect_uris
        self.scopes_supported: list[str] = list(scopes_supported) if scopes_supported else list(DEFAULT_SCOPES)
        self.require_pkce = require_pkce
        self.require_state = require_state
        #: Issue a refresh token when offline_access was granted.
        self.issue_refresh_token = issue_refresh_token
        #: Each refresh returns a new refresh token and retires the old one; a retired
        #: one presented again revokes the whole grant. False: the refresh token stays
        #: valid and refresh answers carry none.
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.access_token_ttl = access_token_ttl
        self.id_token_ttl = id_token_ttl
        self.code_ttl = code_ttl
        self.subject = subject
        self.email = email
        self.email_verified = email_verified
        self.name = name
        #: RFC 9207: add iss to every authorization response (and say so in discovery).
        self.send_iss_in_callback = send_iss_in_callback
        #: A misbehaving (or mixed-up) server: the iss value its callbacks carry instead of
        #: the issuer; "" leaves iss out although discovery says it is sent.
        self.callback_iss = callback_iss
        #: When set (e.g. "access_denied"), a valid authorize request redirects with it.
        self.authorize_error = authorize_error
        #: Accept an ``audience`` authorize parameter (Auth0 style) and make it the
        #: access token's aud. False: the parameter is ignored, as OIDC says unknown
        #: parameters must be.
        self.audience_param = audience_param
        #: Put the scope's claims (email, name) into the ID token. False: only ``sub`` and
        #: the protocol claims are there, the rest is served at /userinfo (OIDC Core 5.4
        #: allows either; panva's oidc-provider does this by default).
        self.claims_in_id_token = claims_in_id_token
        #: What discovery lists as id_token_signing_alg_values_supported; None: the
        #: signing key's algorithm.
        self.id_token_signing_alg_values = id_token_signing_alg_values
        #: Offer the device authorization grant (RFC 8628) and advertise its endpoint.
        self.device_flow = device_flow
        #: Seconds a client must wait between polls of one device code.
        self.device_interval = device_interval
        self.device_code_ttl = device_code_ttl
        #: Number of upcoming device polls answered slow_down whatever their timing.
        self.force_slow_down = 0
        #: Discovery metadata keys to leave out (the endpoints keep working).
        self.omit_from_discovery: list[str] = list(omit_from_discovery or [])
        #: Every device poll's outcome in order: an error code or "tokens".
        self.device_poll_answers: list[str] = []
        self._devices: dict[str, _DeviceRecord] = {}

        # Published keys, oldest first; the last one signs. A fresh key per instance
        # by default so tokens never verify against another test's server; a suite
        # may pass a shared one to skip RSA key generation.
        self._keys: list[SigningKey] = [signing_key or SigningKey(alg=signing_alg)]
        self._forge_key = forge_key
        self._routes = {
            DISCOVERY_PATH: {"GET": self._discovery},
            AUTHORIZE_PATH: {"GET": self._authorize},
            TOKEN_PATH: {"POST": self._token},
            JWKS_PATH: {"GET": self._jwks},
            USERINFO_PATH: {"GET": self._userinfo, "POST": self._userinfo},
            REVOKE_PATH: {"POST": self._revoke},
            END_SESSION_PATH: {"GET": self._end_session, "POST": self._end_session},
            DEVICE_AUTHORIZATION_PATH: {"POST": self._device_authorization},
            DEVICE_PATH: {"GET": self._device_page, "POST": self._device_decision},
        }

    # ------------------------------------------------------------------ addresses

    @property
    def discovery_url(self) -> str:
        return self.issuer + DISCOVERY_PATH

    @property
    def authorization_endpoint(self) -> str:
        return self.issuer + AUTHORIZE_PATH

    @property
    def token_endpoint(self) -> str:
        return self.issuer + TOKEN_PATH

    @property
    def jwks_uri(self) -> str:
        return self.issuer + JWKS_PATH

    @property
    def userinfo_endpoint(self) -> str:
        return self.issuer + USERINFO_PATH

    @property
    def revocation_endpoint(self) -> str:
        return self.issuer + REVOKE_PATH

    @property
    def end_session_endpoint(self) -> str:
        return self.issuer + END_SESSION_PATH

    @property
    def device_authorization_endpoint(self) -> str:
        return self.issuer + DEVICE_AUTHORIZATION_PATH

    @property
    def verification_uri(self) -> str:
        return self.issuer + DEVICE_PATH

    def redirect_uri_allowed(self, uri: str) -> bool:
        """Whether ``/authorize`` accepts ``uri`` under the current knobs."""
        if self.exact_redirect_uris is not None:
            return uri in self.exact_redirect_uris
        actual = _loopback_parts(uri)
        if self.allowed_redirect_uris is None:
            return actual is not None
        for registered in self.allowed_redirect_uris:
            if uri == registered:
                return True
            if actual is not None and _loopback_parts(registered) == actual:
                return True  # same host, path and query; the port may vary
        return False

    # ------------------------------------------------------------------ keys

    @property
    def key(self) -> SigningKey:
        """The key that signs new tokens (the newest published one)."""
        with self._lock:
            return self._keys[-1]

    @property
    def keys(self) -> list[SigningKey]:
        """Every published key, oldest first."""
        with self._lock:
            return list(self._keys)

    @property
    def forge_key(self) -> SigningKey:
        """A key that is never published: what :meth:`forge` signs with."""
        with self._lock:
            if self._forge_key is None:
                self._forge_key = SigningKey(alg=self._keys[-1].alg)
            return self._forge_key

    def rotate_keys(self, *, keep_old: bool = True, new_key: SigningKey | None = None) -> SigningKey:
        """Start signing with a new key; returns it.

        With ``keep_old`` the previous keys stay in the JWKS (a graceful rotation:
        tokens already issued still verify). Without it they vanish at once, so tokens
        signed by them fail everywhere, and a client must re-fetch the JWKS.
        """
        key = new_key or SigningKey(alg=self.key.alg)
        with self._lock:
            self._keys = [*self._keys, key] if keep_old else [key]
        return key

    def jwks(self) -> dict[str, Any]:
        """The document served at ``jwks_uri``: every published key, newest first."""
        with self._lock:
            return {"keys": [k.public_jwk() for k in reversed(self._keys)]}

    def sign(self, claims: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
        """Sign arbitrary ``claims`` with the current published key (a forged-but-valid token)."""
        return self.key.sign(claims, headers)

    def forge(self, claims: dict[str, Any], kid: str | None = None, headers: dict[str, Any] | None = None) -> str:
        """Sign ``claims`` with :attr:`forge_key` but name a published ``kid``.

        The token looks like ours (right kid, RS256) yet its signature is wrong: what a
        client that skips signature checks, or trusts the kid alone, would accept.
        """
        hdr = {"kid": kid or self.key.kid}
        hdr.update(headers or {})
        return self.forge_key.sign(claims, hdr)

    def verify_jwt(self, token: str) -> dict[str, Any]:
        """Signature-check ``token`` against the published keys and return its claims.

        Like :meth:`SigningKey.verify`, no time or audience checks. Raises
        :class:`jwt.InvalidTokenError`.
        """
        kid = jwt.get_unverified_header(token).get("kid")
        for key in self.keys:
            if key.kid == kid:
                return key.verify(token)
        raise jwt.InvalidTokenError("unknown key id")

    # ------------------------------------------------------------------ test knobs

    def mint_tokens(
        self,
        *,
        scope: str | None = None,
        nonce: str | None = None,
        audience: str | None = None,
        **overrides: Any,
    ) -> dict[str, Any]:
        """A registered token answer, exactly as a code exchange would give it.

        Lets a test start after the browser step. ``scope`` defaults to every supported
        scope (so a refresh token is included when ``issue_refresh_token``); ``nonce``
        goes into the ID token; ``audience`` becomes the access token's aud. Other
        ``overrides`` apply to this grant only (and its refreshes): ``subject``,
        ``email``, ``email_verified``, ``name``, ``access_token_ttl`` (alias
        ``expires_in``; negative mints an already-expired token) and ``id_token_ttl``.
        """
        check_overrides(overrides, _OVERRIDABLE)
        scope = " ".join(_scope_list(scope)) if scope is not None else " ".join(self.scopes_supported)
        bad = set(_scope_list(scope)) - set(self.scopes_supported)
        if bad or not scope:
            raise ValueError(f"scope must be made of {' '.join(self.scopes_supported)}")
        with self._lock:
            grant = self._new_grant(self.client_id, scope, audience, int(self.now()), dict(overrides))
            return self._issue(grant, scope, nonce)

    @staticmethod
    def _recorded_grant_type(record: RecordedRequest) -> Any:
        """The token endpoint takes forms only (RFC 6749 3.2), so count() looks at the form body only."""
        return (record.form or {}).get("grant_type")

    # ------------------------------------------------------------------ tokens

    def _identity(self, grant: _Grant) -> dict[str, Any]:
        ident = {name: getattr(self, name) for name in _OVERRIDABLE}
        ident.update(grant.overrides)
        return ident

    def _new_grant(
        self, client_id: str, scope: str, audience: str | None, auth_time: int, overrides: dict[str, Any]
    ) -> _Grant:
        subject = str(overrides.get("subject", self.subject))
        return self._add_grant(
            _Grant(
                grant_id=new_grant_id(),
                client_id=client_id,
                scope=scope,
                overrides=overrides,
                subject=subject,
                auth_time=auth_time,
                audience=audience,
            )
        )

    def _issue(self, grant: _Grant, scope: str, nonce: str | None, refresh: bool = True) -> dict[str, Any]:
        """Mint the token answer for ``grant`` with ``scope``; the caller holds the lock."""
        ident = self._identity(grant)
        now = int(self.now())
        scopes = _scope_list(scope)
        ttl = int(ident["access_token_ttl"])
        jti = secrets.token_hex(16)
        access_token = self.sign(
            {
                "iss": self.issuer,
                "sub": grant.subject,
                "aud": grant.audience or grant.client_id,
                "client_id": grant.client_id,
                "scope": scope,
                "iat": now,
                "exp": now + ttl,
                "auth_time": grant.auth_time,
                "jti": jti,
            },
            {"typ": ACCESS_TOKEN_TYP},  # RFC 9068 2.1
        )
        self._access[jti] = _AccessRecord(grant_id=grant.grant_id, expires_at=float(now + ttl), scope=scope)
        out: dict[str, Any] = {"access_token": access_token, "token_type": "Bearer", "expires_in": ttl}
        if "openid" in scopes:
            id_claims: dict[str, Any] = {
                "iss": self.issuer,
                "sub": grant.subject,
                "aud": grant.client_id,
                "exp": now + int(ident["id_token_ttl"]),
                "iat": now,
                "auth_time": grant.auth_time,
                "at_hash": _at_hash(access_token),
            }
            if nonce is not None:
                id_claims["nonce"] = nonce
            if "email" in scopes and self.claims_in_id_token:
                id_claims["email"] = ident["email"]
                id_claims["email_verified"] = bool(ident["email_verified"])
            if "profile" in scopes and self.claims_in_id_token:
                id_claims["name"] = ident["name"]
            out["id_token"] = self.sign(id_claims)
        if refresh and self.issue_refresh_token and "offline_access" in _scope_list(grant.scope):
            token = secrets.token_urlsafe(48)
            self._refresh[token] = RefreshRecord(grant.grant_id, self.now())
            out["refresh_token"] = token
        out["scope"] = scope
        return out

    def _check_access_token(self, token: str) -> tuple[dict[str, Any], _Grant] | str:
        """Claims and grant of a usable access token, or why it is not usable."""
        try:
            if jwt.get_unverified_header(token).get("typ") != ACCESS_TOKEN_TYP:
                return "The token is not an access token."
            claims = self.verify_jwt(token)
        except jwt.PyJWTError:
            return "The access token is malformed or its signature does not verify."
        with self._lock:
            rec = self._access.get(str(claims.get("jti")))
            grant = self._grants.get(rec.grant_id) if rec is not None else None
            if rec is None or grant is None or claims.get("iss") != self.issuer:
                return "The access token was not issued by this server."
            if rec.revoked or grant.revoked:
                return "The access token has been revoked."
            if rec.force_expired or rec.expires_at <= self.now():
                return "The access token has expired."
        return claims, grant

    # ------------------------------------------------------------------ dispatch

    def _not_found(self, req: Request) -> Response:
        return oauth_error(404, "not_found", f"No such endpoint: {req.path}").response

    def _method_not_allowed(self, req: Request) -> Response:
        return oauth_error(405, "invalid_request", f"Method {req.method} not allowed.").response

    def _length_required(self) -> Response:
        return oauth_error(411, "invalid_request", "Content-Length is required.").response

    def _bad_body_length(self, status: int) -> Response:
        return oauth_error(status, "invalid_request", "Bad body length.").response

    def _internal_error(self) -> Response:
        return oauth_error(500, "server_error", "Internal error in the fake.").response

    def _injected_failure(self, status: int) -> Response:
        # The RFC 6749 5.2 body alone: headers come only from fail_next(headers=...).
        return json_response(status, {"error": "server_error", "error_description": "Injected failure."})

    @staticmethod
    def _form(req: Request) -> dict[str, str]:
        """The body parameters of a token-style POST: form-encoded only (RFC 6749 3.2).

        Parameters in the URL are refused (they end up in logs), and so is a repeated
        parameter.
        """
        if req.query:
            raise oauth_error(400, "invalid_request", "Send parameters in the request body, not in the URL.")
        if req.content_type != FORM:
            raise oauth_error(
                400, "invalid_request", f"Content-Type must be {FORM}, not {req.content_type or '(none)'!r}."
            )
        if req.form is None:
            raise oauth_error(400, "invalid_request", "The body is not valid UTF-8.")
        params: dict[str, str] = {}
        for name in req.form:
            try:
                params[name] = single(req.form, name) or ""
            except ValueError:
                raise oauth_error(400, "invalid_request", f"Parameter '{name}' was included more than once.") from None
        return params

    def _authenticate_client(self, req: Request, params: dict[str, str]) -> str:
        """The authenticated client_id (RFC 6749 2.3), or invalid_client / invalid_request."""
        basic: tuple[str, str] | None = None
        header = req.headers.get("Authorization")
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() != "basic":
                raise _invalid_client("Unsupported client authentication scheme.")
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            except (binascii.Error, ValueError):
                raise _invalid_client("Malformed Basic credentials.") from None
            user, sep, password = decoded.partition(":")
            if not sep:
                raise _invalid_client("Malformed Basic credentials.")
            # RFC 6749 2.3.1: both halves are form-urlencoded before base64.
            basic = (unquote_plus(user), unquote_plus(password))
        body_id = params.get("client_id")
        body_secret = params.get("client_secret")
        if basic is not None and body_secret is not None:
            raise oauth_error(400, "invalid_request", "Use only one client authentication method.")
        if basic is not None:
            if body_id is not None and body_id != basic[0]:
                raise _invalid_client("client_id in the body does not match the Authorization header.")
            client_id, secret, method = basic[0], basic[1], "client_secret_basic"
        elif body_secret is not None:
            client_id, secret, method = body_id, body_secret, "client_secret_post"
        else:
            client_id, secret, method = body_id, None, "none"
        if not client_id:
            raise _invalid_client("Client authentication missing: send client_id.")
        if client_id != self.client_id:
            raise _invalid_client("Unknown client.")
        expected = self.client_secret
        if expected is None:
            if method != "none":
                raise _invalid_client("This is a public client (token_endpoint_auth_method none); send no secret.")
        else:
            if method == "none":
                raise _invalid_client("This client must authenticate with client_secret_basic or client_secret_post.")
            assert secret is not None
            if not hmac.compare_digest(secret.encode(), expected.encode()):
                raise _invalid_client("Client authentication failed.")
        return client_id

    # ------------------------------------------------------------------ discovery, JWKS

    def _discovery(self, req: Request) -> Response:
        iss = self.issuer
        auth_methods = ["none"] if self.client_secret is None else ["client_secret_basic", "client_secret_post"]
        grant_types = ["authorization_code", "refresh_token"] + ([DEVICE_CODE_GRANT] if self.device_flow else [])
        algs = self.id_token_signing_alg_values or [self.key.alg]
        doc: dict[str, Any] = {
            "issuer": iss,
            "authorization_endpoint": iss + AUTHORIZE_PATH,
            "token_endpoint": iss + TOKEN_PATH,
            "jwks_uri": iss + JWKS_PATH,
            "userinfo_endpoint": iss + USERINFO_PATH,
            "revocation_endpoint": iss + REVOKE_PATH,
            "end_session_endpoint": iss + END_SESSION_PATH,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": grant_types,
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": list(algs),
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": list(self.scopes_supported),
            "token_endpoint_auth_methods_supported": auth_methods,
            "revocation_endpoint_auth_methods_supported": auth_methods,
            "claims_supported": [
                "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash",
                "email", "email_verified", "name",
            ],
            "authorization_response_iss_parameter_supported": bool(self.send_iss_in_callback),
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
        }
        if self.device_flow:
            doc["device_authorization_endpoint"] = iss + DEVICE_AUTHORIZATION_PATH
        for key in self.omit_from_discovery:
            doc.pop(key, None)
        return json_response(200, doc)

    def _jwks(self, req: Request) -> Response:
        return json_response(200, self.jwks())

    # ------------------------------------------------------------------ /authorize

    def _authorize(self, req: Request) -> Response:
        q = req.query
        # RFC 6749 4.1.2.1: with a bad client or redirect URI, show an error, never redirect.
        try:
            client_id = single(q, "client_id")
            redirect_uri = single(q, "redirect_uri")
        except ValueError as exc:
            return _html_page(400, "Invalid request", f"Parameter '{exc}' was given more than once.")
        if not client_id or client_id != self.client_id:
            return _html_page(400, "Unknown client", "The client_id is missing or not registered.")
        if not redirect_uri or not self.redirect_uri_allowed(redirect_uri):
            return _html_page(400, "Invalid redirect_uri", "The redirect_uri is missing or not registered.")
        try:
            state = single(q, "state")
        except ValueError:
            state = None
        issuer = self.issuer

        def redirect(params: dict[str, str]) -> Response:
            if state:
                params["state"] = state
            if self.send_iss_in_callback and self.callback_iss != "":
                params["iss"] = issuer if self.callback_iss is None else self.callback_iss
            return Response(302, b"", "text/plain", {"Location": add_query(redirect_uri, params), **NO_STORE})

        def fail(error: str, description: str) -> Response:
            return redirect({"error": error, "error_description": description})

        for name, values in q.items():
            if len(values) > 1:
                return fail("invalid_request", f"Parameter '{name}' was included more than once.")
        p = {k: v[0] for k, v in q.items()}

        if "request" in p:
            return fail("request_not_supported", "Request objects are not supported.")
        if "request_uri" in p:
            return fail("request_uri_not_supported", "request_uri is not supported.")
        response_type = p.get("response_type")
        if not response_type:
            return fail("invalid_request", "Missing required parameter: response_type.")
        if response_type != "code":
            return fail("unsupported_response_type", "Only response_type=code is supported.")
        if p.get("response_mode", "query") != "query":
            return fail("invalid_request", "Only response_mode=query is supported.")
        scopes = _scope_list(p.get("scope", ""))
        if not scopes:
            return fail("invalid_scope", "Missing required parameter: scope.")
        unknown = [s for s in scopes if s not in self.scopes_supported]
        if unknown:
            return fail("invalid_scope", f"Unsupported scope(s): {' '.join(unknown)}.")
        if "openid" not in scopes:
            return fail("invalid_scope", "The openid scope is required.")

        challenge = p.get("code_challenge")
        method = p.get("code_challenge_method")
        if challenge is None:
            if method is not None:
                return fail("invalid_request", "code_challenge_method was sent without code_challenge.")
            if self.require_pkce:
                return fail("invalid_request", "PKCE is required: send code_challenge with code_challenge_method=S256.")
        else:
            if method is None:
                # RFC 7636 4.3: an absent method means "plain", which is refused.
                return fail("invalid_request", "code_challenge_method is required and must be S256.")
            if method != "S256":
                return fail("invalid_request", "code_challenge_method must be S256.")
            if not _well_formed_s256(challenge):
                return fail("invalid_request", "code_challenge must be a 43-character base64url SHA-256 digest.")
        if not state and self.require_state:
            return fail("invalid_request", "Missing required parameter: state.")
        nonce = p.get("nonce")
        if nonce == "":
            return fail("invalid_request", "nonce must not be empty.")
        prompt = _scope_list(p.get("prompt", ""))
        if "none" in prompt and len(prompt) > 1:
            return fail("invalid_request", "prompt=none cannot be combined with other values.")
        audience = p.get("audience") if self.audience_param else None
        if audience == "":
            return fail("invalid_request", "audience must not be empty.")
        if self.authorize_error:
            return fail(self.authorize_error, "The user or the server declined the request.")

        code = secrets.token_urlsafe(32)
        now = self.now()
        with self._lock:
            self._codes[code] = _AuthCode(
                client_id=client_id,
                redirect_uri=redirect_uri,
                code_challenge=challenge,
                scope=" ".join(scopes),
                nonce=nonce,
                audience=audience,
                auth_time=int(now),
                expires_at=now + self.code_ttl,
            )
        return redirect({"code": code})

    # ------------------------------------------------------------------ /token

    def _token(self, req: Request) -> Response:
        params = self._form(req)
        client_id = self._authenticate_client(req, params)
        grant_type = params.get("grant_type")
        if not grant_type:
            raise oauth_error(400, "invalid_request", "Missing required parameter: grant_type.")
        if grant_type == "authorization_code":
            body = self._grant_code(params, client_id)
        elif grant_type == "refresh_token":
            body = self._grant_refresh(params, client_id)
        elif grant_type == DEVICE_CODE_GRANT and self.device_flow:
            body = self._grant_device_code(params, client_id)
        else:
            raise oauth_error(400, "unsupported_grant_type", f"Unsupported grant_type {grant_type!r}.")
        return json_response(200, body, NO_STORE)

    def _grant_code(self, params: dict[str, str], client_id: str) -> dict[str, Any]:
        code = _required(params, "code")
        redirect_uri = _required(params, "redirect_uri")
        verifier = params.get("code_verifier")
        with self._lock:
            rec = self._code_for_exchange(code, client_id, redirect_uri)
            assert isinstance(rec, _AuthCode)
            if rec.code_challenge is None:
                if verifier is not None:
                    # RFC 9700 2.1.1: a verifier for a code without challenge is a downgrade.
                    raise oauth_error(400, "invalid_grant", "code_verifier sent, but the request had no challenge.")
            else:
                if not verifier:
                    raise oauth_error(400, "invalid_request", "Missing required parameter: code_verifier.")
                if not VERIFIER_RE.match(verifier):
                    raise oauth_error(400, "invalid_grant", "code_verifier must be 43-128 unreserved characters.")
                if not pkce_matches(verifier, rec.code_challenge):
                    raise oauth_error(400, "invalid_grant", "PKCE verification failed.")
            rec.used = True
            grant = self._new_grant(client_id, rec.scope, rec.audience, rec.auth_time, {})
            rec.grant_id = grant.grant_id
            return self._issue(grant, rec.scope, rec.nonce)

    def _grant_refresh(self, params: dict[str, str], client_id: str) -> dict[str, Any]:
        token = _required(params, "refresh_token")
        scope = params.get("scope")
        with self._lock:
            rec, grant = self._refresh_grant(token)
            if rec is None or grant is None:
                raise oauth_error(400, "invalid_grant", "Unknown refresh token.")
            if rec.revoked or grant.revoked:
                raise oauth_error(400, "invalid_grant", "The refresh token has been revoked.")
            if grant.client_id != client_id:
                raise oauth_error(400, "invalid_grant", "The refresh token was issued to another client.")
            if rec.used:
                # Reuse of a rotated token means it leaked (RFC 9700 4.14.2): end the grant.
                self._revoke_grant(grant.grant_id)
                raise oauth_error(
                    400, "invalid_grant", "The refresh token was already used; the grant has been revoked."
                )
            granted = _scope_list(grant.scope)
            if scope is not None:
                wanted = _scope_list(scope)
                if not wanted or any(s not in granted for s in wanted):
                    raise oauth_error(400, "invalid_scope", "The requested scope exceeds the original grant.")
                new_scope = " ".join(wanted)
            else:
                new_scope = grant.scope
            # OIDC 12.2: the refreshed ID token carries no nonce.
            out = self._issue(grant, new_scope, None, refresh=self.rotate_refresh_tokens)
            if "refresh_token" in out:
                rec.used = True
            return out

    # ------------------------------------------------------------------ /userinfo

    def _userinfo(self, req: Request) -> Response:
        in_body = req.form is not None and "access_token" in req.form
        if "access_token" in req.query or in_body:
            raise _bearer_error(400, "invalid_request", "Send the access token in the Authorization header.")
        header = req.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            raise _bearer_error(401, None)
        token = token.strip()
        if not token:
            raise _bearer_error(400, "invalid_request", "Empty bearer token.")
        checked = self._check_access_token(token)
        if isinstance(checked, str):
            raise _bearer_error(401, "invalid_token", checked)
        claims, grant = checked
        scopes = _scope_list(str(claims.get("scope", "")))
        if "openid" not in scopes:
            raise _bearer_error(403, "insufficient_scope", "The access token lacks the openid scope.")
        with self._lock:
            ident = self._identity(grant)
        body: dict[str, Any] = {"sub": grant.subject}
        if "profile" in scopes:
            body["name"] = ident["name"]
        if "email" in scopes:
            body["email"] = ident["email"]
            body["email_verified"] = bool(ident["email_verified"])
        return json_response(200, body, NO_STORE)

    # ------------------------------------------------------------------ device flow (RFC 8628)

    def approve_device(self, user_code: str, *, approve: bool = True) -> None:
        """What a person does at the verification page: approve (or deny) ``user_code``.

        Raises ``KeyError`` for a code that is unknown, expired or already decided.
        """
        with self._lock:
            record = self._pending_device(user_code)
            if record is None:
                raise KeyError(f"no pending device authorization with user code {user_code!r}")
            record.status = "approved" if approve else "denied"

    def _pending_device(self, user_code: str) -> _DeviceRecord | None:
        wanted = user_code.strip().upper().replace("-", "")
        for record in self._devices.values():
            if record.user_code.replace("-", "") == wanted:
                if record.status == "pending" and self.now() <= record.expires_at:
                    return record
                return None
        return None

    def _device_authorization(self, req: Request) -> Response:
        if not self.device_flow:
            return self._not_found(req)
        params = self._form(req)
        client_id = self._authenticate_client(req, params)
        scopes = _scope_list(params.get("scope", "")) or ["openid"]
        unknown = [s for s in scopes if s not in self.scopes_supported]
        if unknown:
            raise oauth_error(400, "invalid_scope", f"Unsupported scope(s): {' '.join(unknown)}.")
        device_code = secrets.token_urlsafe(32)
        letters = "BCDFGHJKLMNPQRSTVWXZ"  # RFC 8628 6.1: no vowels, no look-alikes
        user_code = "".join(secrets.choice(letters) for _ in range(8))
        user_code = f"{user_code[:4]}-{user_code[4:]}"
        with self._lock:
            self._devices[device_code] = _DeviceRecord(
                client_id=client_id, scope=" ".join(scopes), user_code=user_code,
                expires_at=self.now() + self.device_code_ttl, interval=float(self.device_interval),
            )
        uri = self.issuer + DEVICE_PATH
        return json_response(200, {
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": uri,
            "verification_uri_complete": add_query(uri, {"user_code": user_code}),
            "expires_in": int(self.device_code_ttl),
            "interval": self.device_interval,
        }, NO_STORE)

    def _grant_device_code(self, params: dict[str, str], client_id: str) -> dict[str, Any]:
        device_code = _required(params, "device_code")
        with self._lock:
            record = self._devices.get(device_code)
            if record is None or record.client_id != client_id or record.status == "used":
                self.device_poll_answers.append("invalid_grant")
                raise oauth_error(400, "invalid_grant", "Unknown or already used device_code.")
            now = self.now()
            answer = self._device_answer(record, now)
            self.device_poll_answers.append(answer)
            if answer != "tokens":
                raise oauth_error(400, answer, {
                    "authorization_pending": "The user has not approved the device yet.",
                    "slow_down": f"Poll at most every {record.interval:g} seconds.",
                    "expired_token": "The device_code has expired; start over.",
                    "access_denied": "The user denied the request.",
                }[answer])
            record.status = "used"
            grant = self._new_grant(client_id, record.scope, None, int(now), {})
            return self._issue(grant, record.scope, None)

    def _device_answer(self, record: _DeviceRecord, now: float) -> str:
        """The outcome of one poll; the caller holds the lock."""
        previous, record.last_poll = record.last_poll, now
        if now > record.expires_at:
            return "expired_token"
        # A little tolerance: the client's sleep and our clock are not the same clock.
        too_early = previous is not None and now - previous < record.interval * 0.9
        if self.force_slow_down > 0 or too_early:
            self.force_slow_down = max(self.force_slow_down - 1, 0)
            record.interval += SLOW_DOWN_STEP
            return "slow_down"
        if record.status == "denied":
            record.status = "used"
            return "access_denied"
        return "tokens" if record.status == "approved" else "authorization_pending"

    def _device_page(self, req: Request) -> Response:
        """The verification page: a form for the user code (prefilled from the URL)."""
        if not self.device_flow:
            return self._not_found(req)
        code = html.escape(single(req.query, "user_code") or "", quote=True)
        body = (f'<form method="post" action="{DEVICE_PATH}"><label>Code <input name="user_code" value="{code}">'
                '</label> <button name="decision" value="approve">Approve</button> '
                '<button name="decision" value="deny">Deny</button></form>')
        return html_page(200, "Connect a device", body, {"Cache-Control": "no-store"})

    def _device_decision(self, req: Request) -> Response:
        if not self.device_flow:
            return self._not_found(req)
        form = req.form or {}
        user_code = single(form, "user_code") or ""
        decision = single(form, "decision")
        try:
            self.approve_device(user_code, approve=decision != "deny")
        except KeyError:
            return _html_page(400, "Unknown code", "That code is unknown, expired or already used.")
        return _html_page(200, "Device approved" if decision != "deny" else "Device denied",
                          "You can close this page and return to your device.")

    # ------------------------------------------------------------------ /revoke

    def _revoke(self, req: Request) -> Response:
        params = self._form(req)
        client_id = self._authenticate_client(req, params)
        token = _required(params, "token")
        # token_type_hint is only a hint (RFC 7009 2.1): every token type is searched.
        with self._lock:
            rec = self._refresh.get(token)
            if rec is not None:
                grant = self._grants.get(rec.grant_id)
                if grant is not None and grant.client_id == client_id:
                    # Revoking a refresh token ends the grant, access tokens included.
                    self._revoke_grant(rec.grant_id)
            else:
                try:
                    claims: dict[str, Any] | None = self.verify_jwt(token)
                except jwt.PyJWTError:
                    claims = None
                at = self._access.get(str((claims or {}).get("jti")))
                if at is not None:
                    at.revoked = True
        # RFC 7009 2.2: 200 for unknown and already-revoked tokens too.
        return Response(200, b"", "application/json", dict(NO_STORE))

    # ------------------------------------------------------------------ /logout

    def _end_session(self, req: Request) -> Response:
        """OIDC RP-Initiated Logout 1.0: validate, then redirect back or show a page."""
        source = req.query if req.method == "GET" else (req.form or {})
        try:
            hint = single(source, "id_token_hint")
            post_logout = single(source, "post_logout_redirect_uri")
            client_id = single(source, "client_id")
            state = single(source, "state")
        except ValueError as exc:
            return _html_page(400, "Invalid request", f"Parameter '{exc}' was given more than once.")
        if client_id is not None and client_id != self.client_id:
            return _html_page(400, "Unknown client", "The client_id is not registered.")
        if hint is not None:
            try:
                claims = self.verify_jwt(hint)  # an expired ID token is still a fine hint
            except jwt.PyJWTError:
                return _html_page(400, "Invalid id_token_hint", "The id_token_hint was not issued here.")
            if claims.get("iss") != self.issuer or claims.get("aud") != self.client_id:
                return _html_page(400, "Invalid id_token_hint", "The id_token_hint was not issued here.")
        if post_logout is not None:
            if hint is None and client_id is None:
                return _html_page(400, "Invalid request", "post_logout_redirect_uri needs id_token_hint or client_id.")
            if not self.redirect_uri_allowed(post_logout):
                return _html_page(400, "Invalid post_logout_redirect_uri", "It is not registered.")
            params = {"state": state} if state else {}
            return Response(302, b"", "text/plain", {"Location": add_query(post_logout, params), **NO_STORE})
        return _html_page(200, "Signed out", "You have been signed out.")


def main(argv: list[str] | None = None) -> int:
    """Run the provider by hand: ``python -m oauth_core.testing.fake_oidc [--port N] ...``.

    Prints the ``config.toml`` table for a provider of the generic ``oidc`` type that
    points at it, so a person can try ``oauth-hub login fake-oidc`` without an IdP.
    """
    import argparse

    import tomli_w

    parser = argparse.ArgumentParser(description="A strict OpenID Connect provider on 127.0.0.1, for trying oauth-hub.")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: any free one)")
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID, help=f"the client id (default: {DEFAULT_CLIENT_ID})")
    parser.add_argument("--client-secret", default=None, help="make the client confidential with this secret")
    parser.add_argument("--access-token-ttl", type=int, default=3600, help="access token lifetime in seconds")
    parser.add_argument("--email", default="user@example.com", help="the signed-in user's email")
    args = parser.parse_args(argv)
    fake = FakeOIDC(
        port=args.port,
        client_id=args.client_id,
        client_secret=args.client_secret,
        access_token_ttl=args.access_token_ttl,
        email=args.email,
    )
    fake.start()
    settings: dict[str, Any] = {"type": "oidc", "issuer": fake.issuer, "client_id": fake.client_id}
    if fake.client_secret is not None:
        settings["client_secret"] = fake.client_secret
    print(f"Fake OIDC provider listening on {fake.issuer} (Ctrl+C to stop). Put this in config.toml:\n")
    print(tomli_w.dumps({"providers": {"fake-oidc": settings}}), flush=True)
    serve_until_interrupted(fake)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
