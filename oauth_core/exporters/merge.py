"""Helpers for exporter authors: merging our entries into a tool's document and taking them out.

They cover the two common file shapes (a mapping of entries, a list of entries) and
the small chores of ``render`` and ``instructions``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..errors import CorruptFileError
from .hookspecs import MARKER_KEY, ExportModel, ExportOptions


def marked(marker: str, key: str = MARKER_KEY) -> Callable[[Any], bool]:
    """A test for 'this entry is ours': a dict whose ``key`` is ``marker``."""
    return lambda entry: isinstance(entry, dict) and entry.get(key) == marker


def _mapping(document: Any, what: str) -> dict[str, Any]:
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise CorruptFileError(f"The {what} does not hold a mapping of entries; it was left untouched.")
    return document


def merge_mapping(document: Any, entries: Mapping[str, Any], is_ours: Callable[[Any], bool],
                  what: str = "file") -> tuple[dict[str, Any], list[str]]:
    """Merge into a ``{name: entry}`` mapping: drop ours, keep the rest, add new entries after them."""
    current = _mapping(document, what)
    merged = {k: v for k, v in current.items() if not is_ours(v)}
    conflicts = [k for k in entries if k in merged]
    merged.update({k: v for k, v in entries.items() if k not in merged})
    return merged, conflicts


def remove_mapping(document: Any, keys: Iterable[str] | None, is_ours: Callable[[Any], bool],
                   what: str = "file") -> tuple[dict[str, Any], list[str]]:
    """Remove our entries (named in ``keys``; ``None``: all of ours) from a mapping."""
    current = _mapping(document, what)
    wanted = None if keys is None else set(keys)
    removed = [k for k, v in current.items() if is_ours(v) and (wanted is None or k in wanted)]
    return {k: v for k, v in current.items() if k not in removed}, removed


def merge_list(items: Any, entries: Mapping[str, Any], name_of: Callable[[Any], Any],
               is_ours: Callable[[Any], bool], what: str = "list") -> tuple[list[Any], list[str]]:
    """Merge into a list of entries named by ``name_of``: drop ours, keep the rest, append new ones."""
    if items is None:
        items = []
    if not isinstance(items, list):
        raise CorruptFileError(f"The {what} is not a list of entries; it was left untouched.")
    kept = [item for item in items if not is_ours(item)]
    taken = {name_of(item) for item in kept}
    conflicts = [k for k in entries if k in taken]
    return kept + [v for k, v in entries.items() if k not in taken], conflicts


def remove_list(items: Any, keys: Iterable[str] | None, name_of: Callable[[Any], Any],
                is_ours: Callable[[Any], bool], what: str = "list") -> tuple[list[Any], list[str]]:
    """Remove our entries (named in ``keys``; ``None``: all of ours) from a list."""
    if items is None:
        return [], []
    if not isinstance(items, list):
        raise CorruptFileError(f"The {what} is not a list of entries; it was left untouched.")
    wanted = None if keys is None else set(keys)
    removed = [name_of(i) for i in items if is_ours(i) and (wanted is None or name_of(i) in wanted)]
    return [i for i in items if not (is_ours(i) and (wanted is None or name_of(i) in wanted))], removed


def secret_or(model: ExportModel, reference: str) -> str:
    """The secret itself when the person asked for it in clear, else the tool-syntax ``reference``."""
    return model.secret if model.secret else reference


def serve_note(models: list[ExportModel], options: ExportOptions) -> list[str]:
    """The lines every exporter shows when some entries go through ``oauth-hub serve``."""
    if not any(m.via_serve for m in models):
        return []
    port = options.serve_url.rsplit(":", 1)[1]
    flag = "" if port == "4141" else f" --port {port}"
    lines = [f"These entries go through `oauth-hub serve` at {options.serve_url}/{options.provider}: "
             f"keep `oauth-hub serve --stable-key{flag}` running."]
    if not options.include_secrets:
        lines.append(f"Give tools its key: export {options.serve_key_env}=\"$(oauth-hub serve --print-key)\"")
    return lines
