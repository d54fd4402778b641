"""The record kept in ``<provider>_oauth.json``.

:class:`Credentials` is what the engine, the CLI and embedding tools pass around. Its
``repr`` and ``str`` show only a short prefix of each secret (as ``gh auth status``
does), so an accidental log line or traceback cannot leak a token.

The stored JSON keeps the field names of the seed format (``access_token``,
``refresh_token``, ``id_token``, ``api_key``, ``last_refresh``) so that tools that read
the file directly keep working; provider-specific facts live under ``account``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from . import claims

SECRET_FIELDS = ("access_token", "refresh_token", "id_token", "api_key")
TOKEN_FIELDS = ("access_token", "refresh_token", "id_token")
MAX_TOKEN_CHARS = 64 * 1024  # real tokens are a few kB; a JWT stuffed with groups stays far below this


def _is_vschar(text: str) -> bool:
    """RFC 6749 appendix A: tokens are visible ASCII and spaces (%x20-7E), nothing else."""
    return all(" " <= ch <= "~" for ch in text)


def token_answer_problem(answer: Any, *, refresh: bool = False) -> str | None:
    """What makes ``answer`` unusable as a token endpoint answer, or ``None`` when it is usable.

    Checked before anything is written or reused: a non-empty ``access_token`` of
    printable ASCII (RFC 6749 A.12), the other tokens absent or the same, each at most
    :data:`MAX_TOKEN_CHARS`; ``expires_in`` absent or a number (a numeric string is
    accepted, as servers send one; one that is no usable time falls back to the token's
    ``exp``). A ``200`` without a usable access token
    kept the expired one and pushed its expiry out by an hour; garbage bytes decoded
    into tokens ended the sign-in at the next refresh.
    """
    what = "refresh" if refresh else "token request"
    if not isinstance(answer, Mapping):
        return f"the {what} answer is not a JSON object"
    for name in TOKEN_FIELDS:
        value = answer.get(name)
        if name != "access_token" and value in (None, ""):
            continue
        if not isinstance(value, str) or not value:
            return f"the {what} answer has no {name}" if value in (None, "") else \
                f"the {what} answer's {name} is not a string"
        if len(value) > MAX_TOKEN_CHARS:
            return f"the {what} answer's {name} is {len(value)} characters long, far beyond any real token"
        if not _is_vschar(value):
            return f"the {what} answer's {name} holds characters no token can have"
    expires_in = answer.get("expires_in")
    if expires_in is not None:
        number: Any = expires_in
        if isinstance(expires_in, str):
            try:
                number = float(expires_in)
            except ValueError:
                return f"the {what} answer's expires_in is not a number"
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            return f"the {what} answer's expires_in is not a number of seconds"
    for name in ("token_type", "scope"):
        if answer.get(name) is not None and not isinstance(answer.get(name), str):
            return f"the {what} answer's {name} is not a string"
    return None


def mask(secret: str | None) -> str:
    """A prefix of a secret, enough to tell two apart, never enough to use one."""
    if not secret:
        return "-"
    return secret[:4] + "…" if len(secret) > 8 else "…"


def utc_now_iso(epoch: float | None = None) -> str:
    """Now (or ``epoch``) as ISO-8601 UTC to the second, e.g. ``2024-05-01T12:00:00Z``."""
    moment = datetime.now(UTC) if epoch is None else datetime.fromtimestamp(epoch, UTC)
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_iso(value: str | None) -> float | None:
    """Seconds since the epoch for an ISO-8601 timestamp, ``None`` when absent or unparsable."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


@dataclass
class Credentials:
    """Tokens and facts for one provider sign-in."""

    provider: str
    access_token: str | None = None
    refresh_token: str | None = None
    id_token: str | None = None
    api_key: str | None = None
    expires_at: float | None = None  # epoch seconds when the access token stops working
    last_refresh: str | None = None  # ISO-8601 UTC of the last code exchange or refresh
    api_key_obtained_at: str | None = None
    account: dict[str, Any] = field(default_factory=dict)  # identity: email, plan, ids…
    extra: dict[str, Any] = field(default_factory=dict)  # unknown keys, kept verbatim
    # Which of the provider's accounts this sign-in is (``main`` unless named). Not stored
    # in the record: the record's file name (or keyring entry) says it.
    account_name: str = "main"

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}={mask(getattr(self, f.name))!r}" if f.name in SECRET_FIELDS
            else f"{f.name}={getattr(self, f.name)!r}"
            for f in fields(self)
            if f.name != "extra"
        )
        return f"Credentials({shown})"

    __str__ = __repr__

    # -- conversion ---------------------------------------------------------------

    @classmethod
    def from_token_response(
        cls, provider: str, response: Mapping[str, Any], *, previous: Credentials | None = None,
        received_at: float | None = None,
    ) -> Credentials:
        """Build credentials from a token endpoint answer.

        Every field of a refresh answer is optional: what it leaves out is kept from
        ``previous``. ``expires_at`` comes from ``expires_in`` when given, else from the
        access token's ``exp`` claim; ``received_at`` (epoch seconds) is when the answer
        arrived, for an answer finished later than that (see ``oauth_core.tokens``).
        """
        base = previous.copy() if previous else cls(provider=provider)
        for name in ("access_token", "refresh_token", "id_token"):
            value = response.get(name)
            if isinstance(value, str) and value:
                setattr(base, name, value)
        expires_in = response.get("expires_in")
        if isinstance(expires_in, str):  # some servers send it as a numeric string
            try:
                expires_in = float(expires_in)
            except ValueError:
                expires_in = None
        now = time.time() if received_at is None else received_at
        if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool) \
                and 0 < expires_in <= claims.MAX_EPOCH - now:  # not NaN, ∞ or 1e300: see claims.MAX_EPOCH
            base.expires_at = now + float(expires_in)
        elif response.get("access_token"):
            base.expires_at = claims.expiry(base.access_token)
        base.last_refresh = utc_now_iso(now)
        return base

    @classmethod
    def from_json(cls, provider: str, data: Mapping[str, Any], *, account_name: str = "main") -> Credentials:
        """Read the stored form; unknown keys are kept so a newer version's data survives."""
        known = {f.name for f in fields(cls)} - {"provider", "extra", "account_name"}
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in data.items():
            if key in known:
                values[key] = value
            elif key not in ("provider", "account_name"):
                extra[key] = value
        for name in SECRET_FIELDS + ("last_refresh", "api_key_obtained_at"):
            if values.get(name) is not None and not isinstance(values[name], str):
                raise ValueError(f"field {name!r} must be a string")
        if values.get("expires_at") is not None:
            if isinstance(values["expires_at"], bool) or not isinstance(values["expires_at"], (int, float)):
                raise ValueError("field 'expires_at' must be a number")
            if not 0 <= values["expires_at"] <= claims.MAX_EPOCH:  # also false for NaN
                raise ValueError("field 'expires_at' must be seconds since 1970 before the year 10000")
        if not isinstance(values.get("account", {}), dict):
            raise ValueError("field 'account' must be an object")
        return cls(provider=provider, extra=extra, account_name=account_name, **values)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.extra)
        for f in fields(self):
            if f.name in ("extra", "account_name"):
                continue
            out[f.name] = getattr(self, f.name)
        return out

    def copy(self) -> Credentials:
        return Credentials.from_json(self.provider, self.to_json(), account_name=self.account_name)

    # -- questions the engine asks ------------------------------------------------

    def seconds_left(self, now: float | None = None) -> float | None:
        """Seconds until the access token expires; ``None`` when unknown."""
        if self.expires_at is None:
            return None
        return self.expires_at - (time.time() if now is None else now)
