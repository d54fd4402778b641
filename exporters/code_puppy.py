"""Code Puppy: model entries in its ``extra_models.json`` (the default exporter).

Code Puppy merges ``extra_models.json`` from its data directory into its model list:
``$XDG_DATA_HOME/code_puppy/`` when ``XDG_DATA_HOME`` is set, else ``~/.code_puppy/``
(``code_puppy/config.py``: ``DATA_DIR``, ``EXTRA_MODELS_FILE``). The file maps a model
name to an entry in the format the stored ``<provider>_models.json`` already uses
(``type``, ``name``, ``custom_endpoint: {url, api_key, headers}``, ``context_length``,
``oauth_source``). The ``type`` must be one Code Puppy's model factory builds with a
custom endpoint:

- ``custom_openai``: an OpenAI-compatible Chat Completions endpoint
  (``{url}/chat/completions``, so the url ends in ``/v1``); ``api_key`` and header
  values starting with ``$`` are read from that environment variable;
- ``custom_openai_responses``: the same for the Responses API (``{url}/responses``;
  pydantic-ai's ``OpenAIResponsesModel``, ``code_puppy/model_factory.py``);
- ``custom_anthropic``: a Messages API endpoint; the Anthropic SDK adds
  ``/v1/messages`` to the url and sends the key as ``x-api-key``.

So every model keeps its own API, through ``oauth-hub serve`` for subscriptions.
Entries carry ``oauth_source`` (Code Puppy ignores keys it does not know), which is
how ours are told apart.

This module also says what the ``type`` of a stored entry means (``entry_api``), since
``<provider>_models.json`` is in Code Puppy's format.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from oauth_core.exporters import (
    API_CHAT,
    API_MESSAGES,
    API_RESPONSES,
    ExportModel,
    ExportOptions,
    hookimpl,
    marked,
    merge_mapping,
    remove_mapping,
    secret_or,
    serve_note,
)

# What each Code Puppy model type (and the seed's own types) means as an API.
_TYPE_APIS = {
    "openai": API_CHAT,
    "custom_openai": API_CHAT,
    "azure_openai": API_CHAT,
    "openrouter": API_CHAT,
    "custom_openai_responses": API_RESPONSES,
    "chatgpt_subscription": API_RESPONSES,  # the seed's ChatGPT subscription entries
    "chatgpt_oauth": API_RESPONSES,  # Code Puppy's own ChatGPT plugin
    "anthropic": API_MESSAGES,
    "custom_anthropic": API_MESSAGES,
    "claude_code": API_MESSAGES,
}
_TYPE_FOR_API = {API_CHAT: "custom_openai", API_RESPONSES: "custom_openai_responses",
                 API_MESSAGES: "custom_anthropic"}


@hookimpl
def entry_api(entry: dict[str, Any]) -> str | None:
    """The API a stored entry speaks, by its Code Puppy ``type``; ``None`` for a type we do not know."""
    return _TYPE_APIS.get(str(entry.get("type")))


@hookimpl
def exporter_info() -> dict[str, Any]:
    return {
        "title": "Code Puppy",
        "description": "extra_models.json in Code Puppy's data directory",
        "format": "json",
        "apis": [API_CHAT, API_RESPONSES, API_MESSAGES],
    }


@hookimpl
def default_path(environ: Mapping[str, str], home: Path) -> str:
    base = environ.get("XDG_DATA_HOME")
    directory = Path(base) / "code_puppy" if base else home / ".code_puppy"
    return str(directory / "extra_models.json")


@hookimpl
def render(models: list[ExportModel], options: ExportOptions) -> dict[str, Any]:
    entries: dict[str, Any] = {}
    for m in models:
        endpoint: dict[str, Any] = {"url": m.base_url, "api_key": secret_or(m, f"${m.secret_env}")}
        if m.headers:
            endpoint["headers"] = dict(m.headers)
        entry: dict[str, Any] = {"type": _TYPE_FOR_API[m.api], "name": m.request_model,
                                 "custom_endpoint": endpoint}
        if m.context_length:
            entry["context_length"] = m.context_length
        entry["oauth_source"] = m.marker
        entries[m.key] = entry
    return entries


@hookimpl
def merge(document: Any, entries: dict[str, Any], marker: str) -> tuple[Any, list[str]]:
    return merge_mapping(document, entries, marked(marker), "Code Puppy models file")


@hookimpl
def remove(document: Any, keys: list[str] | None, marker: str) -> tuple[Any, list[str]]:
    return remove_mapping(document, keys, marked(marker), "Code Puppy models file")


@hookimpl
def instructions(models: list[ExportModel], options: ExportOptions, path: str | None) -> list[str]:
    if not models:
        return []
    lines = [f"In Code Puppy: /model {models[0].key}"]
    direct = sorted({m.secret_env for m in models if not m.via_serve})
    if direct and not options.include_secrets:
        lines.append(f"Start Code Puppy with {', '.join(direct)} set: "
                     f"oauth-hub exec {options.provider} -- code-puppy")
    return lines + serve_note(models, options)
