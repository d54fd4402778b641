"""Verifying ID tokens against the provider's published keys.

Where a provider publishes a JWKS (its ``jwks_uri`` setting), every ID token that
arrives (code exchange, device login, refresh) is checked before any claim in it is
used: the signature by a key of that set, ``iss``, ``aud`` and ``exp`` (with a little
leeway for clock skew). A token that fails is refused with a clear error and nothing is
stored. PyJWT does the cryptography; it is imported only here, at login and refresh,
never on the token-reading hot path.
"""

from __future__ import annotations

from typing import Any

from .errors import OAuthHubError

LEEWAY = 120  # seconds of clock skew tolerated on exp/iat/nbf

# Every asymmetric JOSE algorithm PyJWT verifies (its ``requires_cryptography`` set, less
# its non-standard "ES521" alias of ES512): servers sign with any of them (panva's
# oidc-provider with EdDSA, others with ES512 or PS384). Never an HS* algorithm: a public
# client has no secret to check those with, and "none" is no signature at all. Kept as
# a literal so that reading it imports no crypto (tests/test_idtoken.py compares it with
# PyJWT's list).
ALGORITHMS: tuple[str, ...] = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "ES256K", "EdDSA",
)

# Which algorithms a published key can verify: by its JWK "alg" when it names one, else
# by its type and curve, so an RSA key is never tried with an EC algorithm (or the reverse).
_BY_KEY = {
    ("RSA", None): ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
    ("EC", "P-256"): ("ES256",), ("EC", "P-384"): ("ES384",), ("EC", "P-521"): ("ES512",),
    ("EC", "secp256k1"): ("ES256K",),
    ("OKP", "Ed25519"): ("EdDSA",), ("OKP", "Ed448"): ("EdDSA",),
}


def key_algorithms(jwk: dict[str, Any]) -> tuple[str, ...]:
    """The algorithms of :data:`ALGORITHMS` that the JWK ``jwk`` may verify."""
    if jwk.get("alg"):
        return (jwk["alg"],) if jwk["alg"] in ALGORITHMS else ()
    kty = jwk.get("kty")
    return _BY_KEY.get((kty, None if kty == "RSA" else jwk.get("crv")), ())


class IdTokenError(OAuthHubError):
    """The ID token did not verify."""


def verify(
    id_token: str, *, jwks: dict[str, Any], issuer: str, audience: str, nonce: str | None = None,
    provider: str = "the provider", received_at: float | None = None,
) -> dict[str, Any]:
    """The verified claims of ``id_token``; :class:`IdTokenError` naming what failed.

    ``received_at``: when the token arrived, if that was a while ago (a refresh finished
    after a crash): ``exp`` is judged as of then, so a token that was valid on arrival
    is not refused for having aged since.
    """
    import time

    import jwt

    leeway = LEEWAY + max(0.0, time.time() - received_at) if received_at is not None else LEEWAY

    hint = f"Run `oauth-hub login {provider}` again; if it keeps failing, `oauth-hub doctor {provider}`."
    try:
        header = jwt.get_unverified_header(id_token)
    except (jwt.PyJWTError, RecursionError):
        raise IdTokenError(f"The ID token from {provider} is not a valid JWT, so it was refused. {hint}") from None
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise IdTokenError(
            f"The ID token from {provider} is signed with {str(alg)[:20]!r}, which oauth-hub does not accept "
            f"(it verifies {', '.join(ALGORITHMS)}). Ask the IdP's administrator to sign this client's ID tokens "
            f"with one of those."
        )
    published = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(published, list):
        raise IdTokenError(f"{provider}'s published signing keys (JWKS) could not be read. {hint}")
    kid = header.get("kid")
    candidates = []
    for jwk in published:
        if not isinstance(jwk, dict) or (kid is not None and jwk.get("kid") != kid):
            continue
        if jwk.get("use", "sig") != "sig" or alg not in key_algorithms(jwk):
            continue
        try:
            candidates.append(jwt.PyJWK(jwk, algorithm=alg))
        except (jwt.PyJWTError, TypeError, ValueError):  # a key PyJWT cannot read is no candidate
            continue
    if not candidates:
        raise IdTokenError(f"The ID token from {provider} is signed by a key it does not publish. {hint}")
    last_error: Exception | None = None
    for key in candidates:
        try:
            claims = jwt.decode(
                id_token, key=key.key, algorithms=[alg], audience=audience, issuer=issuer, leeway=leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
            break
        except jwt.InvalidSignatureError as exc:
            last_error = exc
        except jwt.ExpiredSignatureError:
            raise IdTokenError(f"The ID token from {provider} has expired; check this computer's clock. {hint}") \
                from None
        except jwt.InvalidAudienceError:
            raise IdTokenError(f"The ID token from {provider} was issued for another client (aud). {hint}") from None
        except jwt.InvalidIssuerError:
            raise IdTokenError(f"The ID token was not issued by {issuer} (iss). {hint}") from None
        except (jwt.PyJWTError, TypeError, ValueError, RecursionError) as exc:  # e.g. an algorithm the key lacks
            raise IdTokenError(f"The ID token from {provider} failed verification ({type(exc).__name__}). {hint}") \
                from None
    else:
        assert last_error is not None
        raise IdTokenError(f"The ID token from {provider} has a bad signature, so it was refused. {hint}")
    if nonce is not None and claims.get("nonce") != nonce:
        raise IdTokenError(f"The ID token from {provider} does not carry this login's nonce. {hint}")
    return claims
