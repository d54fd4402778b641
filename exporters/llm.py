"""llm (Simon Willison's CLI): ``extra-openai-models.yaml`` in llm's user directory.

llm reads that file in ``llm/default_plugins/openai_models.py``: a YAML list whose items
have ``model_id`` (the name used with ``llm -m``) and ``model_name`` (sent upstream),
and optionally ``api_base``, ``api_key_name``, ``headers``, ``aliases``, ``can_stream``,
``supports_tools`` (needed for ``llm -T``), ``supports_schema``, ``vision`` and
``responses: true`` (call the Responses API instead of Chat Completions). Keys it does
not know are ignored, so each item of ours carries ``oauth_source``.

The directory is ``$LLM_USER_PATH`` if set, else llm's click app dir
(``io.datasette.llm`` under the platform config dir, e.g. ``~/.config/io.datasette.llm``).

Secrets: llm keeps keys in its own store, and ``api_key_name`` names one
(``llm keys set NAME``); the item never holds the key, so ``--include-secrets`` changes
nothing here. Models that speak the Responses API get ``responses: true``; any other
(a Claude model's Messages API) is called through Chat Completions at ``oauth-hub
serve``'s ``/v1``, which translates: llm's YAML has no Messages API.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from oauth_core.exporters import (
    API_CHAT,
    API_RESPONSES,
    ExportModel,
    ExportOptions,
    hookimpl,
    marked,
    merge_list,
    remove_list,
    serve_note,
)
from oauth_core.store import platform_app_dir

FILE_NAME = "extra-openai-models.yaml"


def _name(item: Any) -> Any:
    return item.get("model_id") if isinstance(item, dict) else None


def key_name(model: ExportModel) -> str:
    """The llm key name an item uses: one per provider for API keys, one for serve's local key."""
    return "oauth-hub-serve" if model.via_serve else f"oauth-hub-{model.provider}"


@hookimpl
def exporter_info() -> dict[str, Any]:
    return {
        "title": "llm",
        "description": f"{FILE_NAME} in llm's user directory",
        "format": "yaml",
        "apis": [API_CHAT, API_RESPONSES],
    }


@hookimpl
def default_path(environ: Mapping[str, str], home: Path) -> str:
    base = environ.get("LLM_USER_PATH")
    return str(Path(base) / FILE_NAME if base else platform_app_dir("io.datasette.llm") / FILE_NAME)


@hookimpl
def render(models: list[ExportModel], options: ExportOptions) -> dict[str, Any]:
    entries: dict[str, Any] = {}
    for m in models:
        item: dict[str, Any] = {
            "model_id": m.key,
            "model_name": m.request_model,
            "api_base": m.base_url,
            "api_key_name": key_name(m),
            "supports_tools": True,
        }
        if m.api == API_RESPONSES:
            item["responses"] = True
        if m.headers:
            item["headers"] = dict(m.headers)
        item["oauth_source"] = m.marker
        entries[m.key] = item
    return entries


@hookimpl
def merge(document: Any, entries: dict[str, Any], marker: str) -> tuple[Any, list[str]]:
    return merge_list(document, entries, _name, marked(marker), FILE_NAME)


@hookimpl
def remove(document: Any, keys: list[str] | None, marker: str) -> tuple[Any, list[str]]:
    return remove_list(document, keys, _name, marked(marker), FILE_NAME)


@hookimpl
def instructions(models: list[ExportModel], options: ExportOptions, path: str | None) -> list[str]:
    if not models:
        return []
    lines = []
    for name, via_serve in sorted({(key_name(m), m.via_serve) for m in models}):
        value = "$(oauth-hub serve --print-key)" if via_serve else f"$(oauth-hub token {options.provider} --api-key)"
        lines.append(f'Store the key once: llm keys set {name} --value "{value}"')
    lines.append(f'Then: llm -m {models[0].key} "hello"')
    if options.include_secrets:
        lines.append("--include-secrets changes nothing for llm: it keeps keys in its own store (llm keys set).")
    return lines + [line for line in serve_note(models, options) if "export " not in line]
