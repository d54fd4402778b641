"""Claude: the sign-in of Anthropic's Claude Code CLI (as Claude Code 2.1.x does it).

The wire facts follow Claude Code 2.1.332 (npm ``@anthropic-ai/claude-code``; its
JavaScript is embedded in the platform binary of ``@anthropic-ai/claude-code-linux-x64``,
where ``strings`` shows the endpoints, the client id and the scope lists). Endpoints are
settings, because they have moved before (``console.anthropic.com`` →
``platform.claude.com``, ``claude.ai`` → ``claude.com/cai``).

Two kinds of sign-in (:func:`sign_in_variants`), chosen with ``login claude_code
--console`` or at a prompt:

- **subscription** (Claude Pro/Max/Team): authorize at ``claude.com/cai``. The grant
  carries ``user:inference``; API calls send the access token as bearer with
  ``anthropic-beta: …oauth-2025-04-20`` and Claude Code's ``User-Agent`` and ``x-app``.
  No API key is ever created for it.
- **console** (Anthropic Console, API billing): authorize at ``platform.claude.com``.
  The grant lacks ``user:inference``, so the login creates an API key
  (``create_api_key`` → ``raw_key``); API calls send it as ``x-api-key``.

Claude Code asks both hosts for the same scopes; which kind it got is read from the
*granted* scopes in the token answer (``user:inference`` or not), as Claude Code does.
Other differences from ChatGPT that exercise the hooks: JSON token requests that carry
``state``, opaque tokens whose identity comes in the token answer (``account``,
``organization``) and from ``/api/oauth/profile`` (the plan), a random loopback port on
``localhost``, a manual redirect page that shows ``code#state`` (``login --manual``),
and a refresh that sends the granted ``scope`` back, where only ``invalid_grant`` ends
the sign-in.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from oauth_core.errors import IdPError, OAuthHubError, SignInEnded
from oauth_core.hookspecs import hookimpl

CLIENT_ID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
#: The Claude Code release whose wire behaviour this provider follows.
CLAUDE_CODE_VERSION = "2.1.332"
#: What Claude Code 2.1.x asks for, at both authorize hosts, in its order.
SCOPES = (
    "org:create_api_key user:profile user:inference user:sessions:claude_code user:mcp_servers "
    "user:file_upload user:plugins user:privacy_consents:write"
)
#: What a refresh asks for when the granted scopes are not known (Claude Code's default).
REFRESH_SCOPES = "user:profile user:inference user:sessions:claude_code user:mcp_servers user:file_upload user:plugins"
INFERENCE = "user:inference"
#: ``organization.organization_type`` of the profile → the plan shown by ``status``.
PLANS = {"claude_max": "Max", "claude_pro": "Pro", "claude_team": "Team", "claude_enterprise": "Enterprise"}
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
        "authorize_url": "https://claude.com/cai/oauth/authorize",  # Claude Pro/Max
        "console_authorize_url": "https://platform.claude.com/oauth/authorize",  # Anthropic Console
        "token_url": "https://platform.claude.com/v1/oauth/token",
        "revoke_url": "https://platform.claude.com/v1/oauth/token/revoke",
        "manual_redirect_uri": "https://platform.claude.com/oauth/code/callback",
        "success_url": "https://platform.claude.com/oauth/code/success?app=claude-code",
        "api_base": "https://api.anthropic.com",
        "profile_url": "https://api.anthropic.com/api/oauth/profile",
        "roles_url": "https://api.anthropic.com/api/oauth/claude_cli/roles",
        "create_api_key_url": "https://api.anthropic.com/api/oauth/claude_cli/create_api_key",
        "anthropic_version": "2023-06-01",
        "oauth_beta": "oauth-2025-04-20",
        # What Claude Code sends with an OAuth bearer (its claude-code beta goes to every
        # model but Haiku; a gateway may add per-model ones).
        "betas": "claude-code-20250219,oauth-2025-04-20",
        "claude_code_version": CLAUDE_CODE_VERSION,
        "scopes": SCOPES,
        "console_scopes": SCOPES,
        # Claude Code listens on a random free port of 127.0.0.1 and names it localhost.
        "port": 0,
        "callback_path": "/callback",
        "redirect_host": "localhost",
        "callback_timeout": 300,
        "prefix": "claude-code-",
        "oauth_source": "claude-code-plugin",
    }


def _console(settings: dict[str, Any]) -> bool:
    return settings.get("variant") == "console"


def _granted(credentials: Any) -> set[str]:
    """The scopes the sign-in was granted (from the token answer), as stored at login."""
    return set(str(credentials.account.get("scope") or "").split())


def _oauth_client_headers(settings: dict[str, Any], access_token: str | None) -> dict[str, str]:
    """Headers of Claude Code's calls to its OAuth helpers (profile, roles, create_api_key)."""
    return {"Authorization": f"Bearer {access_token}", "User-Agent": f"claude-code/{settings['claude_code_version']}"}


def _api_identity(settings: dict[str, Any]) -> dict[str, str]:
    """The headers that say "Claude Code" on Messages API calls."""
    return {
        "User-Agent": f"claude-cli/{settings['claude_code_version']} (external, cli)",
        "x-app": "cli",
        "anthropic-version": settings["anthropic_version"],
    }


@hookimpl
def sign_in_variants() -> list[dict[str, str]]:
    return [
        {"name": "subscription", "title": "Claude account with a subscription (Pro, Max, Team)",
         "description": "the subscription's models, through the access token"},
        {"name": "console", "title": "Anthropic Console account (API billing)",
         "description": "an API key is created for the organisation"},
    ]


@hookimpl
def build_auth_url(settings: dict[str, Any], redirect_uri: str, state: str, code_challenge: str) -> str:
    console = _console(settings)
    query = {
        "code": "true",  # lets the manual redirect page display the code to copy
        "client_id": settings["client_id"],
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "scope": settings["console_scopes" if console else "scopes"],
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
        "state": state,
    }
    return f"{settings['console_authorize_url' if console else 'authorize_url']}?{urlencode(query)}"


@hookimpl
def exchange_code(
    settings: dict[str, Any], http: Any, code: str, redirect_uri: str, code_verifier: str, state: str
) -> dict[str, Any]:
    return http.post(
        settings["token_url"],
        json={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": settings["client_id"],
            "code_verifier": code_verifier,
            "state": state,
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
        ("scope", answer.get("scope")),  # granted scopes: they tell Console from Pro/Max, and refresh sends them
    ):
        if isinstance(value, str) and value:
            account[key] = value
    if account.get("scope") and INFERENCE not in account["scope"].split():
        account["plan"] = "Console"  # an API-billing sign-in: no subscription to name
    return account


@hookimpl
def account_profile(settings: dict[str, Any], http: Any, credentials: Any) -> dict[str, Any]:
    """The plan (Pro / Max / Team / Enterprise, or Console) and role, as Claude Code reads them."""
    profile = http.get(
        settings["profile_url"],
        headers={**_oauth_client_headers(settings, credentials.access_token), "Content-Type": "application/json",
                 "Cache-Control": "no-cache"},
        what="profile request",
    )
    person = profile.get("account") if isinstance(profile, dict) and isinstance(profile.get("account"), dict) else {}
    org = profile.get("organization") if isinstance(profile, dict) and isinstance(profile.get("organization"), dict) \
        else {}
    found: dict[str, Any] = {}
    for key, value in (("email", person.get("email")), ("account_id", person.get("uuid")),
                       ("display_name", person.get("display_name")), ("organization_id", org.get("uuid")),
                       ("organization_name", org.get("name")), ("organization_type", org.get("organization_type"))):
        if isinstance(value, str) and value:
            found[key] = value
    if INFERENCE not in _granted(credentials):
        found["plan"] = "Console"
    elif org.get("organization_type") in PLANS:
        found["plan"] = PLANS[org["organization_type"]]
    # Roles are extra: Claude Code, too, goes on without them.
    try:
        roles = http.get(settings["roles_url"], headers=_oauth_client_headers(settings, credentials.access_token),
                         what="roles request")
    except OAuthHubError:
        return found
    if isinstance(roles, dict):
        for key in ("organization_role", "workspace_role", "organization_name"):
            if isinstance(roles.get(key), str) and roles[key]:
                found[key] = roles[key]
    return found


@hookimpl
def obtain_api_key(settings: dict[str, Any], http: Any, credentials: Any) -> str | None:
    if INFERENCE in _granted(credentials):
        return None  # Pro/Max: the access token is the credential; never a key
    answer = http.post(
        settings["create_api_key_url"],
        headers=_oauth_client_headers(settings, credentials.access_token),
        what="API key creation",
    )
    key = answer.get("raw_key") if isinstance(answer, dict) else None
    if not isinstance(key, str) or not key:
        raise OAuthHubError("the API key creation answered without a key")
    return key


@hookimpl
def request_headers(settings: dict[str, Any], credentials: Any, use_api_key: bool) -> dict[str, str]:
    if use_api_key:
        return {"x-api-key": credentials.api_key, **_api_identity(settings)}
    return {"Authorization": f"Bearer {credentials.access_token}", "anthropic-beta": settings["betas"],
            **_api_identity(settings)}


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
            json={"grant_type": "refresh_token", "refresh_token": credentials.refresh_token,
                  "client_id": settings["client_id"],
                  # The granted scopes again, as Claude Code sends them (asking for more than
                  # the grant is invalid_scope); its default when they are not known.
                  "scope": str(credentials.account.get("scope") or REFRESH_SCOPES)},
            what="token refresh",
            retries=3,
            idempotent=False,
        )
    except IdPError as exc:
        # Only invalid_grant means the refresh token is dead (expired, revoked, reused),
        # as in Claude Code; any other refusal is reported and the sign-in kept.
        if exc.code == "invalid_grant" and exc.status in (400, 401):
            raise SignInEnded(
                f"Your Claude sign-in has ended: the refresh token was refused (invalid_grant). "
                f"Run `{hint}` to sign in again."
            ) from None
        raise


@hookimpl
def revoke_tokens(settings: dict[str, Any], http: Any, credentials: Any) -> bool:
    http.post(
        settings["revoke_url"],
        json={"token": credentials.refresh_token, "token_type_hint": "refresh_token",
              "client_id": settings["client_id"]},
        what="token revocation",
    )
    return True


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
    # Claude Code's betas (the `betas` setting) merged with the client's own, never put in
    # their place; Claude Code sends its claude-code beta for every model but Haiku. Its
    # User-Agent and x-app come with the authentication headers (request_headers).
    own = [b for b in _betas(settings["betas"]) if not (b == CLAUDE_CODE_BETA and "haiku" in request.model)]
    headers["anthropic-beta"] = ",".join(dict.fromkeys([*own, *client_betas]))
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


# -- taking over Claude Code's sign-in (`oauth-hub import claude-code`) -------------------------------


@hookimpl
def import_sources(environ: dict[str, str]) -> list[dict[str, str]]:
    from . import claude_import

    return [{"name": claude_import.SOURCE, "title": "Claude Code",
             "path": str(claude_import.credentials_path(environ))}]


@hookimpl
def read_import(source: str, path: str) -> dict[str, Any] | None:
    from pathlib import Path

    from . import claude_import

    return claude_import.read(Path(path)) if source == claude_import.SOURCE else None


@hookimpl
def release_import(source: str, path: str, credentials: Any) -> str | None:
    from pathlib import Path

    from . import claude_import

    return claude_import.release(Path(path), credentials) if source == claude_import.SOURCE else None
