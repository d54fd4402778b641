"""GitHub Copilot: GitHub's device sign-in and the Copilot API, as Copilot's own clients use them.

Wire facts follow the current reference clients: GitHub's Copilot language server
(npm ``@github/copilot-language-server`` 1.539.0, which carries the VS Code Copilot
Chat request code), the Copilot CLI (``@github/copilot`` 1.0.102), LiteLLM 1.110.2
(``litellm/llms/github_copilot``), copilot-api 0.7.0 and Zed
(``crates/copilot_chat``).

**The sign-in** is RFC 8628's device flow at github.com, the only one Copilot's clients
use: ``login copilot`` shows a code and the page to type it into, and polls until the
person approves (``authorization_pending``), slowing down when told to (``slow_down``
carries the new interval), and stopping on ``expired_token`` or ``access_denied``.

**Two tokens.** Which token the Copilot API takes as its bearer splits the clients in
two camps; the ``token_exchange`` setting picks one:

- ``true`` (the default; the language server, copilot-api, ccproxy, Zed): the GitHub
  token of the Copilot editor app (client id ``Iv1.b507a08c87ecfe98``, scope
  ``read:user``) is exchanged at ``GET api.github.com/copilot_internal/v2/token`` for a
  Copilot token that lives about 30 minutes and names the account's API host
  (``endpoints.api``). Chosen because the credential tools are handed expires within
  the half hour, and the long-lived GitHub token never leaves oauth-hub; and because
  the editor app asks for ``read:user`` alone, where the Copilot CLI's app asks for
  ``repo``, ``gist`` and more. The GitHub token is stored as the record's
  ``refresh_token``: what mints the short-lived token, never sent to the Copilot API.
  :func:`refresh_tokens` repeats the exchange, so the engine renews the Copilot token
  before it expires, under its cross-process lock, like any refresh.
- ``false`` (LiteLLM 1.110.2, opencode, the Copilot CLI): the GitHub token itself is the
  bearer, with no expiry and nothing to refresh. Set ``client_id`` (and ``scope``,
  ``integration_id``) as well to use another app's identity.

**Every call to the Copilot API** carries the headers its editor clients send, which
the service checks for tokens of the editor app: ``Copilot-Integration-Id``,
``Editor-Version``, ``Editor-Plugin-Version``, ``User-Agent``, ``X-GitHub-Api-Version``,
``Openai-Intent`` (all settings). The values are those of VS Code's Copilot Chat, as
LiteLLM, copilot-api and ccproxy send them; the README says what that means.

GitHub offers no way for an app without its client secret to revoke a token, so
``logout`` deletes the local copy and says where to revoke the app.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

from oauth_core.errors import IdPError, LoginError, LoginTimeout, OAuthHubError, SignInEnded
from oauth_core.hookspecs import hookimpl

from .models import API_PREFERENCE, apis, describe, usable

#: The GitHub Copilot editor app: the language server's default, LiteLLM's and copilot-api's.
CLIENT_ID = "Iv1.b507a08c87ecfe98"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
#: copilot_internal/user's ``copilot_plan`` → what status shows (the raw value is kept too). The
#: language server 1.539.0 asks ``individual`` users to "upgrade to Copilot Pro+" and not
#: ``individual_pro`` ones; ``individual_max`` has no public name yet and is shown as it is.
PLAN_TITLES = {"individual": "Pro", "individual_pro": "Pro+", "business": "Business", "enterprise": "Enterprise"}
FREE_SKU = "free_limited_copilot"
QUOTA_NAMES = (("premium_interactions", "premium requests"), ("chat", "chat"), ("completions", "completions"))
#: Hosts the Copilot API lives on; an ``endpoints.api`` elsewhere is not trusted with a token.
TRUSTED_HOST = re.compile(r"^(?:[a-z0-9-]+\.)*githubcopilot\.com$|^copilot-api\.[a-z0-9-]+\.ghe\.com$")


@hookimpl
def provider_defaults() -> dict[str, Any]:
    return {
        "title": "GitHub Copilot",
        "description": "GitHub Copilot (Free, Pro, Business, Enterprise) via GitHub's device sign-in",
        # github.com for the sign-in (a GitHub Enterprise host works too), its API, and the Copilot API.
        "issuer": "https://github.com",
        "github_api": "https://api.github.com",
        "api_base": "https://api.githubcopilot.com",
        "client_id": CLIENT_ID,
        "scope": "read:user",
        "token_exchange": True,
        # What the Copilot API is told about the client (VS Code's Copilot Chat, as LiteLLM,
        # copilot-api and ccproxy send it); its editor app's tokens are refused without them.
        "integration_id": "vscode-chat",
        "editor_version": "vscode/1.104.3",
        "editor_plugin_version": "copilot-chat/0.26.7",
        "user_agent": "GitHubCopilotChat/0.26.7",
        "api_version": "2025-04-01",
        "openai_intent": "conversation-panel",
        "anthropic_version": "2023-06-01",  # on /v1/messages, for the models that list it
        "revoke_page": "https://github.com/settings/apps/authorizations",
        "port": 0,  # no loopback callback: the device flow needs none
        "prefix": "copilot-",
    }


# -- headers and hosts --------------------------------------------------------------------


def _github_token(credentials: Any) -> str | None:
    """The GitHub token: the record's refresh token when it was exchanged, else the bearer itself."""
    return credentials.refresh_token or credentials.access_token


def _client_headers(settings: dict[str, Any]) -> dict[str, str]:
    return {
        "Editor-Version": settings["editor_version"],
        "Editor-Plugin-Version": settings["editor_plugin_version"],
        "User-Agent": settings["user_agent"],
    }


def _github_headers(settings: dict[str, Any], token: str | None) -> dict[str, str]:
    """Headers for api.github.com (the user, the Copilot seat, the token exchange)."""
    return {"Authorization": f"token {token}", "Accept": "application/json",
            "X-GitHub-Api-Version": settings["api_version"], **_client_headers(settings)}


def _api_headers(settings: dict[str, Any], bearer: str | None) -> dict[str, str]:
    """What every call to the Copilot API carries."""
    return {
        "Authorization": f"Bearer {bearer}",
        "Copilot-Integration-Id": settings["integration_id"],
        "Openai-Intent": settings["openai_intent"],
        "X-GitHub-Api-Version": settings["api_version"],
        "X-Request-Id": str(uuid.uuid4()),
        **_client_headers(settings),
    }


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()


def _trusted(settings: dict[str, Any], url: Any) -> bool:
    """An ``endpoints.api`` we may send the token to: a Copilot API host over HTTPS, or the configured base's."""
    if not isinstance(url, str) or not url:
        return False
    parts = urlsplit(url)
    if _origin(url) == _origin(str(settings["api_base"])):
        return True
    return parts.scheme == "https" and bool(TRUSTED_HOST.match(parts.hostname or ""))


def _base(settings: dict[str, Any], credentials: Any) -> str:
    found = credentials.account.get("api_base")
    return str(found if _trusted(settings, found) else settings["api_base"]).rstrip("/")


# -- the device sign-in -------------------------------------------------------------------


@hookimpl
def start_device_login(settings: dict[str, Any], http: Any) -> dict[str, Any]:
    answer = http.post(
        f"{str(settings['issuer']).rstrip('/')}/login/device/code",
        json={"client_id": settings["client_id"], "scope": settings["scope"]},
        headers={"Accept": "application/json", "User-Agent": settings["user_agent"]},
        what="device code request", retries=2,
    )
    if answer.get("error"):
        raise LoginError(f"GitHub refused to start the sign-in ({answer['error']}: "
                         f"{answer.get('error_description') or 'no reason given'}). Check the client_id setting.")
    for key in ("device_code", "user_code", "verification_uri"):
        if not isinstance(answer.get(key), str) or not answer[key]:
            raise LoginError(f"GitHub's device code answer has no {key}. Try again later.")
    return {
        "device_code": answer["device_code"],
        "user_code": answer["user_code"],
        "verification_uri": answer["verification_uri"],
        "interval": answer.get("interval", 5),
        "expires_in": answer.get("expires_in", 900),
    }


@hookimpl
def poll_device_login(settings: dict[str, Any], http: Any, device: dict[str, Any]) -> dict[str, Any] | None:
    hint = f"oauth-hub login {settings['name']}"
    answer = http.post(
        f"{str(settings['issuer']).rstrip('/')}/login/oauth/access_token",
        json={"client_id": settings["client_id"], "device_code": device["device_code"], "grant_type": DEVICE_GRANT},
        headers={"Accept": "application/json", "User-Agent": settings["user_agent"]},
        what="device sign-in poll", retries=2,
    )
    error = answer.get("error")
    if error == "authorization_pending":
        return None
    if error == "slow_down":
        # GitHub raises the interval (by 5 s) and says the new one; polling sooner is refused again.
        raised = answer.get("interval")
        current = float(device.get("interval") or 5)
        device["interval"] = raised if isinstance(raised, (int, float)) and raised > current else current + 5
        return None
    if error == "expired_token":
        raise LoginTimeout(f"The code expired before it was entered at GitHub. Run `{hint}` again.")
    if error == "access_denied":
        raise LoginError(f"The sign-in was cancelled at GitHub. Run `{hint}` to try again.")
    if error:
        raise LoginError(f"GitHub refused the device sign-in ({error}: "
                         f"{answer.get('error_description') or 'no reason given'}). Run `{hint}` again.")
    token = answer.get("access_token")
    if not isinstance(token, str) or not token:
        raise LoginError(f"GitHub approved the sign-in but sent no token. Run `{hint}` again.")
    if not settings["token_exchange"]:
        # Nothing is exchanged, so nothing has checked the seat yet: do, before anything is saved.
        _copilot_user(settings, http, token, hint=f" Check your plan at https://github.com/settings/copilot, then "
                                                  f"run `{hint}`.")
        return {"access_token": token}
    return {**_exchange(settings, http, token), "refresh_token": token}


# -- the Copilot token ----------------------------------------------------------------------


def _exchange(settings: dict[str, Any], http: Any, github_token: str) -> dict[str, Any]:
    """Trade the GitHub token for a Copilot token; a token-endpoint-style answer."""
    hint = f"oauth-hub login {settings['name']}"
    try:
        answer = http.get(f"{str(settings['github_api']).rstrip('/')}/copilot_internal/v2/token",
                          headers=_github_headers(settings, github_token), what="Copilot token request", retries=2)
    except IdPError as exc:
        if exc.status == 401:
            raise SignInEnded(f"GitHub no longer accepts the {settings['name']} sign-in (it was revoked or the app "
                              f"was removed). Run `{hint}`.") from None
        if exc.status in (403, 404):
            raise OAuthHubError(
                f"This GitHub account has no GitHub Copilot access (HTTP {exc.status}). Check your plan at "
                "https://github.com/settings/copilot (Copilot Free is available there), then run "
                f"`{hint}`.") from None
        raise
    token = answer.get("token")
    if not isinstance(token, str) or not token:
        raise OAuthHubError("GitHub answered the Copilot token request without a token. Try again later.")
    refresh_in, expires_at = answer.get("refresh_in"), answer.get("expires_at")
    if isinstance(refresh_in, (int, float)) and not isinstance(refresh_in, bool) and refresh_in > 0:
        lifetime = float(refresh_in) + 60  # the language server's reading: immune to a wrong local clock
    elif isinstance(expires_at, (int, float)) and not isinstance(expires_at, bool) and expires_at > time.time():
        lifetime = float(expires_at) - time.time()
    else:
        lifetime = 600.0
    endpoints = answer.get("endpoints") if isinstance(answer.get("endpoints"), dict) else {}
    return {"access_token": token, "expires_in": lifetime,
            "copilot": {"api": endpoints.get("api"), "sku": answer.get("sku"),
                        "chat_enabled": answer.get("chat_enabled")}}


@hookimpl
def refresh_tokens(settings: dict[str, Any], http: Any, credentials: Any) -> dict[str, Any]:
    """Mint a new Copilot token from the stored GitHub token (there is no refresh grant)."""
    if not credentials.refresh_token:
        raise SignInEnded(f"The {settings['name']} sign-in has no GitHub token to renew the Copilot token with. "
                          f"Run `oauth-hub login {settings['name']}`.")
    return _exchange(settings, http, credentials.refresh_token)


@hookimpl
def describe_account(settings: dict[str, Any], credentials: Any, answer: dict[str, Any] | None) -> dict[str, Any]:
    account = dict(credentials.account)
    copilot = (answer or {}).get("copilot")
    if isinstance(copilot, dict):
        if _trusted(settings, copilot.get("api")):
            account["api_base"] = copilot["api"]
        if isinstance(copilot.get("sku"), str):
            account["sku"] = copilot["sku"]
    account["token_exchange"] = bool(credentials.refresh_token)
    return account


# -- who, which plan, how much is left --------------------------------------------------------


def _copilot_user(settings: dict[str, Any], http: Any, github_token: str | None, hint: str = "") -> dict[str, Any]:
    """``copilot_internal/user``: the seat, plan, quotas and API host (LiteLLM's seat check)."""
    try:
        return http.get(f"{str(settings['github_api']).rstrip('/')}/copilot_internal/user",
                        headers=_github_headers(settings, github_token), what="Copilot plan request")
    except IdPError as exc:
        if exc.status in (403, 404):
            status = exc.status
            raise OAuthHubError(f"This GitHub account has no GitHub Copilot access (HTTP {status}).{hint}") from None
        raise


def _plan(seat: dict[str, Any]) -> str | None:
    if seat.get("access_type_sku") == FREE_SKU:
        return "Free"
    raw = seat.get("copilot_plan")
    return PLAN_TITLES.get(raw, raw) if isinstance(raw, str) else None


@hookimpl
def account_profile(settings: dict[str, Any], http: Any, credentials: Any) -> dict[str, Any]:
    user = http.get(f"{str(settings['github_api']).rstrip('/')}/user",
                    headers=_github_headers(settings, _github_token(credentials)), what="GitHub user request")
    seat = _copilot_user(settings, http, _github_token(credentials))
    profile: dict[str, Any] = {
        "account_id": user.get("login"),
        "email": user.get("email") if isinstance(user.get("email"), str) else None,
        "name": user.get("name"),
        "github_id": user.get("id"),
        "plan": _plan(seat),
        "copilot_plan": seat.get("copilot_plan"),
        "sku": seat.get("access_type_sku"),
        "organizations": [o for o in seat.get("organization_login_list") or [] if isinstance(o, str)],
    }
    endpoints = seat.get("endpoints") if isinstance(seat.get("endpoints"), dict) else {}
    if "api_base" not in credentials.account and _trusted(settings, endpoints.get("api")):
        profile["api_base"] = endpoints["api"]  # the direct-token camp learns its host here
    return profile


def _quota_line(label: str, snapshot: dict[str, Any]) -> str:
    if snapshot.get("unlimited"):
        return f"{label} unlimited"
    remaining, entitlement = snapshot.get("remaining"), snapshot.get("entitlement")
    return f"{label} {remaining} of {entitlement} left"


@hookimpl
def account_limits(settings: dict[str, Any], http: Any, credentials: Any) -> dict[str, Any]:
    seat = _copilot_user(settings, http, _github_token(credentials))
    snapshots = seat.get("quota_snapshots") if isinstance(seat.get("quota_snapshots"), dict) else {}
    quotas = {name: {k: v for k, v in snap.items() if k in ("entitlement", "remaining", "percent_remaining",
                                                             "unlimited", "overage_permitted", "overage_count")}
              for name, snap in snapshots.items() if isinstance(snap, dict)}
    lines = [_quota_line(label, quotas[name]) for name, label in QUOTA_NAMES if name in quotas]
    reset = seat.get("quota_reset_date")
    summary = "; ".join(lines) + (f" (resets {reset})" if reset and lines else "")
    return {"plan": _plan(seat), "copilot_plan": seat.get("copilot_plan"), "sku": seat.get("access_type_sku"),
            "chat_enabled": seat.get("chat_enabled"), "quota_reset_date": reset, "quotas": quotas,
            "summary": summary or None}


# -- models and API calls -------------------------------------------------------------------------


@hookimpl
def list_models(settings: dict[str, Any], http: Any, credentials: Any) -> list[dict[str, Any]]:
    answer = http.get(f"{_base(settings, credentials)}/models",
                      headers=_api_headers(settings, credentials.access_token), what="model list")
    data = answer.get("data")
    if not isinstance(data, list):
        raise OAuthHubError("The Copilot API answered the model list without a 'data' list.")
    return [describe(m) for m in data if usable(m)]


@hookimpl
def model_entry(settings: dict[str, Any], model: dict[str, Any], credentials: Any) -> dict[str, Any]:
    static = {k: v for k, v in _api_headers(settings, None).items() if k not in ("Authorization", "X-Request-Id")}
    return {
        "type": "openai",
        "name": model["id"],
        "display_name": model["display_name"],
        "api": model["apis"][0],
        "custom_endpoint": {"url": _base(settings, credentials), "api_key": "$COPILOT_ACCESS_TOKEN",
                            "headers": static},
        "context_length": model["context_length"] or 128000,
        "max_output_tokens": model["max_output_tokens"],
        "supported_endpoints": model["supported_endpoints"],
        "supports": model["supports"],
        "premium": model["premium"],
        "multiplier": model["multiplier"],
        "vendor": model["vendor"],
    }


@hookimpl
def api_base(settings: dict[str, Any], credentials: Any) -> str:
    return _base(settings, credentials)


@hookimpl
def request_headers(settings: dict[str, Any], credentials: Any, use_api_key: bool) -> dict[str, str]:
    return _api_headers(settings, credentials.access_token)


@hookimpl
def environment(settings: dict[str, Any], credentials: Any) -> dict[str, str]:
    """The Copilot API's bearer and host; never the long-lived GitHub token."""
    return {"COPILOT_ACCESS_TOKEN": credentials.access_token or "", "COPILOT_API_BASE": _base(settings, credentials)}


@hookimpl
def revocation_hint(settings: dict[str, Any], credentials: Any) -> str:
    return (f"GitHub offers apps no way to revoke their own sign-in: the GitHub token stays valid until you revoke "
            f"the app at {settings['revoke_page']} (\"GitHub Copilot\" there is shared with your editors' "
            "Copilot sign-in).")


# -- the gateway (`oauth-hub serve`'s /v1) ----------------------------------------------------------

#: models.py API name → (gateway dialect, path under the Copilot API's base)
GATEWAY_DIALECTS = {"chat_completions": ("chat", "chat/completions"), "responses": ("responses", "responses"),
                    "messages": ("messages", "v1/messages")}


@hookimpl
def gateway_backend(model: dict[str, Any] | None) -> dict[str, str]:
    """Each model through the APIs its ``supported_endpoints`` list (the whole set when no model is named)."""
    served = list(API_PREFERENCE) if model is None else apis({"supported_endpoints": model.get("supported_endpoints")})
    return dict(GATEWAY_DIALECTS[api] for api in served)


def _initiator(dialect: str, body: dict[str, Any]) -> str:
    """``user`` when the last message is the person's own words, else ``agent`` (a tool loop's follow-up).

    The Copilot API counts a plan's premium requests on ``user`` turns; the rule is
    opencode's and the language server's: only a turn a person typed is theirs.
    """
    items = body.get("input") if dialect == "responses" else body.get("messages")
    if isinstance(items, str):
        return "user"
    if not isinstance(items, list) or not items or not isinstance(items[-1], dict):
        return "agent"
    last = items[-1]
    if last.get("role") != "user" or last.get("type") not in (None, "message"):
        return "agent"
    content = last.get("content")
    if isinstance(content, list) and content and all(
            isinstance(p, dict) and p.get("type") == "tool_result" for p in content):
        return "agent"  # Messages: tool results travel in a user turn
    return "user"


def _has_image(body: dict[str, Any]) -> bool:
    for item in [*(body.get("messages") or []), *(body.get("input") if isinstance(body.get("input"), list) else [])]:
        content = item.get("content") if isinstance(item, dict) else None
        if isinstance(content, list) and any(
                isinstance(p, dict) and p.get("type") in ("image_url", "input_image", "image") for p in content):
            return True
    return False


@hookimpl
def gateway_request(settings: dict[str, Any], request: Any) -> None:
    """What the Copilot API wants beyond the headers of every call: who spoke, and images announced."""
    request.headers["X-Initiator"] = _initiator(request.dialect, request.body)
    if _has_image(request.body):
        request.headers["Copilot-Vision-Request"] = "true"  # refused without it
    if request.dialect == "messages":
        # The version LiteLLM sends to Copilot's Messages endpoint, whatever the caller's SDK says.
        request.headers["anthropic-version"] = settings["anthropic_version"]
        for tool in request.body.get("tools") or []:
            if isinstance(tool, dict):
                tool.pop("eager_input_streaming", None)  # the Messages shim refuses it
