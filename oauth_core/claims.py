"""Reading JWT claims.

Claims are read without verifying the signature here: the tokens come straight from the
provider's token endpoint over TLS (OpenID Connect Core 3.1.3.7 allows TLS server
validation in place of the signature check in that case), and the values are used only
to label the account and to know when to refresh. Parsing by hand keeps the hot path
(``oauth-hub token``) free of the JWT/crypto import cost.
"""

from __future__ import annotations

import base64
import json
from typing import Any

# The last second a date can show (9999-12-31T23:59:59Z). An expiry beyond it (or NaN,
# or infinite) is not a time: stored, it made `status` crash formatting it as a date
# (tests/test_properties.py).
__all__ = ["MAX_EPOCH", "expiry", "safe_payload"]

MAX_EPOCH = 253402300799


class MalformedToken(ValueError):
    """The string is not a JWT with a JSON object payload."""


def payload(token: str | None) -> dict[str, Any]:
    """The decoded payload of a JWT; raises :class:`MalformedToken` if it is not one."""
    if not isinstance(token, str) or token.count(".") != 2:
        raise MalformedToken("not a JWT")
    segment = token.split(".")[1]
    if len(segment) > 64 * 1024:
        raise MalformedToken("JWT payload too large")
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise MalformedToken("JWT payload is not base64url JSON") from None
    except RecursionError:  # "[[[[…": 64 kB of nesting is deeper than json can go
        raise MalformedToken("JWT payload is nested too deeply") from None
    if not isinstance(data, dict):
        raise MalformedToken("JWT payload is not an object")
    return data


def safe_payload(token: str | None) -> dict[str, Any]:
    """Like :func:`payload`, but an empty dict for anything that is not a readable JWT."""
    try:
        return payload(token)
    except MalformedToken:
        return {}


def expiry(token: str | None) -> float | None:
    """The ``exp`` claim as epoch seconds, or ``None`` (also when it is no time: NaN, ∞, past year 9999)."""
    exp = safe_payload(token).get("exp")
    if isinstance(exp, (int, float)) and not isinstance(exp, bool) and 0 <= exp <= MAX_EPOCH:
        return float(exp)
    return None
