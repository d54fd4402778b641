"""Signing keys for fake identity providers, in every asymmetric JOSE algorithm.

A fake provider must hand out tokens that look and verify like the real ones
(JWTs with a ``kid``, a public JWKS to check them against), otherwise the code under
test could pass against the fake while relying on something the real issuer never
does. Real issuers do not all sign with RS256: panva's oidc-provider signs with EdDSA
when a client asks, Apple and others with ES256, some with PS256, so a key can be made
for any of them. Each fake instance generates its own key so tokens from one test can
never verify against another test's server.
"""

from __future__ import annotations

import secrets
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

__all__ = ["ALGORITHMS", "SigningKey"]

ALGORITHM = "RS256"

# JOSE algorithm -> how to make a key for it (RFC 7518 3.3-3.5, RFC 8037, RFC 8812).
_EC_CURVES = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1, "ES512": ec.SECP521R1, "ES256K": ec.SECP256K1}
ALGORITHMS: tuple[str, ...] = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "ES256K", "EdDSA",
)


class SigningKey:
    """A key pair with a key id and an algorithm, able to sign JWTs and publish a JWKS.

    ``alg`` is a JOSE name: ``RS*``/``PS*`` make a 2048-bit RSA key (what real issuers
    use; a few tens of milliseconds), ``ES256``/``ES384``/``ES512``/``ES256K`` an EC key
    on the matching curve, ``EdDSA`` an Ed25519 key (``curve="Ed448"`` for Ed448).
    """

    def __init__(self, kid: str | None = None, key_size: int = 2048, alg: str = ALGORITHM,
                 curve: str = "Ed25519") -> None:
        if alg not in ALGORITHMS:
            raise ValueError(f"alg must be one of {', '.join(ALGORITHMS)}, not {alg!r}")
        self.kid: str = kid or "fake-" + secrets.token_hex(8)
        self.alg = alg
        private: Any
        if alg.startswith(("RS", "PS")):
            private = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
        elif alg in _EC_CURVES:
            private = ec.generate_private_key(_EC_CURVES[alg]())
        elif curve == "Ed448":
            private = ed448.Ed448PrivateKey.generate()
        else:
            private = ed25519.Ed25519PrivateKey.generate()
        self.private_key = private
        self.public_key = private.public_key()

    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK dict (``kty``, ``n``/``x``…, ``kid``, ``alg``, ``use``)."""
        jwk = dict(jwt.get_algorithm_by_name(self.alg).to_jwk(self.public_key, as_dict=True))
        jwk.update({"kid": self.kid, "use": "sig", "alg": self.alg})
        return jwk

    def jwks(self) -> dict[str, Any]:
        """The document served at ``/.well-known/jwks.json``."""
        return {"keys": [self.public_jwk()]}

    def sign(self, claims: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
        """Sign ``claims`` as a JWT whose header carries our ``kid`` and ``alg``."""
        hdr: dict[str, Any] = {"kid": self.kid, "typ": "JWT"}
        if headers:
            hdr.update(headers)
        return jwt.encode(claims, self.private_key, algorithm=self.alg, headers=hdr)

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
            algorithms=[self.alg],
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "verify_aud": False,
                "verify_iss": False,
            },
        )
