"""Acme AI: an example oauth-hub provider (OAuth 2.0 + PKCE, confidential client).

Every function here is a hook implementation (see oauth-hub's ``docs/hooks.md``).
Settings come from ``provider_defaults`` and can be overridden per person in
``config.toml`` under ``[providers.acme]``, which is how the tests point it at a fake.

Acme registers its CLI as a *confidential* client: every token-endpoint request also
proves the client secret, with ``client_secret_basic`` unless
``token_endpoint_auth_method`` says otherwise. ``authenticate_client`` builds that
(RFC 6749 §2.3.1, including the form-encoding of id and secret); the person sets the
secret with ``oauth-hub config set acme.client_secret -`` and ``config show`` masks it.

Only public names of oauth-hub are used: ``oauth_core`` and ``oauth_core.exporters``
(see :mod:`oauth_hub_acme.export` for the package's exporter).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from oauth_core import IdPError, OAuthHubError, SignInEnded, authenticate_client, hookimpl, safe_payload

__version__ = "0.4.0"


@hookimpl
def provider_defaults() -> dict[str, Any]:
    return {
        "title": "Acme AI",
        "description": "Acme AI (example provider package)",
        "authorize_url": "https://id.acme.example/authorize",
        "token_url": "https://id.acme.example/token",
        "revoke_url": "https://id.acme.example/revoke",
        "api_base": "https://api.acme.example/v1",
        "client_id": "oauth-hub-acme",
        "client_secret": "",  # per person, in config.toml; shown as ******** by `oauth-hub config show`
        "token_endpoint_auth_method": "",  # "" = client_secret_basic once a secret is set
        "scopes": "openid email offline_access",
        "port": 0,  # any free loopback port: the IdP allows loopback redirects on any port (RFC 8252)
        "callback_path": "/acme/callback",
        "prefix": "acme-",
        "models": ["acme-small", "acme-large"],
    }


@hookimpl
def build_auth_url(settings: dict[str, Any], redirect_uri: str, state: str, code_challenge: str) -> str:
    query = {
        "response_type": "code",
        "client_id": settings["client_id"],
        "redirect_uri": redirect_uri,
        "scope": settings["scopes"],
        "state": state,
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
    }
    return f"{settings['authorize_url']}?{urlencode(query)}"


@hookimpl
def exchange_code(settings: dict[str, Any], http: Any, code: str, redirect_uri: str, code_verifier: str) -> dict:
    return http.post(settings["token_url"], what="token exchange", **authenticate_client(settings, {
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
    }))


@hookimpl
def describe_account(credentials: Any) -> dict[str, Any]:
    # Acme's ID token is used only as a label here; a provider that trusts its claims
    # for more should publish `jwks_uri` so the engine verifies it.
    claims = safe_payload(credentials.id_token)
    return {"email": claims.get("email"), "account_id": claims.get("sub"), "plan": "acme-free"}


@hookimpl
def refresh_tokens(settings: dict[str, Any], http: Any, credentials: Any) -> dict[str, Any]:
    try:
        return http.post(settings["token_url"], what="token refresh", retries=3, idempotent=False,
                         **authenticate_client(settings, {"grant_type": "refresh_token",
                                                          "refresh_token": credentials.refresh_token}))
    except IdPError as exc:
        if exc.code == "invalid_client":  # the client secret, not the sign-in: fixable without a login
            raise OAuthHubError("Acme refused the client secret (invalid_client). Set the current one with "
                                "`oauth-hub config set acme.client_secret -`.") from None
        if exc.code == "invalid_grant":
            raise SignInEnded("Your Acme sign-in has ended. Run `oauth-hub login acme` to sign in again.") from None
        raise


@hookimpl
def revoke_tokens(settings: dict[str, Any], http: Any, credentials: Any) -> bool:
    http.post(settings["revoke_url"], what="token revocation", **authenticate_client(settings, {
        "token": credentials.refresh_token, "token_type_hint": "refresh_token",
    }))
    return True


@hookimpl
def list_models(settings: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"id": name, "context_length": 32_000} for name in settings["models"]]


@hookimpl
def model_entry(settings: dict[str, Any], model: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "openai",
        "name": model["id"],
        "custom_endpoint": {"url": settings["api_base"], "api_key": "$ACME_ACCESS_TOKEN"},
        "context_length": model["context_length"],
    }


@hookimpl
def environment(credentials: Any) -> dict[str, str]:
    return {"ACME_ACCESS_TOKEN": credentials.access_token or ""}
