"""PKCE (RFC 7636, S256 only) and the ``state`` value.

The sizes follow the Codex CLI: a verifier from 64 random bytes and a state from 32,
both base64url without padding, drawn from :mod:`secrets`. ``plain`` is never offered:
a provider that accepts only ``plain`` is not one we sign in to.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass


def b64url(data: bytes) -> str:
    """base64url without padding, the encoding PKCE and JWTs use."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def challenge_for(verifier: str) -> str:
    """The S256 code challenge for ``verifier``."""
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def new_state() -> str:
    """An unguessable ``state`` that ties the callback to this login."""
    return b64url(secrets.token_bytes(32))


@dataclass(frozen=True)
class PkcePair:
    """A verifier and its S256 challenge. The repr hides the verifier."""

    verifier: str
    challenge: str
    method: str = "S256"

    def __repr__(self) -> str:
        return f"PkcePair(challenge={self.challenge!r}, method={self.method!r})"

    @classmethod
    def generate(cls) -> PkcePair:
        verifier = b64url(secrets.token_bytes(64))
        return cls(verifier=verifier, challenge=challenge_for(verifier))
