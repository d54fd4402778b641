"""opencode: a custom provider block in ``opencode.json``.

opencode reads ``~/.config/opencode/opencode.json`` (``$XDG_CONFIG_HOME`` honoured) and
an ``opencode.json`` in the project, merged; the default here is the global file (pass
``--output ./opencode.json`` for one project). A provider block is

    "provider": {"oauth-hub-<provider>": {
        "npm": <AI SDK package>, "name": ...,
        "options": {"baseURL": ..., "apiKey": "{env:VAR}"},
        "models": {"<model id>": {"name": ...}}}}

and models are chosen as ``oauth-hub-<provider>/<model id>``. ``{env:VAR}`` is
opencode's substitution from the environment. The AI SDK package fixes the API:
``@ai-sdk/openai-compatible`` (Chat Completions at ``{baseURL}/chat/completions``),
``@ai-sdk/openai`` (whose default model calls the Responses API at
``{baseURL}/responses``) and ``@ai-sdk/anthropic`` (Messages at ``{baseURL}/messages``,
so its baseURL ends in ``/v1``).

A model entry's key is the name people pick (``-m oauth-hub-chatgpt/gpt-5``); its ``id``
is what opencode sends, the gateway's ``<provider>/<model>`` for models that go through
``oauth-hub serve``.

No marker key is added to the blocks (opencode 1.18 tolerates unknown keys, but its
schema does not promise to). A block is ours when
its id is one of ours (``oauth-hub-<provider>``, or ``oauth-hub-<provider>-<api>`` when a
provider's models speak more than one API) and its display ``name`` still ends with the
marker in brackets (``"ChatGPT via oauth-hub [<oauth_source>]"``): a block the person
renamed is theirs and left alone.
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
    ExportModel,
    ExportOptions,
    hookimpl,
    secret_or,
    serve_note,
)

SCHEMA = "https://opencode.ai/config.json"
_PACKAGE = {API_CHAT: "@ai-sdk/openai-compatible", API_RESPONSES: "@ai-sdk/openai", API_MESSAGES: "@ai-sdk/anthropic"}
_SUFFIX = {API_CHAT: "chat", API_RESPONSES: "responses", API_MESSAGES: "messages"}
_PREFIX = "oauth-hub-"




def _provider_of(marker: str, block_id: str, block: Any) -> bool:
    """Ours: one of our ids, and the name we gave it (which carries the marker) is still there."""
    name = block.get("name") if isinstance(block, dict) else None
    return block_id.startswith(_PREFIX) and isinstance(name, str) and name.endswith(f"[{marker}]")


def _config(document: Any) -> dict[str, Any]:
    if document is None:
        return {"$schema": SCHEMA}
    if not isinstance(document, dict):
        raise CorruptFileError("The opencode config is not a JSON object; it was left untouched.")
    config = dict(document)
    if config.get("provider") is not None and not isinstance(config["provider"], dict):
        raise CorruptFileError("The opencode config's 'provider' is not an object; it was left untouched.")
    return config


@hookimpl
def exporter_info() -> dict[str, Any]:
    return {
        "title": "opencode",
        "description": "a provider block in opencode.json (global by default)",
        "format": "json",
        "apis": [API_CHAT, API_RESPONSES, API_MESSAGES],
    }


@hookimpl
def default_path(environ: Mapping[str, str], home: Path) -> str:
    base = environ.get("XDG_CONFIG_HOME")
    return str((Path(base) if base else home / ".config") / "opencode" / "opencode.json")


@hookimpl
def render(models: list[ExportModel], options: ExportOptions) -> dict[str, Any]:
    apis = sorted({m.api for m in models})
    blocks: dict[str, Any] = {}
    for m in models:
        block_id = f"{_PREFIX}{m.label}" if len(apis) == 1 else f"{_PREFIX}{m.label}-{_SUFFIX[m.api]}"
        base = m.base_url + "/v1" if m.api == API_MESSAGES else m.base_url
        block = blocks.setdefault(block_id, {
            "npm": _PACKAGE[m.api],
            "name": f"{options.title} via oauth-hub [{m.marker}]",
            "options": {"baseURL": base, "apiKey": secret_or(m, "{env:" + m.secret_env + "}")},
            "models": {},
        })
        if m.headers:
            block["options"].setdefault("headers", {}).update(m.headers)
        entry = {"name": m.model}
        if m.request_model != m.model:
            entry["id"] = m.request_model  # what is sent (`<provider>/<model>` through serve); the key is shown
        block["models"][m.model] = entry
    return blocks


@hookimpl
def merge(document: Any, entries: dict[str, Any], marker: str) -> tuple[Any, list[str]]:
    config = _config(document)
    current = dict(config.get("provider") or {})
    kept = {k: v for k, v in current.items() if not _provider_of(marker, k, v)}
    conflicts = [k for k in entries if k in kept]
    kept.update({k: v for k, v in entries.items() if k not in kept})
    if kept or "provider" in config:
        config["provider"] = kept
    return config, conflicts


@hookimpl
def remove(document: Any, keys: list[str] | None, marker: str) -> tuple[Any, list[str]]:
    config = _config(document)
    current = dict(config.get("provider") or {})
    wanted = None if keys is None else set(keys)
    removed = [k for k, v in current.items() if _provider_of(marker, k, v) and (wanted is None or k in wanted)]
    if removed:
        config["provider"] = {k: v for k, v in current.items() if k not in removed}
    return config, removed


@hookimpl
def instructions(models: list[ExportModel], options: ExportOptions, path: str | None) -> list[str]:
    if not models:
        return []
    blocks = render(models=models, options=options)
    block_id = next(iter(blocks))
    lines = []
    direct = sorted({m.secret_env for m in models if not m.via_serve})
    if direct and not options.include_secrets:
        lines.append(f"Start opencode with {', '.join(direct)} set: oauth-hub exec {options.provider} -- opencode")
    lines.append(f"Pick a model: opencode -m {block_id}/{models[0].model}")
    return lines + serve_note(models, options)
