"""LiteLLM proxy: ``model_list`` entries in a proxy config YAML (``litellm --config FILE``).

Each deployment is ``{model_name, litellm_params: {model, api_base, api_key}, model_info}``:

- ``model``: ``openai/<id>`` for a Chat Completions endpoint; ``openai/responses/<id>``
  for a model that only speaks the Responses API (LiteLLM then bridges chat requests
  to ``{api_base}/responses``, and sends ``/v1/responses`` requests there natively);
  ``anthropic/<id>`` for a Messages API endpoint (key sent as ``x-api-key``);
- ``api_key``: ``os.environ/VAR``, LiteLLM's way to read a secret from the environment;
- ``model_info.mode``: ``chat`` or ``responses``; ``model_info.oauth_source`` marks ours.

A proxy config has no standard location, so ``--output`` (or ``--print``) is required.
Other top-level sections of the file (``litellm_settings``, ``general_settings`` …) are
kept as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from oauth_core.errors import CorruptFileError
from oauth_core.exporters import (
    API_CHAT,
    API_MESSAGES,
    API_RESPONSES,
    MARKER_KEY,
    ExportModel,
    ExportOptions,
    hookimpl,
    merge_list,
    remove_list,
    secret_or,
    serve_note,
)

_PREFIX = {API_CHAT: "openai/", API_RESPONSES: "openai/responses/", API_MESSAGES: "anthropic/"}


def _name(item: Any) -> Any:
    return item.get("model_name") if isinstance(item, dict) else None


def _ours(marker: str) -> Any:
    def test(item: Any) -> bool:
        info = item.get("model_info") if isinstance(item, dict) else None
        return isinstance(info, dict) and info.get(MARKER_KEY) == marker

    return test


def _config(document: Any) -> dict[str, Any]:
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise CorruptFileError("The LiteLLM config is not a YAML mapping; it was left untouched.")
    return dict(document)


@hookimpl
def exporter_info() -> dict[str, Any]:
    return {
        "title": "LiteLLM",
        "description": "model_list entries in a LiteLLM proxy config (--output required)",
        "format": "yaml",
        "apis": [API_CHAT, API_RESPONSES, API_MESSAGES],
    }


@hookimpl
def default_path(environ: Mapping[str, str], home: Path) -> None:
    return None


@hookimpl
def render(models: list[ExportModel], options: ExportOptions) -> dict[str, Any]:
    entries: dict[str, Any] = {}
    for m in models:
        params: dict[str, Any] = {
            "model": _PREFIX[m.api] + m.request_model,
            "api_base": m.base_url,
            "api_key": secret_or(m, f"os.environ/{m.secret_env}"),
        }
        if m.headers:
            params["extra_headers"] = dict(m.headers)
        info: dict[str, Any] = {"mode": "responses" if m.api == API_RESPONSES else "chat"}
        if m.context_length:
            info["max_input_tokens"] = m.context_length
        info[MARKER_KEY] = m.marker
        entries[m.key] = {"model_name": m.key, "litellm_params": params, "model_info": info}
    return entries


@hookimpl
def merge(document: Any, entries: dict[str, Any], marker: str) -> tuple[Any, list[str]]:
    config = _config(document)
    config["model_list"], conflicts = merge_list(config.get("model_list"), entries, _name, _ours(marker),
                                                 "LiteLLM model_list")
    return config, conflicts


@hookimpl
def remove(document: Any, keys: list[str] | None, marker: str) -> tuple[Any, list[str]]:
    config = _config(document)
    config["model_list"], removed = remove_list(config.get("model_list"), keys, _name, _ours(marker),
                                                "LiteLLM model_list")
    return config, removed


@hookimpl
def instructions(models: list[ExportModel], options: ExportOptions, path: str | None) -> list[str]:
    if not models:
        return []
    lines = []
    direct = sorted({m.secret_env for m in models if not m.via_serve})
    if direct and not options.include_secrets:
        lines.append(f'Set {", ".join(direct)} for the proxy: eval "$(oauth-hub env {options.provider})"')
    # The proxy refuses to start without a master key (LiteLLM >= 1.108); its clients send it as their key.
    lines.append('Give the proxy a master key, which its clients send as their API key: '
                 'export LITELLM_MASTER_KEY="sk-$(openssl rand -hex 16)"')
    lines.append(f"Run the proxy: litellm --config {path or 'FILE'}   (then use model {models[0].key})")
    return lines + serve_note(models, options)
