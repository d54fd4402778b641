"""RSA signing keys for fake identity providers.

A fake provider must hand out tokens that look and verify like the real ones
(RS256 JWTs with a ``kid``, a public JWKS to check them against), otherwise the
code under test could pass against the fake while relying on something the
real issuer never does. Each fake instance generates its own key so tokens
from one test can never verify against another test's server.
"""

from __future__ import annotations

import secrets
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

__all__ = ["SigningKey"]

ALGORITHM = "RS256"


class SigningKey:
    """An RSA key pair with a key id, able to sign JWTs and publish a JWKS.

    2048 bits is what real issuers use; generating one takes a few tens of
    milliseconds, cheap enough to do per fake server.
    """

    def __init__(self, kid: str | None = None, key_size: int = 2048) -> None:
        self.kid: str = kid or "fake-" + secrets.token_hex(8)
        self.private_key: rsa.RSAPrivateKey = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
        self.public_key: rsa.RSAPublicKey = self.private_key.public_key()

    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK dict (``kty``, ``n``, ``e``, ``kid``, ...)."""
        jwk = dict(RSAAlgorithm.to_jwk(self.public_key, as_dict=True))
        jwk.update({"kid": self.kid, "use": "sig", "alg": ALGORITHM})
        return jwk

    def jwks(self) -> dict[str, Any]:
        """The document served at ``/.well-known/jwks.json``."""
        return {"keys": [self.public_jwk()]}

    def sign(self, claims: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
        """Sign ``claims`` as an RS256 JWT whose header carries our ``kid``."""
        hdr: dict[str, Any] = {"kid": self.kid, "typ": "JWT"}
        if headers:
            hdr.update(headers)
        return jwt.encode(claims, self.private_key, algorithm=ALGORITHM, headers=hdr)

    def verify(self, token: str) -> dict[str, Any]:
        """Check the signature (and ``kid``) of ``token`` and return its claims.

        Time-based claims (``exp``, ``iat``, ``nbf``) and ``aud`` are *not*
        checked here: the fake applies its own, offset-able clock and its own
        audience rules. Raises :class:`jwt.InvalidTokenError` on any failure.
        """
        header = jwt.get_unverified_header(token)
        if header.get("kid") != self.kid:
            raise jwt.InvalidTokenError("unknown key id")
        return jwt.decode(
            token,
            self.public_key,
            algorithms=[ALGORITHM],
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "verify_aud": False,
                "verify_iss": False,
            },
        )
