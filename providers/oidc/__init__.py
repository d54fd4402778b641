"""A provider with no code of its own: any standards-compliant OpenID Connect IdP.

A ``[providers.NAME]`` table in ``config.toml`` with ``type = "oidc"`` makes
``oauth-hub login NAME`` work::

    [providers.work]
    type = "oidc"
    issuer = "https://id.example.com"
    client_id = "my-native-app"
    scopes = ""              # "": openid plus whichever of profile, email, offline_access
                             # the IdP lists in scopes_supported
    port = 0                 # 0: any free loopback port (RFC 8252 §7.3); or the registered one
    redirect_path = "/callback"
    audience = ""            # optional, for IdPs that take an `audience` parameter
    revocation_endpoint = "" # any endpoint: "" = from discovery, a URL = this one

``oauth-hub config add-oidc NAME --issuer … --client-id …`` writes it. Everything else
comes from ``{issuer}/.well-known/openid-configuration``: the endpoints (each can be
set in the table instead, for IdPs whose discovery leaves one out), the JWKS the ID
token is verified against (signature in any asymmetric algorithm, ``iss``, ``aud``,
``exp``, ``nonce``), whether the callback carries ``iss`` (RFC 9207), revocation
(RFC 7009), the userinfo endpoint (for IdPs that keep the email out of the ID token)
and device sign-in (RFC 8628). Requests are form-encoded, as RFC 6749 requires. The
client is public (PKCE, no secret) unless ``client_secret`` is set: then it authenticates with
``token_endpoint_auth_method`` (``client_secret_basic`` by default, ``client_secret_post`` where the
IdP's discovery offers only that), through :func:`oauth_core.client_auth.authenticate_client`.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from oauth_core.claims import safe_payload
from oauth_core.client_auth import authenticate_client
from oauth_core.errors import IdPError, LoginError, OAuthHubError, SignInEnded
from oauth_core.hookspecs import hookimpl
from oauth_core.idtoken import ALGORITHMS

_discovered: dict[str, dict[str, Any]] = {}  # issuer -> discovery document, per process

# The endpoints a person may set in config.toml, each overriding discovery.
ENDPOINTS = ("authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint", "revocation_endpoint",
             "device_authorization_endpoint")
# Asked for by default when the IdP lists them (all of them when it lists nothing).
DEFAULT_SCOPES = ("openid", "profile", "email", "offline_access")
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@hookimpl
def provider_defaults() -> dict[str, Any]:
    return {
        "description": "OpenID Connect provider configured in config.toml",
        "issuer": "",
        "client_id": "",
        "client_secret": "",  # a confidential client's secret (masked by `config show`)
        "token_endpoint_auth_method": "",  # "" (none without a secret, else basic), none, client_secret_basic/_post
        "scopes": "",
        "audience": "",
        "port": 0,
        "redirect_path": "/callback",
        "redirect_host": "127.0.0.1",
        "prefix": "",
        **{key: "" for key in ENDPOINTS},
    }


def _discover(settings: dict[str, Any], http: Any) -> dict[str, Any]:
    issuer = str(settings.get("issuer") or "").rstrip("/")
    name = settings["name"]
    if not issuer or not settings.get("client_id"):
        raise OAuthHubError(
            f"Provider {name!r} needs an issuer and a client id: "
            f"`oauth-hub config add-oidc {name} --issuer URL --client-id ID`."
        )
    if issuer not in _discovered:
        doc = http.get(f"{issuer}/.well-known/openid-configuration", what="OpenID discovery", retries=2)
        if not isinstance(doc, dict):
            raise OAuthHubError(f"{issuer} published no usable OpenID configuration.")
        if str(doc.get("issuer", "")).rstrip("/") != issuer:
            # OpenID Connect Discovery 4.3: the document must name the issuer it was fetched for.
            raise OAuthHubError(
                f"{issuer}/.well-known/openid-configuration names a different issuer "
                f"({doc.get('issuer')!r}); check the issuer URL in config.toml."
            )
        methods = doc.get("code_challenge_methods_supported")
        if isinstance(methods, list) and "S256" not in methods:
            raise OAuthHubError(f"{issuer} does not offer PKCE with S256, which oauth-hub requires.")
        _discovered[issuer] = doc
    doc = _discovered[issuer]
    missing = [k for k in ("authorization_endpoint", "token_endpoint", "jwks_uri")
               if not (settings.get(k) or doc.get(k))]
    if missing:
        raise OAuthHubError(
            f"{issuer}'s OpenID configuration lacks {', '.join(missing)}; set it with "
            f"`oauth-hub config set {name}.{missing[0]} URL`."
        )
    return doc


def choose_scopes(configured: str, doc: dict[str, Any]) -> str:
    """The scopes to ask for: the configured ones, else the defaults the IdP lists.

    django-oauth-toolkit answers ``invalid_scope`` to ``offline_access`` (it issues
    refresh tokens without it), Okta and Keycloak want it for one: asking for exactly
    what ``scopes_supported`` lists satisfies both. An IdP that lists nothing gets all
    four; ``openid`` is always asked for.
    """
    if configured.strip():
        return " ".join(configured.split())
    supported = doc.get("scopes_supported")
    if not isinstance(supported, list) or not supported:
        return " ".join(DEFAULT_SCOPES)
    return " ".join(s for s in DEFAULT_SCOPES if s == "openid" or s in supported)


def _check_algorithms(settings: dict[str, Any], doc: dict[str, Any]) -> None:
    """Refuse an IdP whose ID tokens oauth-hub could never verify, before anyone signs in."""
    offered = doc.get("id_token_signing_alg_values_supported")
    if not settings.get("verify_id_token", True) or not isinstance(offered, list) or not offered:
        return
    if any(alg in ALGORITHMS for alg in offered):
        return
    name = settings["name"]
    raise OAuthHubError(
        f"{settings['issuer']} signs ID tokens only with {', '.join(map(str, offered))}, which oauth-hub "
        f"cannot verify (it verifies the asymmetric {', '.join(ALGORITHMS)}). Ask its administrator to sign this "
        f"client's ID tokens with RS256, ES256 or EdDSA; or, knowing what you give up, "
        f"`oauth-hub config set {name}.verify_id_token false`."
    )


@hookimpl
def resolve_settings(settings: dict[str, Any], http: Any) -> dict[str, Any]:
    doc = _discover(settings, http)
    _check_algorithms(settings, doc)

    def endpoint(key: str) -> str:
        # An endpoint set explicitly in config.toml wins over discovery (e.g. a proxy, or
        # django-oauth-toolkit's revocation endpoint, which its discovery leaves out).
        return str(settings.get(key) or doc.get(key) or "")

    supported = doc.get("scopes_supported")
    return {
        "title": settings.get("title") or settings["name"],
        "callback_path": settings.get("redirect_path") or "/callback",
        **{key: endpoint(key) for key in ENDPOINTS},
        "scopes": choose_scopes(str(settings.get("scopes") or ""), doc),
        "scopes_supported": [str(s) for s in supported] if isinstance(supported, list) else [],
        "require_iss": bool(doc.get("authorization_response_iss_parameter_supported")),
        "nonce": True,
        "id_token_issuer": str(doc["issuer"]),  # exactly as published: Auth0's ends in "/"
        "id_token_audience": settings["client_id"],
        "token_endpoint_auth_methods_supported": list(doc.get("token_endpoint_auth_methods_supported") or []),
    }


@hookimpl
def build_auth_url(settings: dict[str, Any], redirect_uri: str, state: str, code_challenge: str, nonce: str) -> str:
    query = {
        "response_type": "code",
        "client_id": settings["client_id"],
        "redirect_uri": redirect_uri,
        "scope": settings["scopes"],
        "state": state,
        "nonce": nonce,
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
    }
    if "offline_access" in settings["scopes"].split():
        query["prompt"] = "consent"  # most IdPs issue a refresh token for offline_access only after consent
    if settings.get("audience"):
        query["audience"] = settings["audience"]
    endpoint = settings["authorization_endpoint"]
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(query)}"


@hookimpl
def refusal_advice(settings: dict[str, Any], error: str) -> str | None:
    if error != "invalid_scope":
        return None
    name = settings["name"]
    offered = settings.get("scopes_supported") or []
    listed = f" It lists: {' '.join(offered)}." if offered else ""
    return (f"It does not accept the scopes asked for ({settings.get('scopes')}).{listed} Choose others with "
            f"`oauth-hub config set {name}.scopes \"openid email\"` (or `config add-oidc {name} --scopes …`).")


@hookimpl
def exchange_code(
    settings: dict[str, Any], http: Any, code: str, redirect_uri: str, code_verifier: str
) -> dict[str, Any]:
    return http.post(
        settings["token_endpoint"],
        **authenticate_client(settings, {"grant_type": "authorization_code", "code": code,
                                         "redirect_uri": redirect_uri, "code_verifier": code_verifier}),
        what="token exchange",
    )


@hookimpl
def describe_account(credentials: Any) -> dict[str, Any]:
    claims = safe_payload(credentials.id_token)  # verified by the engine against the JWKS
    account = dict(credentials.account or {})  # after a refresh: what the login found, userinfo's email too
    _take_identity(account, claims)
    return account


def _take_identity(account: dict[str, Any], claims: dict[str, Any]) -> None:
    for key, claim in (("email", "email"), ("account_id", "sub"), ("name", "name")):
        if isinstance(claims.get(claim), str):
            account[key] = claims[claim]


@hookimpl
def account_profile(settings: dict[str, Any], http: Any, credentials: Any) -> dict[str, Any] | None:
    """The userinfo endpoint's claims, for IdPs that keep them out of the ID token.

    panva's oidc-provider does by default; without this ``status`` says "signed in as
    unknown". Asked only when the ID token had no email. OIDC Core 5.3.2: the answer's
    ``sub`` must be the ID token's, or none of it is used.
    """
    endpoint = settings.get("userinfo_endpoint")
    if credentials.account.get("email") or not endpoint or not credentials.access_token:
        return None
    info = http.get(endpoint, headers={"Authorization": f"Bearer {credentials.access_token}"},
                    what="userinfo request")
    if not isinstance(info, dict):
        return None
    subject = credentials.account.get("account_id")
    if subject is not None and info.get("sub") != subject:
        raise OAuthHubError(f"{settings['name']}'s userinfo endpoint answered about another user "
                            f"(sub {str(info.get('sub'))[:40]!r}), so it was not used.")
    profile: dict[str, Any] = {}
    _take_identity(profile, info)
    return profile


@hookimpl
def refresh_tokens(settings: dict[str, Any], http: Any, credentials: Any) -> dict[str, Any]:
    hint = f"oauth-hub login {settings['name']}"
    try:
        return http.post(
            settings["token_endpoint"],
            **authenticate_client(settings, {"grant_type": "refresh_token",
                                             "refresh_token": credentials.refresh_token}),
            what="token refresh",
            retries=3,
            idempotent=False,
        )
    except IdPError as exc:
        if exc.code == "invalid_client":  # the client's own credentials, not the sign-in: fixable in config
            raise OAuthHubError(f"The IdP refused {settings['name']}'s client credentials (invalid_client). Check "
                                f"client_id and client_secret with `oauth-hub config show {settings['name']}`; "
                                "the sign-in itself was kept.") from None
        if exc.code in ("invalid_grant", "unauthorized_client") or exc.status == 401:
            raise SignInEnded(
                f"Your {settings['name']} sign-in has ended ({exc.code or exc.status}). Run `{hint}` to sign in again."
            ) from None
        raise


@hookimpl
def revoke_tokens(settings: dict[str, Any], http: Any, credentials: Any) -> bool:
    if not settings.get("revocation_endpoint"):
        return False
    http.post(
        settings["revocation_endpoint"],
        **authenticate_client(settings, {"token": credentials.refresh_token, "token_type_hint": "refresh_token"}),
        what="token revocation",
    )
    return True


# -- device sign-in (RFC 8628) ------------------------------------------------------------


@hookimpl
def start_device_login(settings: dict[str, Any], http: Any) -> dict[str, Any]:
    name = settings["name"]
    endpoint = settings.get("device_authorization_endpoint")
    if not endpoint:
        raise LoginError(
            f"{settings['issuer']} does not advertise device sign-in (no device_authorization_endpoint in its "
            f"discovery). If it has one, `oauth-hub config set {name}.device_authorization_endpoint URL`; "
            f"otherwise use `oauth-hub login {name} --no-browser` and paste the redirect URL."
        )
    try:
        answer = http.post(endpoint, **authenticate_client(settings, {"scope": settings["scopes"]}),
                           what="device code request")
    except IdPError as exc:
        advice = refusal_advice(settings, exc.code or "") or ""
        raise LoginError(f"{exc} {advice}".strip()) from None
    # RFC 8628 3.2; some IdPs (Google) say verification_url.
    uri = (answer.get("verification_uri") or answer.get("verification_url")) if isinstance(answer, dict) else None
    if not uri or not answer.get("device_code") or not answer.get("user_code"):
        raise LoginError(f"{settings['issuer']} answered the device code request without a code or page. "
                         "Try again later.")
    return {
        "device_code": answer["device_code"],
        "user_code": answer["user_code"],
        "verification_uri": uri,
        "verification_uri_complete": answer.get("verification_uri_complete") or "",
        "interval": answer.get("interval", 5),  # RFC 8628 3.2: 5 seconds when absent
        "expires_in": answer.get("expires_in", 600),
    }


@hookimpl
def poll_device_login(settings: dict[str, Any], http: Any, device: dict[str, Any]) -> dict[str, Any] | None:
    hint = f"oauth-hub login {settings['name']} --device"
    try:
        return http.post(
            settings["token_endpoint"],
            **authenticate_client(settings, {"grant_type": DEVICE_GRANT, "device_code": device["device_code"]}),
            what="device code poll",
        )
    except IdPError as exc:
        if exc.code == "authorization_pending":
            return None
        if exc.code == "slow_down":  # RFC 8628 3.5: wait 5 seconds longer from now on
            try:
                device["interval"] = float(device.get("interval") or 5) + 5
            except (TypeError, ValueError):
                device["interval"] = 10.0
            return None
        if exc.code == "expired_token":
            raise LoginError(f"The device code expired before it was approved. Run `{hint}` again and enter "
                             "the new code right away.") from None
        if exc.code == "access_denied":
            raise LoginError(f"The sign-in was denied on the device page. Run `{hint}` to try again.") from None
        raise LoginError(f"{exc} Run `{hint}` to try again.") from None


@hookimpl
def environment(settings: dict[str, Any], credentials: Any) -> dict[str, str]:
    prefix = re.sub(r"[^A-Z0-9]", "_", settings["name"].upper())
    env = {f"{prefix}_ACCESS_TOKEN": credentials.access_token or ""}
    if credentials.id_token:
        env[f"{prefix}_ID_TOKEN"] = credentials.id_token
    return env
