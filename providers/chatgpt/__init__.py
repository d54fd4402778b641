"""ChatGPT: the sign-in of OpenAI's Codex CLI (as Codex 0.171 does it).

Wire facts (endpoints, parameters, the public client id, claim names) follow the Codex
CLI: its public source (``openai/codex``, ``codex-rs/login/src/server.rs``
``build_authorize_url``, ``codex-rs/login/src/auth/revoke.rs``) and the 0.171.0 release
on npm (``@openai/codex``), whose binary holds the scope string and whose ``codex
login``, run with a ``$BROWSER`` that records the URL, sends exactly the authorize
fields :func:`build_auth_url` sends. Two modes come out of a login:

- **API-key mode**: when the ID token carries ``organization_id`` and ``project_id``,
  the token-exchange grant yields a platform API key, and models come from
  ``{api_base}/models``. As in Codex the key is obtained at login, not on every
  refresh (tools were handed it); the engine asks again only when the key is refused.
- **Subscription mode**: otherwise (e.g. a Plus account with no API org) the access
  token itself is used against the ChatGPT backend (``{chatgpt_base}``), which needs the
  ``ChatGPT-Account-Id`` header.

A new login revokes the sign-in it replaces (the engine calls :func:`revoke_tokens`
with the old credentials), as Codex does.
"""

from __future__ import annotations

import platform
from typing import Any
from urllib.parse import quote, urlencode

from oauth_core.claims import safe_payload
from oauth_core.errors import IdPError, LoginError, OAuthHubError, SignInEnded
from oauth_core.hookspecs import hookimpl

from .models import context_length, is_chat_model

CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
AUTH_CLAIMS = "https://api.openai.com/auth"
SCOPES = "openid profile email offline_access api.connectors.read api.connectors.invoke"
ORIGINATOR = "codex_cli_rs"
CODEX_VERSION = "0.171.0"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 (a grant type)
DEVICE_CODE_LIFETIME = 15 * 60  # Codex gives up polling after 15 minutes
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105 (a token type name)
# Codex's own words for a refresh token that can never work again.
DEAD_REFRESH_CODES = {
    "refresh_token_expired": "has expired",
    "refresh_token_reused": "was already used (another program refreshed it first)",
    "refresh_token_invalidated": "was revoked",
    "invalid_grant": "is no longer valid",
}


@hookimpl
def provider_defaults() -> dict[str, Any]:
    return {
        "title": "ChatGPT",
        "description": "ChatGPT Plus/Pro/Team via the OpenAI Codex CLI sign-in",
        "issuer": "https://auth.openai.com",
        "client_id": CLIENT_ID,
        "api_base": "https://api.openai.com/v1",
        "chatgpt_base": "https://chatgpt.com/backend-api/codex",
        "client_version": CODEX_VERSION,
        # OpenAI allows only these two redirect ports for this client id.
        "port": 1455,
        "fallback_ports": [1457],
        "callback_path": "/auth/callback",
        "redirect_host": "127.0.0.1",
        "cancel_busy_port": True,  # Codex's own rule: a stale login on 1455 is asked to give way
        "callback_timeout": 300,
        "prefix": "chatgpt-",
        "oauth_source": "chatgpt-oauth-plugin",
        "api_key_env": "CHATGPT_OAUTH_API_KEY",
        # ID tokens are checked against OpenAI's published keys before any claim is used.
        "jwks_uri": "{issuer}/.well-known/jwks.json",
    }


def _issuer(settings: dict[str, Any]) -> str:
    return str(settings["issuer"]).rstrip("/")


def _backend_headers(settings: dict[str, Any]) -> dict[str, str]:
    """The ChatGPT backend expects Codex's originator and a Codex-style User-Agent."""
    system = f"{platform.system()} {platform.release()}; {platform.machine()}"
    return {
        "originator": ORIGINATOR,
        "User-Agent": f"{ORIGINATOR}/{settings['client_version']} ({system}) oauth-hub",
    }


@hookimpl
def build_auth_url(settings: dict[str, Any], redirect_uri: str, state: str, code_challenge: str) -> str:
    query = {
        "response_type": "code",
        "client_id": settings["client_id"],
        "redirect_uri": redirect_uri,
        "scope": SCOPES,
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
        "id_token_add_organizations": "true",
        "codex_cli_simplified_flow": "true",
        "state": state,
        "originator": ORIGINATOR,
    }
    # %20 for spaces, as Codex's encoder writes them (urlencode's default is '+').
    return f"{_issuer(settings)}/oauth/authorize?{urlencode(query, quote_via=quote)}"


@hookimpl
def exchange_code(
    settings: dict[str, Any], http: Any, code: str, redirect_uri: str, code_verifier: str
) -> dict[str, Any]:
    return http.post(
        f"{_issuer(settings)}/oauth/token",
        form={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": settings["client_id"],
            "code_verifier": code_verifier,
        },
        what="token exchange",
    )


def _auth_claims(token: str | None) -> dict[str, Any]:
    claims = safe_payload(token)
    nested = claims.get(AUTH_CLAIMS)
    return nested if isinstance(nested, dict) else {}


@hookimpl
def describe_account(credentials: Any) -> dict[str, Any]:
    # Identity comes from the ID token only: the engine has verified it against the
    # JWKS. The access token's claims are not checked, so they are not trusted here.
    id_claims = safe_payload(credentials.id_token)
    auth = _auth_claims(credentials.id_token)
    email = id_claims.get("email")

    def pick(key: str) -> Any:
        value = auth.get(key, id_claims.get(key))
        return value if isinstance(value, (str, bool, int)) else None

    return {
        "email": email if isinstance(email, str) else None,
        "plan": pick("chatgpt_plan_type"),
        "account_id": pick("chatgpt_account_id"),
        "user_id": pick("chatgpt_user_id"),
        "organization_id": pick("organization_id"),
        "project_id": pick("project_id"),
        "completed_platform_onboarding": pick("completed_platform_onboarding"),
        "is_org_owner": pick("is_org_owner"),
    }


@hookimpl
def obtain_api_key(settings: dict[str, Any], http: Any, credentials: Any) -> str | None:
    account = credentials.account or describe_account(credentials)
    if not (account.get("organization_id") and account.get("project_id")):
        return None  # no API platform org: subscription mode
    answer = http.post(
        f"{_issuer(settings)}/oauth/token",
        form={
            "grant_type": TOKEN_EXCHANGE,
            "client_id": settings["client_id"],
            "requested_token": "openai-api-key",
            "subject_token": credentials.id_token,
            "subject_token_type": ID_TOKEN_TYPE,
        },
        what="API key exchange",
    )
    key = answer.get("access_token")
    if not isinstance(key, str) or not key:
        raise OAuthHubError("the API key exchange answered without a key")
    return key


@hookimpl
def list_models(settings: dict[str, Any], http: Any, credentials: Any) -> list[dict[str, Any]]:
    if credentials.api_key:
        answer = http.get(
            f"{str(settings['api_base']).rstrip('/')}/models",
            headers={"Authorization": f"Bearer {credentials.api_key}"},
            what="model list",
        )
        data = answer.get("data") if isinstance(answer, dict) else None
        ids = sorted({m["id"] for m in data or [] if isinstance(m, dict) and isinstance(m.get("id"), str)})
        return [{"id": i, "context_length": context_length(i), "mode": "api_key"} for i in ids if is_chat_model(i)]

    account_id = credentials.account.get("account_id")
    if not account_id:
        raise OAuthHubError("the sign-in carries no ChatGPT account id, so the subscription models cannot be listed")
    answer = http.get(
        f"{str(settings['chatgpt_base']).rstrip('/')}/models",
        params={"client_version": settings["client_version"]},
        headers={"Authorization": f"Bearer {credentials.access_token}", "ChatGPT-Account-Id": account_id,
                 **_backend_headers(settings)},
        what="subscription model list",
    )
    listed = answer.get("models") if isinstance(answer, dict) else None
    models = [
        m for m in listed or []
        if isinstance(m, dict) and isinstance(m.get("slug"), str) and m.get("visibility") == "list"
    ]
    models.sort(key=lambda m: (m.get("priority") if isinstance(m.get("priority"), (int, float)) else 1e9, m["slug"]))
    return [
        {
            "id": m["slug"],
            "context_length": m["context_window"] if isinstance(m.get("context_window"), int)
            else context_length(m["slug"]),
            "mode": "subscription",
        }
        for m in models
    ]


@hookimpl
def model_entry(settings: dict[str, Any], model: dict[str, Any], credentials: Any) -> dict[str, Any]:
    if model.get("mode") == "api_key":
        api_root = str(settings["api_base"]).rstrip("/").removesuffix("/v1")
        return {
            "type": "openai",
            "name": model["id"],
            "custom_endpoint": {"url": api_root, "api_key": f"${settings['api_key_env']}"},
            "context_length": model["context_length"],
            "oauth_source": settings["oauth_source"],
        }
    # Subscription mode: the ChatGPT backend speaks the Responses API, takes the
    # (rotating) access token as bearer, and needs the account header.
    return {
        "type": "chatgpt_subscription",
        "name": model["id"],
        "api": "responses",
        "custom_endpoint": {
            "url": str(settings["chatgpt_base"]).rstrip("/"),
            "api_key": "$CHATGPT_OAUTH_ACCESS_TOKEN",
            "headers": {"ChatGPT-Account-Id": credentials.account.get("account_id"), "originator": ORIGINATOR},
        },
        "context_length": model["context_length"],
        "oauth_source": settings["oauth_source"],
    }


@hookimpl
def refresh_tokens(settings: dict[str, Any], http: Any, credentials: Any) -> dict[str, Any]:
    if not credentials.refresh_token:
        raise SignInEnded(f"The stored sign-in has no refresh token. Run `oauth-hub login {settings['name']}`.")
    try:
        return http.post(
            f"{_issuer(settings)}/oauth/token",
            json={"client_id": settings["client_id"], "grant_type": "refresh_token",
                  "refresh_token": credentials.refresh_token},
            what="token refresh",
            retries=3,
            idempotent=False,
        )
    except IdPError as exc:
        if exc.code in DEAD_REFRESH_CODES or exc.status == 401:
            why = DEAD_REFRESH_CODES.get(exc.code or "", "was refused")
            raise SignInEnded(
                f"Your {settings.get('title', 'ChatGPT')} sign-in has ended: the refresh token {why}. "
                f"Run `oauth-hub login {settings['name']}` to sign in again."
            ) from None
        raise


@hookimpl
def revoke_tokens(settings: dict[str, Any], http: Any, credentials: Any) -> bool:
    http.post(
        f"{_issuer(settings)}/oauth/revoke",
        json={"token": credentials.refresh_token, "token_type_hint": "refresh_token",
              "client_id": settings["client_id"]},
        what="token revocation",
    )
    return True


@hookimpl
def api_base(settings: dict[str, Any], credentials: Any) -> str:
    # API keys use the platform API; a subscription's access token the ChatGPT backend.
    return str(settings["api_base"] if credentials.api_key else settings["chatgpt_base"])


@hookimpl
def start_device_login(settings: dict[str, Any], http: Any) -> dict[str, Any]:
    issuer = _issuer(settings)
    answer = http.post(f"{issuer}/api/accounts/deviceauth/usercode", json={"client_id": settings["client_id"]},
                       what="device code request")
    if not isinstance(answer, dict) or not answer.get("device_auth_id") or not answer.get("user_code"):
        raise OAuthHubError("the device code request answered without a code")
    return {
        "device_auth_id": answer["device_auth_id"],
        "user_code": answer["user_code"],
        "interval": answer.get("interval", 5),  # Codex sees it as a string at times
        "expires_in": DEVICE_CODE_LIFETIME,
        "verification_uri": f"{issuer}/codex/device",
    }


@hookimpl
def poll_device_login(settings: dict[str, Any], http: Any, device: dict[str, Any]) -> dict[str, Any] | None:
    issuer = _issuer(settings)
    try:
        answer = http.post(
            f"{issuer}/api/accounts/deviceauth/token",
            json={"device_auth_id": device["device_auth_id"], "user_code": device["user_code"]},
            what="device code poll",
        )
    except IdPError as exc:
        if exc.status in (403, 404):
            return None  # not approved yet
        raise LoginError(
            f"The device sign-in stopped: {exc} Run `oauth-hub login {settings['name']} --device` for a new code."
        ) from None
    code, verifier = answer.get("authorization_code"), answer.get("code_verifier")
    if not code or not verifier:
        raise LoginError("The device sign-in was approved but no authorization code came back. Try again.")
    return exchange_code(settings=settings, http=http, code=code, redirect_uri=f"{issuer}/deviceauth/callback",
                         code_verifier=verifier)


@hookimpl
def request_headers(settings: dict[str, Any], credentials: Any, use_api_key: bool) -> dict[str, str]:
    if use_api_key:
        return {"Authorization": f"Bearer {credentials.api_key}"}
    # The ChatGPT backend wants the account header and Codex's originator/User-Agent.
    headers = {"Authorization": f"Bearer {credentials.access_token}", **_backend_headers(settings)}
    if credentials.account.get("account_id"):
        headers["ChatGPT-Account-Id"] = credentials.account["account_id"]
    return headers


@hookimpl
def environment(settings: dict[str, Any], credentials: Any) -> dict[str, str]:
    env = {"CHATGPT_OAUTH_ACCESS_TOKEN": credentials.access_token or ""}
    if credentials.api_key:
        env[settings["api_key_env"]] = credentials.api_key
    if credentials.account.get("account_id"):
        env["CHATGPT_ACCOUNT_ID"] = credentials.account["account_id"]
    return env


# -- the gateway: the Codex backend's rules ----------------------------------------------------

#: What the Codex backend refuses: output limits and the sampling parameters its clients strip.
CODEX_UNSUPPORTED = ("max_output_tokens", "max_tokens", "max_completion_tokens", "temperature", "top_p",
                     "previous_response_id")
#: Used when a caller sends no system prompt at all: the backend requires instructions.
DEFAULT_INSTRUCTIONS = "You are a helpful assistant."


@hookimpl
def gateway_backend(credentials: Any) -> dict[str, str]:
    # The platform API (API key) speaks both OpenAI dialects; the ChatGPT backend only Responses.
    if credentials.api_key:
        return {"responses": "responses", "chat": "chat/completions"}
    return {"responses": "responses"}


@hookimpl
def gateway_request(settings: dict[str, Any], credentials: Any, request: Any) -> None:
    if credentials.api_key or request.dialect != "responses":
        return
    body = request.body
    items = body.get("input")
    if isinstance(items, str):
        items = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": items}]}]
    items = [dict(i) for i in items or [] if isinstance(i, dict) and i.get("type") != "item_reference"]
    for item in items:
        item.pop("id", None)  # nothing is stored with store:false, so ids refer to nothing
    instructions = body.get("instructions")
    if not isinstance(instructions, str) or not instructions.strip():
        # A system prompt sent as leading system/developer messages becomes the instructions.
        lead = []
        while items and items[0].get("type", "message") == "message" and items[0].get("role") in (
                "system", "developer"):
            lead.append(_text_of(items.pop(0).get("content")))
        body["instructions"] = "\n\n".join(t for t in lead if t) or DEFAULT_INSTRUCTIONS
    body["input"] = items
    if isinstance(body.get("tools"), list):
        body["tools"] = [_codex_tool(t) for t in body["tools"]]
    for param in CODEX_UNSUPPORTED:
        body.pop(param, None)
    body["store"] = False
    body["stream"] = True
    include = [i for i in body.get("include") or [] if isinstance(i, str)]
    if "reasoning.encrypted_content" not in include:
        include.append("reasoning.encrypted_content")
    body["include"] = include
    import uuid

    # Codex 0.171 sends a session id per conversation and no OpenAI-Beta header over HTTPS
    # (older Codex and ChatMock sent `responses=experimental`; the current binary has no such string).
    request.headers.update({
        "session_id": request.client_headers.get("session_id") or str(uuid.uuid4()),
        "Accept": "text/event-stream",
    })


def _codex_tool(tool: Any) -> Any:
    """A function tool as Codex sends its own: ``strict`` a boolean, ``false`` unless the caller said true.

    Left out or ``null`` (LiteLLM's bridges send ``"strict": null``), the Responses API would
    make the tool strict, and refuse every schema that is not strict-compatible.
    """
    if isinstance(tool, dict) and tool.get("type") == "function" and not isinstance(tool.get("strict"), bool):
        return {**tool, "strict": False}
    return tool


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content or [] if isinstance(p, dict) and isinstance(p.get("text"), str))


@hookimpl
def gateway_rate_limits(headers: Any) -> list[dict[str, Any]] | None:
    import time

    windows = []
    for name in ("primary", "secondary"):
        used = _number(headers.get(f"x-codex-{name}-used-percent"))
        if used is None:
            continue
        window: dict[str, Any] = {"name": name, "used_percent": used}
        minutes = _number(headers.get(f"x-codex-{name}-window-minutes"))
        if minutes is not None:
            window["window_minutes"] = int(minutes)
        reset_at = _number(headers.get(f"x-codex-{name}-reset-at"))
        after = _number(headers.get(f"x-codex-{name}-reset-after-seconds"))
        if reset_at is not None:
            window["resets_at"] = int(reset_at)
        elif after is not None:
            window["resets_at"] = int(time.time() + after)
        windows.append(window)
    return windows or None


def _number(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


# -- taking over the Codex CLI's sign-in (`oauth-hub import codex`) -------------------------------


@hookimpl
def import_sources(environ: dict[str, str]) -> list[dict[str, str]]:
    from . import codex_import

    return [{"name": codex_import.SOURCE, "title": "the Codex CLI",
             "path": str(codex_import.auth_path(environ))}]


@hookimpl
def read_import(source: str, path: str) -> dict[str, Any] | None:
    from pathlib import Path

    from . import codex_import

    return codex_import.read(Path(path)) if source == codex_import.SOURCE else None


@hookimpl
def release_import(source: str, path: str, credentials: Any) -> str | None:
    from pathlib import Path

    from . import codex_import

    return codex_import.release(Path(path), credentials) if source == codex_import.SOURCE else None
