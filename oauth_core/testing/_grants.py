"""Grant, code and token bookkeeping shared by the fake providers.

Only what is the same in every fake lives here: the records a sign-in leaves
behind, revoking a grant with every token minted from it, the test knobs that
expire or revoke everything, and the checks every authorization-code exchange
makes before anything provider-specific (single use, expiry, client and
redirect URI binding). Token formats, claims, error shapes and messages, and
the stricter rules of one provider stay in that provider's fake; where a check
here fails, the message comes from the fake's :class:`CodeErrors`.

Every ``_``-method expects the caller to hold ``self._lock``.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from oauth_core.testing._server import FakeServer, oauth_error, s256, str_param


@dataclass
class Grant:
    """One sign-in: every token minted from one code (or one mint_tokens call)."""

    grant_id: str
    client_id: str
    scope: str
    overrides: dict[str, Any]
    revoked: bool = False


@dataclass
class AuthCode:
    """An authorization code, until it is exchanged (once) or expires."""

    client_id: str
    redirect_uri: str
    code_challenge: str | None
    scope: str
    expires_at: float
    used: bool = False
    #: The grant the code's exchange produced (revoked if the code is replayed).
    grant_id: str | None = None


@dataclass
class RefreshRecord:
    grant_id: str
    issued_at: float
    used: bool = False
    revoked: bool = False


@dataclass
class AccessRecord:
    grant_id: str
    expires_at: float
    revoked: bool = False
    #: Set by expire_access_tokens(): fails as expired whatever the token itself says.
    force_expired: bool = False


@dataclass(frozen=True)
class CodeErrors:
    """A fake's ``invalid_grant`` descriptions for the shared code-exchange checks."""

    unknown: str
    used: str
    expired: str
    other_client: str
    redirect_uri: str = "redirect_uri does not match the authorization request."


G = TypeVar("G", bound=Grant)


def pkce_matches(verifier: str, challenge: str | None) -> bool:
    """Whether ``verifier`` hashes (S256) to ``challenge``, compared in constant time."""
    return challenge is not None and hmac.compare_digest(s256(verifier), challenge)


class GrantBook(FakeServer):
    """A :class:`FakeServer` that keeps grants, codes, refresh and access tokens.

    Subclasses set ``_code_errors`` and may store subclasses of the records.
    """

    #: Descriptions for the errors of :meth:`_code_for_exchange`.
    _code_errors: ClassVar[CodeErrors]

    def __init__(self, *, host: str, port: int, connection_timeout: float, clock_offset: float) -> None:
        super().__init__(host=host, port=port, connection_timeout=connection_timeout, clock_offset=clock_offset)
        self._grants: dict[str, Grant] = {}
        self._codes: dict[str, AuthCode] = {}
        self._refresh: dict[str, RefreshRecord] = {}
        self._access: dict[str, AccessRecord] = {}

    # ------------------------------------------------------------------ test knobs

    def expire_access_tokens(self) -> None:
        """Make every access token issued so far fail as expired, server side.

        What the client was told (``exp`` claim, ``expires_in``) is unchanged, so a
        client that trusts it only finds out from a 401: the case "refresh on 401"
        is for.
        """
        with self._lock:
            for rec in self._access.values():
                rec.force_expired = True

    def revoke_all(self) -> None:
        """Revoke every grant, with its refresh and access tokens (an admin "sign out everywhere")."""
        with self._lock:
            for grant in self._grants.values():
                grant.revoked = True
            for rt in self._refresh.values():
                rt.revoked = True
            for at in self._access.values():
                at.revoked = True

    # ------------------------------------------------------------------ bookkeeping

    def _add_grant(self, grant: G) -> G:
        self._grants[grant.grant_id] = grant
        return grant

    def _revoke_grant(self, grant_id: str) -> None:
        """Revoke a grant and every refresh and access token minted from it."""
        grant = self._grants.get(grant_id)
        if grant is not None:
            grant.revoked = True
        for rt in self._refresh.values():
            if rt.grant_id == grant_id:
                rt.revoked = True
        for at in self._access.values():
            if at.grant_id == grant_id:
                at.revoked = True

    def _refresh_grant(self, token: str) -> tuple[RefreshRecord, Grant] | tuple[None, None]:
        """The record of refresh token ``token`` and its grant, or (None, None)."""
        rec = self._refresh.get(token)
        grant = self._grants.get(rec.grant_id) if rec is not None else None
        if rec is None or grant is None:
            return None, None
        return rec, grant

    def _code_for_exchange(self, code: str, client_id: str, redirect_uri: str) -> AuthCode:
        """The record of ``code`` if it may be exchanged by this client and redirect URI.

        A replayed code revokes the grant it produced (RFC 6749 4.1.2). The caller
        makes its own further checks (PKCE, state...) and then marks the code used.
        """
        errors = self._code_errors
        rec = self._codes.get(code)
        if rec is None:
            raise oauth_error(400, "invalid_grant", errors.unknown)
        if rec.used:
            if rec.grant_id:
                self._revoke_grant(rec.grant_id)
            raise oauth_error(400, "invalid_grant", errors.used)
        if self.now() > rec.expires_at:
            raise oauth_error(400, "invalid_grant", errors.expired)
        if rec.client_id != client_id:
            raise oauth_error(400, "invalid_grant", errors.other_client)
        if rec.redirect_uri != redirect_uri:
            raise oauth_error(400, "invalid_grant", errors.redirect_uri)
        return rec


def new_grant_id() -> str:
    return "grant_" + secrets.token_hex(8)


class VendorGrantBook(GrantBook):
    """The bookkeeping the vendor fakes (OpenAI, Anthropic) share beyond :class:`GrantBook`.

    Each has one public ``client_id``, an ``issued_api_keys`` set, ``refresh_omits``
    (fields left out of a refresh answer; leaving out ``refresh_token`` means no
    rotation) and an ``_issue(grant, with_refresh=...)``.
    """

    client_id: str
    issued_api_keys: set[str]
    refresh_omits: tuple[str, ...]

    def revoke_all(self) -> None:
        """Revoke every grant, refresh token, access token and API key."""
        with self._lock:
            super().revoke_all()
            self.issued_api_keys.clear()

    def _new_grant(self, client_id: str, scope: str) -> Grant:
        return self._add_grant(Grant(new_grant_id(), client_id, scope, {}))

    def _redeem(self, rec: AuthCode) -> dict[str, Any]:
        """Mark a code that passed every check used, and answer with a new grant's tokens."""
        rec.used = True
        grant = self._new_grant(rec.client_id, rec.scope)
        rec.grant_id = grant.grant_id
        return self._issue(grant)

    def _client(self, params: dict[str, Any]) -> str:
        client_id = str_param(params, "client_id")
        if client_id != self.client_id:
            raise oauth_error(401, "invalid_client", "Unknown or invalid client_id.")
        return client_id

    def _refresh_params(self, params: dict[str, Any]) -> tuple[str, str, str | None]:
        """``client_id``, ``refresh_token`` and optional ``scope`` of a refresh request."""
        client_id = self._client(params)
        token = str_param(params, "refresh_token")
        scope = params.get("scope")
        if scope is not None and not isinstance(scope, str):
            raise oauth_error(400, "invalid_request", "scope must be a string.")
        return client_id, token, scope

    @staticmethod
    def _check_narrower_scope(scope: str | None, grant: Grant) -> None:
        if scope is not None and set(scope.split()) - set(grant.scope.split()):
            raise oauth_error(400, "invalid_scope", "Requested scope exceeds the original grant.")

    def _issue(self, grant: Grant, with_refresh: bool = True) -> dict[str, Any]:
        """The token answer for ``grant``; the caller holds the lock."""
        raise NotImplementedError

    def _rotate(self, grant: Grant, rec: RefreshRecord) -> dict[str, Any]:
        """The refresh answer: new tokens, the old refresh token retired unless
        ``refresh_omits`` leaves out ``refresh_token``, then the omitted fields dropped."""
        rotate = "refresh_token" not in self.refresh_omits
        out = self._issue(grant, with_refresh=rotate)
        if rotate:
            rec.used = True
        for name in self.refresh_omits:
            out.pop(name, None)
        return out
