"""Verifying ID tokens against the provider's published keys.

Where a provider publishes a JWKS (its ``jwks_uri`` setting), every ID token that
arrives (code exchange, device login, refresh) is checked before any claim in it is
used: RS/ES signature by a key of that set, ``iss``, ``aud`` and ``exp`` (with a little
leeway for clock skew). A token that fails is refused with a clear error and nothing is
stored. PyJWT does the cryptography; it is imported only here, at login and refresh,
never on the token-reading hot path.
"""

from __future__ import annotations

from typing import Any

from .errors import OAuthHubError

LEEWAY = 120  # seconds of clock skew tolerated on exp/iat/nbf
ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]


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
    try:
        keys = jwt.PyJWKSet.from_dict(jwks)
    except jwt.PyJWTError:
        raise IdTokenError(f"{provider}'s published signing keys (JWKS) could not be read. {hint}") from None
    kid = header.get("kid")
    candidates = [k for k in keys.keys if kid is None or k.key_id == kid]
    if not candidates:
        raise IdTokenError(f"The ID token from {provider} is signed by a key it does not publish. {hint}")
    last_error: Exception | None = None
    for key in candidates:
        try:
            claims = jwt.decode(
                id_token, key=key.key, algorithms=ALGORITHMS, audience=audience, issuer=issuer, leeway=leeway,
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
