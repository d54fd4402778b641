"""Claude: the sign-in of Anthropic's Claude Code CLI.

It differs from ChatGPT in the places that test the hooks: JSON token requests that
carry ``state``, opaque (non-JWT) tokens whose identity comes in the token answer
(``account``, ``organization``), a loopback port *range*, a manual redirect page that
shows ``code#state`` for machines without a usable loopback (``login --manual``), an
API-key endpoint that only Console organisations may use, and a beta header that OAuth
bearer calls must carry. Endpoints are settings, because they have moved domains
before (console.anthropic.com → platform.claude.com).

Two modes come out of a login:

- **API key** (Console accounts): ``create_api_key`` returns a ``raw_key``; API calls
  send it as ``x-api-key``.
- **Subscription** (Pro/Max): no key; API calls send the access token as bearer with
  ``anthropic-beta: oauth-2025-04-20``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from oauth_core.errors import IdPError, OAuthHubError, SignInEnded
from oauth_core.hookspecs import hookimpl

CLIENT_ID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
SCOPES = "org:create_api_key user:profile user:inference"
CONTEXT_LENGTH = 200_000
#: The system line Claude Code's own requests begin with; subscription tokens are refused
#: for Sonnet and Opus without it.
IDENTITY = "You are Claude Code, Anthropic's official CLI for Claude."
#: The beta Claude Code sends besides the OAuth one (npm @anthropic-ai/claude-code, its binary's strings).
CLAUDE_CODE_BETA = "claude-code-20250219"


@hookimpl
def provider_defaults() -> dict[str, Any]:
    return {
        "title": "Claude",
        "description": "Claude Pro/Max or Console via the Claude Code sign-in",
        "client_id": CLIENT_ID,
        "authorize_url": "https://claude.ai/oauth/authorize",
        "token_url": "https://console.anthropic.com/v1/oauth/token",
        "manual_redirect_uri": "https://console.anthropic.com/oauth/code/callback",
        "api_base": "https://api.anthropic.com",
        "create_api_key_url": "https://api.anthropic.com/api/oauth/claude_cli/create_api_key",
        "anthropic_version": "2023-06-01",
        "oauth_beta": "oauth-2025-04-20",
        # The Claude Code release whose User-Agent the gateway sends (`claude-cli/<v> (external, cli)`).
        "cli_version": "2.1.332",
        "scopes": SCOPES,
        # Claude Code's loopback redirect: any free port of 8765–8795 on localhost.
        "port": 8765,
        "fallback_ports": list(range(8766, 8796)),
        "callback_path": "/callback",
        "redirect_host": "localhost",
        "callback_timeout": 300,
        "prefix": "claude-code-",
        "oauth_source": "claude-code-plugin",
    }


@hookimpl
def build_auth_url(settings: dict[str, Any], redirect_uri: str, state: str, code_challenge: str) -> str:
    query = {
        "code": "true",  # lets the manual redirect page display the code to copy
        "client_id": settings["client_id"],
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "scope": settings["scopes"],
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
        "state": state,
    }
    return f"{settings['authorize_url']}?{urlencode(query)}"


@hookimpl
def exchange_code(
    settings: dict[str, Any], http: Any, code: str, redirect_uri: str, code_verifier: str, state: str
) -> dict[str, Any]:
    return http.post(
        settings["token_url"],
        json={
            "grant_type": "authorization_code",
            "client_id": settings["client_id"],
            "code": code,
            "state": state,
            "code_verifier": code_verifier,
            "redirect_uri": redirect_uri,
        },
        what="token exchange",
    )


@hookimpl
def describe_account(credentials: Any, answer: dict[str, Any] | None) -> dict[str, Any]:
    account = dict(credentials.account or {})  # a refresh answer may leave identity out
    answer = answer or {}
    person = answer.get("account") if isinstance(answer.get("account"), dict) else {}
    org = answer.get("organization") if isinstance(answer.get("organization"), dict) else {}
    for key, value in (
        ("email", person.get("email_address")),
        ("account_id", person.get("uuid")),
        ("organization_id", org.get("uuid")),
        ("organization_name", org.get("name")),
    ):
        if isinstance(value, str) and value:
            account[key] = value
    return account


@hookimpl
def obtain_api_key(settings: dict[str, Any], http: Any, credentials: Any) -> str | None:
    answer = http.post(
        settings["create_api_key_url"],
        headers={"Authorization": f"Bearer {credentials.access_token}"},
        json={},
        what="API key creation",
    )
    key = answer.get("raw_key") if isinstance(answer, dict) else None
    if not isinstance(key, str) or not key:
        raise OAuthHubError("the API key creation answered without a key")
    return key


@hookimpl
def request_headers(settings: dict[str, Any], credentials: Any, use_api_key: bool) -> dict[str, str]:
    if use_api_key:
        return {"x-api-key": credentials.api_key, "anthropic-version": settings["anthropic_version"]}
    return {
        "Authorization": f"Bearer {credentials.access_token}",
        "anthropic-beta": settings["oauth_beta"],
        "anthropic-version": settings["anthropic_version"],
    }


@hookimpl
def list_models(settings: dict[str, Any], http: Any, credentials: Any) -> list[dict[str, Any]]:
    answer = http.get(
        f"{str(settings['api_base']).rstrip('/')}/v1/models",
        headers=request_headers(settings=settings, credentials=credentials, use_api_key=bool(credentials.api_key)),
        params={"limit": "1000"},
        what="model list",
    )
    data = answer.get("data") if isinstance(answer, dict) else None
    return [
        {"id": m["id"], "display_name": m.get("display_name"), "context_length": CONTEXT_LENGTH}
        for m in data or []
        if isinstance(m, dict) and isinstance(m.get("id"), str) and m["id"].startswith("claude")
    ]


@hookimpl
def model_entry(settings: dict[str, Any], model: dict[str, Any], credentials: Any) -> dict[str, Any]:
    base = str(settings["api_base"]).rstrip("/")
    if credentials.api_key:
        return {
            "type": "anthropic",
            "name": model["id"],
            "custom_endpoint": {"url": base, "api_key": "$ANTHROPIC_API_KEY"},
            "context_length": model["context_length"],
            "auth": "api_key",
            "oauth_source": settings["oauth_source"],
        }
    # Subscription: the (rotating) access token as bearer, with the OAuth beta header.
    return {
        "type": "claude_code",
        "name": model["id"],
        "custom_endpoint": {
            "url": base,
            "api_key": "$CLAUDE_CODE_OAUTH_TOKEN",
            "headers": {"anthropic-beta": settings["oauth_beta"], "anthropic-version": settings["anthropic_version"]},
        },
        "context_length": model["context_length"],
        "auth": "oauth_bearer",
        "oauth_source": settings["oauth_source"],
    }


@hookimpl
def api_base(settings: dict[str, Any]) -> str:
    return str(settings["api_base"])  # API keys and OAuth bearers both go to the Messages API host


@hookimpl
def refresh_tokens(settings: dict[str, Any], http: Any, credentials: Any) -> dict[str, Any]:
    hint = f"oauth-hub login {settings['name']}"
    if not credentials.refresh_token:
        raise SignInEnded(f"The stored Claude sign-in has no refresh token. Run `{hint}`.")
    try:
        return http.post(
            settings["token_url"],
            json={"grant_type": "refresh_token", "client_id": settings["client_id"],
                  "refresh_token": credentials.refresh_token},
            headers={"anthropic-beta": settings["oauth_beta"]},
            what="token refresh",
            retries=3,
            idempotent=False,
        )
    except IdPError as exc:
        if exc.code == "invalid_grant" or exc.status in (400, 401):
            raise SignInEnded(
                f"Your Claude sign-in has ended: the refresh token was refused ({exc.code or exc.status}). "
                f"Run `{hint}` to sign in again."
            ) from None
        raise


@hookimpl
def revoke_tokens() -> bool:
    return False  # Anthropic publishes no revocation endpoint for this client


@hookimpl
def environment(settings: dict[str, Any], credentials: Any) -> dict[str, str]:
    env = {"CLAUDE_CODE_OAUTH_TOKEN": credentials.access_token or ""}
    if credentials.api_key:
        env["ANTHROPIC_API_KEY"] = credentials.api_key
    return env


# -- the gateway: what a subscription token needs on /v1/messages ------------------------------


@hookimpl
def gateway_backend() -> dict[str, str]:
    return {"messages": "v1/messages"}


def _betas(value: str | None) -> list[str]:
    return [b.strip() for b in (value or "").split(",") if b.strip()]


@hookimpl
def gateway_request(settings: dict[str, Any], credentials: Any, request: Any) -> None:
    if request.dialect != "messages":
        return
    headers = request.headers
    headers["anthropic-version"] = request.client_headers.get("anthropic-version") or settings["anthropic_version"]
    client_betas = _betas(request.client_headers.get("anthropic-beta"))
    if credentials.api_key:
        if client_betas:
            headers["anthropic-beta"] = ",".join(dict.fromkeys(client_betas))
        return
    # The OAuth beta is merged with the client's own, never put in their place. Claude Code
    # 2.1.332 sends its own beta for every model but Haiku.
    own = [] if "haiku" in request.model else [CLAUDE_CODE_BETA]
    betas = [*own, settings["oauth_beta"], *client_betas]
    headers["anthropic-beta"] = ",".join(dict.fromkeys(betas))
    headers["x-app"] = "cli"
    headers["User-Agent"] = f"claude-cli/{settings['cli_version']} (external, cli)"
    request.body["system"] = _with_identity(request.body.get("system"))


def _with_identity(system: Any) -> list[dict[str, Any]]:
    """The system prompt as blocks whose first one is exactly Claude Code's identity line."""
    if isinstance(system, list):
        blocks = [b for b in system if isinstance(b, dict)]
    elif isinstance(system, str) and system:
        blocks = [{"type": "text", "text": system}]
    else:
        blocks = []
    if blocks and blocks[0].get("type") == "text" and str(blocks[0].get("text", "")).strip() == IDENTITY:
        return blocks
    if blocks and blocks[0].get("type") == "text" and str(blocks[0].get("text", "")).startswith(IDENTITY):
        rest = str(blocks[0]["text"])[len(IDENTITY):].lstrip()
        blocks = ([{**blocks[0], "text": rest}] if rest else []) + blocks[1:]
    return [{"type": "text", "text": IDENTITY}, *blocks]


@hookimpl
def gateway_rate_limits(headers: Any) -> list[dict[str, Any]] | None:
    prefix = "anthropic-ratelimit-unified-"
    windows = []
    for name, value in headers.items():
        lower = name.lower()
        if not (lower.startswith(prefix) and lower.endswith("-utilization")):
            continue
        window = lower[len(prefix):-len("-utilization")]
        try:
            used = float(value) * 100
        except ValueError:
            continue
        row: dict[str, Any] = {"name": window, "used_percent": round(used, 2)}
        minutes = {"5h": 300}.get(window, 10080 if window.startswith("7d") else None)
        if minutes:
            row["window_minutes"] = minutes
        try:
            row["resets_at"] = int(float(headers.get(f"{prefix}{window}-reset") or ""))
        except ValueError:
            pass
        windows.append(row)
    return windows or None
