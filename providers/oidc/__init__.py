"""A provider with no code of its own: any standards-compliant OpenID Connect IdP.

A ``[providers.NAME]`` table in ``config.toml`` with ``type = "oidc"`` makes
``oauth-hub login NAME`` work::

    [providers.work]
    type = "oidc"
    issuer = "https://id.example.com"
    client_id = "my-native-app"
    scopes = "openid profile email offline_access"
    port = 0                 # 0: any free loopback port (RFC 8252 §7.3); or the registered one
    redirect_path = "/callback"
    audience = ""            # optional, for IdPs that take an `audience` parameter

``oauth-hub config add-oidc NAME --issuer … --client-id …`` writes it. Everything else
comes from ``{issuer}/.well-known/openid-configuration``: the endpoints, the JWKS the ID
token is verified against (signature, ``iss``, ``aud``, ``exp``, ``nonce``), whether the
callback carries ``iss`` (RFC 9207), and revocation (RFC 7009). Requests are
form-encoded, as RFC 6749 requires. The client is public (PKCE, no secret) unless
``client_secret`` is set: then it authenticates with ``token_endpoint_auth_method``
(``client_secret_basic`` by default, ``client_secret_post`` where the IdP's discovery
offers only that), through :func:`oauth_core.client_auth.authenticate_client`.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from oauth_core.claims import safe_payload
from oauth_core.client_auth import authenticate_client
from oauth_core.errors import IdPError, OAuthHubError, SignInEnded
from oauth_core.hookspecs import hookimpl

_discovered: dict[str, dict[str, Any]] = {}  # issuer -> discovery document, per process


@hookimpl
def provider_defaults() -> dict[str, Any]:
    return {
        "description": "OpenID Connect provider configured in config.toml",
        "issuer": "",
        "client_id": "",
        "client_secret": "",  # a confidential client's secret (masked by `config show`)
        "token_endpoint_auth_method": "",  # "" (none without a secret, else basic), none, client_secret_basic/_post
        "scopes": "openid profile email offline_access",
        "audience": "",
        "port": 0,
        "redirect_path": "/callback",
        "redirect_host": "127.0.0.1",
        "prefix": "",
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
        missing = [k for k in ("authorization_endpoint", "token_endpoint", "jwks_uri") if not doc.get(k)]
        if missing:
            raise OAuthHubError(f"{issuer}'s OpenID configuration lacks {', '.join(missing)}.")
        methods = doc.get("code_challenge_methods_supported")
        if isinstance(methods, list) and "S256" not in methods:
            raise OAuthHubError(f"{issuer} does not offer PKCE with S256, which oauth-hub requires.")
        _discovered[issuer] = doc
    return _discovered[issuer]


@hookimpl
def resolve_settings(settings: dict[str, Any], http: Any) -> dict[str, Any]:
    doc = _discover(settings, http)

    def endpoint(key: str) -> str:
        # An endpoint set explicitly in config.toml wins over discovery (e.g. a proxy).
        return str(settings.get(key) or doc.get(key) or "")

    return {
        "title": settings.get("title") or settings["name"],
        "callback_path": settings.get("redirect_path") or "/callback",
        "authorization_endpoint": endpoint("authorization_endpoint"),
        "token_endpoint": endpoint("token_endpoint"),
        "jwks_uri": endpoint("jwks_uri"),
        "revocation_endpoint": endpoint("revocation_endpoint"),
        "userinfo_endpoint": endpoint("userinfo_endpoint"),
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
    account = dict(credentials.account or {})
    for key, claim in (("email", "email"), ("account_id", "sub"), ("name", "name")):
        if isinstance(claims.get(claim), str):
            account[key] = claims[claim]
    return account


@hookimpl
def refresh_tokens(settings: dict[str, Any], http: Any, credentials: Any) -> dict[str, Any]:
    hint = f"oauth-hub login {settings['name']}"
    if not credentials.refresh_token:
        raise SignInEnded(f"The {settings['name']} sign-in has no refresh token (was offline_access granted?). "
                          f"Run `{hint}`.")
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


@hookimpl
def environment(settings: dict[str, Any], credentials: Any) -> dict[str, str]:
    prefix = re.sub(r"[^A-Z0-9]", "_", settings["name"].upper())
    env = {f"{prefix}_ACCESS_TOKEN": credentials.access_token or ""}
    if credentials.id_token:
        env[f"{prefix}_ID_TOKEN"] = credentials.id_token
    return env
