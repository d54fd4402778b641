"""An oauth-hub exporter for the (fictional) Acme CLI, whose config is TOML.

``oauth-hub export PROVIDER --to acme-cli`` writes one ``[models.NAME]`` table per model
into ``$XDG_CONFIG_HOME/acme/config.toml`` (``~/.config/acme/config.toml``); oauth-hub
parses and writes it with ``tomlkit``, so the person's comments and own tables stay as
they were, and ``oauth-hub logout PROVIDER`` takes out exactly these tables again.
Each hook is documented in oauth-hub's ``docs/exporters.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from oauth_core.exporters import (
    API_CHAT,
    API_RESPONSES,
    MARKER_KEY,
    ExportModel,
    ExportOptions,
    hookimpl,
    marked,
    merge_mapping,
    remove_mapping,
    secret_or,
    serve_note,
)

WIRE_API = {API_CHAT: "chat", API_RESPONSES: "responses"}


@hookimpl
def exporter_info() -> dict[str, Any]:
    return {"title": "Acme CLI", "description": "[models] tables in the Acme CLI's config.toml",
            "format": "toml", "apis": [API_CHAT, API_RESPONSES]}


@hookimpl
def default_path(environ: Mapping[str, str], home: Path) -> str:
    base = Path(environ["XDG_CONFIG_HOME"]) if environ.get("XDG_CONFIG_HOME") else home / ".config"
    return str(base / "acme" / "config.toml")


@hookimpl
def render(models: list[ExportModel], options: ExportOptions) -> dict[str, Any]:
    entries = {}
    for model in models:
        entry: dict[str, Any] = {"model": model.model, "base_url": model.base_url, "wire_api": WIRE_API[model.api],
                                 "api_key": secret_or(model, f"${{{model.secret_env}}}")}
        if model.headers:
            entry["headers"] = dict(model.headers)
        if model.context_length:
            entry["context_window"] = model.context_length
        entry[MARKER_KEY] = model.marker
        entries[model.key] = entry
    return entries


@hookimpl
def merge(document: Any, entries: dict[str, Any], marker: str) -> tuple[Any, list[str]]:
    document = document if document is not None else {}
    document["models"], conflicts = merge_mapping(document.get("models"), entries, marked(marker), "[models]")
    return document, conflicts


@hookimpl
def remove(document: Any, keys: list[str] | None, marker: str) -> tuple[Any, list[str]]:
    if "models" not in document:
        return document, []
    document["models"], removed = remove_mapping(document["models"], keys, marked(marker), "[models]")
    return document, removed


@hookimpl
def instructions(models: list[ExportModel], options: ExportOptions, path: str | None) -> list[str]:
    if not models:
        return []
    return [f"Run: oauth-hub exec {options.provider} -- acme --model {models[0].key}", *serve_note(models, options)]
