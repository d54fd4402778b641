"""OpenRouter: the PKCE sign-in OpenRouter documents for apps that connect their users.

Wire facts follow OpenRouter's documentation ("OAuth PKCE",
``openrouter.ai/docs/guides/overview/auth/oauth``; the OpenAPI description in
``OpenRouterTeam/docs``) and its SDK ``@openrouter/sdk`` 1.3.19:

- The browser opens ``https://openrouter.ai/auth?callback_url=…&code_challenge=…
  &code_challenge_method=S256`` (plus ``key_label``, the name the person sees on the key,
  and ``limit``, a credit limit in USD, when set). There is no client id: the PKCE
  challenge is the only proof, and OpenRouter names the app after the callback URL.
- The callback is a loopback one on ``localhost`` (the documentation accepts
  localhost on any port); the server binds 127.0.0.1 only. OpenRouter documents no
  ``state``, so the login's state is put in the callback URL's own query
  (``http://localhost:PORT/callback?state=…``): OpenRouter adds ``code`` to that URL,
  and the engine's callback server checks the state as for any provider.
- ``POST https://openrouter.ai/api/v1/auth/keys`` with ``{code, code_verifier,
  code_challenge_method}`` answers ``{key, user_id}``. The key is the credential:
  no refresh token, no expiry. It is stored as the access token (what ``oauth-hub
  token`` prints) and as the API key (what exports point tools at), and the engine
  never tries to refresh it.
- ``GET /api/v1/key`` tells the key's label, credit limit, what is left and usage
  (``status openrouter``); ``GET /api/v1/models`` lists the models, of which the ones
  that answer in text are model entries.
- An OAuth-issued key cannot delete itself (deleting takes a management key), so
  ``logout`` forgets it and says where to delete it.

API calls carry OpenRouter's attribution headers: ``X-OpenRouter-Title`` (apps on
localhost are only counted with it) and, when the ``app_url`` setting is set,
``HTTP-Referer``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from oauth_core.errors import OAuthHubError
from oauth_core.hookspecs import hookimpl


@hookimpl
def provider_defaults() -> dict[str, Any]:
    return {
        "title": "OpenRouter",
        "description": "OpenRouter (one key for hundreds of models) via its PKCE sign-in",
        "issuer": "https://openrouter.ai",
        "api_base": "https://openrouter.ai/api/v1",
        "key_label": "oauth-hub",  # the key's name in the person's OpenRouter settings
        "key_limit": 0.0,  # a credit limit for the key, in USD; 0: none asked for
        "app_title": "oauth-hub",
        "app_url": "",
        "keys_page": "https://openrouter.ai/settings/keys",
        # Any free port on localhost, as OpenRouter documents for local apps.
        "port": 0,
        "redirect_host": "localhost",
        "callback_path": "/callback",
        "callback_timeout": 300,
        "prefix": "openrouter-",
    }


def _api(settings: dict[str, Any]) -> str:
    return str(settings["api_base"]).rstrip("/")


def _attribution(settings: dict[str, Any]) -> dict[str, str]:
    headers = {"X-OpenRouter-Title": str(settings["app_title"])}
    if settings.get("app_url"):
        headers["HTTP-Referer"] = str(settings["app_url"])
    return headers


def _headers(settings: dict[str, Any], key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **_attribution(settings)}


@hookimpl
def build_auth_url(settings: dict[str, Any], redirect_uri: str, state: str, code_challenge: str) -> str:
    query = {
        # The state rides in the callback URL's own query: OpenRouter appends `code` to it.
        "callback_url": f"{redirect_uri}?{urlencode({'state': state})}",
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
        "key_label": settings["key_label"],
    }
    if settings["key_limit"] > 0:
        query["limit"] = f"{settings['key_limit']:g}"
    return f"{str(settings['issuer']).rstrip('/')}/auth?{urlencode(query)}"


@hookimpl
def exchange_code(settings: dict[str, Any], http: Any, code: str, code_verifier: str) -> dict[str, Any]:
    answer = http.post(
        f"{_api(settings)}/auth/keys",
        json={"code": code, "code_verifier": code_verifier, "code_challenge_method": "S256"},
        headers=_attribution(settings), what="key exchange",
    )
    key = answer.get("key")
    if not isinstance(key, str) or not key:
        raise OAuthHubError("OpenRouter answered the key exchange without a key. Run the login again.")
    return {"access_token": key, "user_id": answer.get("user_id")}


@hookimpl
def describe_account(credentials: Any, answer: dict[str, Any] | None) -> dict[str, Any]:
    account = dict(credentials.account)
    user_id = (answer or {}).get("user_id")
    if isinstance(user_id, str) and user_id:
        account["account_id"] = user_id
    return account


def _key_info(settings: dict[str, Any], http: Any, credentials: Any) -> dict[str, Any]:
    answer = http.get(f"{_api(settings)}/key", headers=_headers(settings, credentials.access_token),
                      what="key information request")
    data = answer.get("data")
    if not isinstance(data, dict):
        raise OAuthHubError("OpenRouter answered the key information request without 'data'.")
    return data


@hookimpl
def account_profile(settings: dict[str, Any], http: Any, credentials: Any) -> dict[str, Any]:
    data = _key_info(settings, http, credentials)
    profile: dict[str, Any] = {"plan": "free tier" if data.get("is_free_tier") else "credits"}
    if isinstance(data.get("label"), str):
        profile["key_label"] = data["label"]  # masked by OpenRouter, e.g. sk-or-v1-abc...xyz
    if not credentials.account.get("account_id") and isinstance(data.get("creator_user_id"), str):
        profile["account_id"] = data["creator_user_id"]
    return profile


@hookimpl
def obtain_api_key(credentials: Any) -> str | None:
    """The key from the exchange is an API key: the same secret serves both roles."""
    return credentials.access_token


def _money(value: Any) -> str:
    return f"${value:,.2f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "?"


@hookimpl
def account_limits(settings: dict[str, Any], http: Any, credentials: Any) -> dict[str, Any]:
    data = _key_info(settings, http, credentials)
    keep = ("label", "limit", "limit_remaining", "limit_reset", "usage", "usage_daily", "usage_weekly",
            "usage_monthly", "is_free_tier", "expires_at")
    limits = {k: data.get(k) for k in keep}
    if data.get("limit") is None:
        summary = f"no credit limit on this key; used {_money(data.get('usage'))}"
    else:
        reset = f", resets {data['limit_reset']}" if data.get("limit_reset") else ""
        summary = (f"{_money(data.get('limit_remaining'))} of {_money(data.get('limit'))} left{reset}; "
                   f"used {_money(data.get('usage'))}")
    limits["summary"] = summary + (" (free tier)" if data.get("is_free_tier") else "")
    return limits


def _chat_model(model: Any) -> bool:
    """A model that takes text and answers in text only: what an agent tool chats with."""
    if not isinstance(model, dict) or not isinstance(model.get("id"), str):
        return False
    architecture = model.get("architecture") if isinstance(model.get("architecture"), dict) else {}
    inputs, outputs = architecture.get("input_modalities"), architecture.get("output_modalities")
    return isinstance(inputs, list) and "text" in inputs and outputs == ["text"]


@hookimpl
def list_models(settings: dict[str, Any], http: Any, credentials: Any) -> list[dict[str, Any]]:
    answer = http.get(f"{_api(settings)}/models", headers=_headers(settings, credentials.access_token),
                      what="model list")
    data = answer.get("data")
    if not isinstance(data, list):
        raise OAuthHubError("OpenRouter answered the model list without a 'data' list.")
    models = []
    for model in data:
        if not _chat_model(model):
            continue
        parameters = [p for p in model.get("supported_parameters") or [] if isinstance(p, str)]
        top = model.get("top_provider") if isinstance(model.get("top_provider"), dict) else {}
        pricing = model.get("pricing") if isinstance(model.get("pricing"), dict) else {}
        context = model.get("context_length")
        models.append({
            "id": model["id"],
            "display_name": model.get("name") if isinstance(model.get("name"), str) else model["id"],
            "context_length": context if isinstance(context, int) and not isinstance(context, bool) else None,
            "max_output_tokens": top.get("max_completion_tokens"),
            "supports": {"tools": "tools" in parameters, "reasoning": "reasoning" in parameters,
                         "structured_outputs": "structured_outputs" in parameters,
                         "vision": "image" in model["architecture"]["input_modalities"]},
            "pricing": {k: pricing.get(k) for k in ("prompt", "completion") if k in pricing},
        })
    return models


@hookimpl
def model_entry(settings: dict[str, Any], model: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "openai",
        "name": model["id"],
        "display_name": model["display_name"],
        "api": "chat_completions",
        "custom_endpoint": {"url": _api(settings), "api_key": "$OPENROUTER_API_KEY",
                            "headers": _attribution(settings)},
        "context_length": model["context_length"] or 32768,
        "max_output_tokens": model["max_output_tokens"],
        "supports": model["supports"],
        "pricing": model["pricing"],
    }


@hookimpl
def api_base(settings: dict[str, Any]) -> str:
    return _api(settings)


@hookimpl
def request_headers(settings: dict[str, Any], credentials: Any) -> dict[str, str]:
    return _headers(settings, credentials.api_key or credentials.access_token)


@hookimpl
def environment(credentials: Any) -> dict[str, str]:
    """``OPENROUTER_API_KEY``: the name LiteLLM, aider and OpenRouter's SDKs read."""
    return {"OPENROUTER_API_KEY": credentials.api_key or credentials.access_token or ""}


@hookimpl
def revocation_hint(settings: dict[str, Any], credentials: Any) -> str:
    label = credentials.account.get("key_label")
    named = f"named {settings['key_label']!r}"
    which = f"the key {label} ({named})" if label else f"the key {named}"
    return (f"An OpenRouter key cannot delete itself: oauth-hub forgot it, but it works until you delete {which} "
            f"at {settings['keys_page']}.")


# -- the gateway (`oauth-hub serve`'s /v1) ----------------------------------------------------------


@hookimpl
def gateway_backend() -> dict[str, str]:
    """Chat Completions, which every OpenRouter model speaks; other dialects are translated into it."""
    return {"chat": "chat/completions"}
