"""aider: ``.aider.model.metadata.json`` plus the environment aider needs.

aider talks to models through LiteLLM, so a model is named the LiteLLM way
(``--model openai/<id>``, ``openai/responses/<id>`` for a Responses-only model,
``anthropic/<id>``) and its endpoint and key come from the environment:
``OPENAI_API_BASE`` / ``OPENAI_API_KEY``, ``ANTHROPIC_API_BASE`` / ``ANTHROPIC_API_KEY``
(or the matching ``--openai-api-base`` … options). Nothing secret goes into a file; the
instructions print the exact command line.

What the file adds is what aider cannot guess for a model it does not know: the
context window, keyed by that model name, in LiteLLM's model-cost format
(``max_input_tokens``, ``litellm_provider``, ``mode``). aider reads it from the home
directory, the git root or the current directory; the default is the home directory.
Our entries carry ``oauth_source`` (LiteLLM keeps unknown keys of a registered model).
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
)

FILE_NAME = ".aider.model.metadata.json"
_PREFIX = {API_CHAT: "openai/", API_RESPONSES: "openai/responses/", API_MESSAGES: "anthropic/"}
_ENV = {API_CHAT: "OPENAI", API_RESPONSES: "OPENAI", API_MESSAGES: "ANTHROPIC"}


def model_name(model: ExportModel) -> str:
    """The name aider (LiteLLM) is given: ``<route>/<model>`` (``openai/chatgpt/gpt-5`` through serve)."""
    return _PREFIX[model.api] + model.request_model


@hookimpl
def exporter_info() -> dict[str, Any]:
    return {
        "title": "aider",
        "description": f"{FILE_NAME} (context windows) plus the environment to run aider with",
        "format": "json",
        "apis": [API_CHAT, API_RESPONSES, API_MESSAGES],
        # Through serve, Chat Completions rather than LiteLLM's Responses bridge: aider's
        # LiteLLM (1.81) turns every error on that bridge into an unrelated TypeError.
        "serve_apis": [API_CHAT, API_MESSAGES],
    }


@hookimpl
def default_path(environ: Mapping[str, str], home: Path) -> str:
    return str(home / FILE_NAME)


@hookimpl
def render(models: list[ExportModel], options: ExportOptions) -> dict[str, Any]:
    entries: dict[str, Any] = {}
    for m in models:
        entry: dict[str, Any] = {}
        if m.context_length:
            entry["max_input_tokens"] = m.context_length
        entry["litellm_provider"] = _PREFIX[m.api].split("/", 1)[0]
        entry["mode"] = "responses" if m.api == API_RESPONSES else "chat"
        entry["oauth_source"] = m.marker
        entries[model_name(m)] = entry
    return entries


@hookimpl
def merge(document: Any, entries: dict[str, Any], marker: str) -> tuple[Any, list[str]]:
    return merge_mapping(document, entries, marked(marker), FILE_NAME)


@hookimpl
def remove(document: Any, keys: list[str] | None, marker: str) -> tuple[Any, list[str]]:
    return remove_mapping(document, keys, marked(marker), FILE_NAME)


@hookimpl
def instructions(models: list[ExportModel], options: ExportOptions, path: str | None) -> list[str]:
    lines = []
    seen = set()
    for m in models:
        prefix = _ENV[m.api]
        if (prefix, m.base_url) in seen:
            continue
        seen.add((prefix, m.base_url))
        # Never the secret itself on the terminal, even with --include-secrets: aider's file holds none.
        key = "$(oauth-hub serve --print-key)" if m.via_serve else f"$(oauth-hub token {options.provider} --api-key)"
        # The weak model too: aider's default one (gpt-4o-mini, a Haiku…) may not be on the plan.
        lines.append(f'Run aider: {prefix}_API_BASE={m.base_url} {prefix}_API_KEY="{key}" '
                     f"aider --model {model_name(m)} --weak-model {model_name(m)}")
    if options.include_secrets:
        lines.append("--include-secrets changes nothing for aider: its file holds no secret, the environment does.")
    if any(m.via_serve for m in models):
        port = options.serve_url.rsplit(":", 1)[1]
        lines.append(f"Keep `oauth-hub serve --stable-key{'' if port == '4141' else f' --port {port}'}` running "
                     "for the entries that go through it.")
    return lines
