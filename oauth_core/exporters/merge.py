"""Helpers for exporter authors: merging our entries into a tool's document and taking them out.

They cover the two common file shapes (a mapping of entries, a list of entries) and
the small chores of ``render`` and ``instructions``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, MutableMapping, MutableSequence
from typing import Any

from ..errors import CorruptFileError
from .hookspecs import MARKER_KEY, ExportModel, ExportOptions


def marked(marker: str, key: str = MARKER_KEY) -> Callable[[Any], bool]:
    """A test for 'this entry is ours': a dict whose ``key`` is ``marker``."""
    return lambda entry: isinstance(entry, Mapping) and entry.get(key) == marker


def _mapping(document: Any, what: str) -> MutableMapping[str, Any]:
    if document is None:
        return {}
    if not isinstance(document, MutableMapping):
        raise CorruptFileError(f"The {what} does not hold a mapping of entries; it was left untouched.")
    return document


def _list(items: Any, what: str) -> MutableSequence[Any]:
    if items is None:
        return []
    if not isinstance(items, MutableSequence) or isinstance(items, (str, bytes)):
        raise CorruptFileError(f"The {what} is not a list of entries; it was left untouched.")
    return items


# The helpers change the parsed document in place rather than building a new one: a
# TOML document (tomlkit) keeps the comments and layout of everything we do not touch
# only that way. For JSON and YAML the result is the same either way.


def merge_mapping(document: Any, entries: Mapping[str, Any], is_ours: Callable[[Any], bool],
                  what: str = "file") -> tuple[MutableMapping[str, Any], list[str]]:
    """Merge into a ``{name: entry}`` mapping: drop ours, keep the rest, add new entries after them."""
    current = _mapping(document, what)
    for key in [k for k, v in current.items() if is_ours(v)]:
        del current[key]
    conflicts = [k for k in entries if k in current]
    for key, value in entries.items():
        if key not in current:
            current[key] = value
    return current, conflicts


def remove_mapping(document: Any, keys: Iterable[str] | None, is_ours: Callable[[Any], bool],
                   what: str = "file") -> tuple[MutableMapping[str, Any], list[str]]:
    """Remove our entries (named in ``keys``; ``None``: all of ours) from a mapping."""
    current = _mapping(document, what)
    wanted = None if keys is None else set(keys)
    removed = [k for k, v in current.items() if is_ours(v) and (wanted is None or k in wanted)]
    for key in removed:
        del current[key]
    return current, removed


def merge_list(items: Any, entries: Mapping[str, Any], name_of: Callable[[Any], Any],
               is_ours: Callable[[Any], bool], what: str = "list") -> tuple[MutableSequence[Any], list[str]]:
    """Merge into a list of entries named by ``name_of``: drop ours, keep the rest, append new ones."""
    current = _list(items, what)
    for index in reversed(range(len(current))):
        if is_ours(current[index]):
            del current[index]
    taken = {name_of(item) for item in current}
    conflicts = [k for k in entries if k in taken]
    for key, value in entries.items():
        if key not in taken:
            current.append(value)
    return current, conflicts


def remove_list(items: Any, keys: Iterable[str] | None, name_of: Callable[[Any], Any],
                is_ours: Callable[[Any], bool], what: str = "list") -> tuple[MutableSequence[Any], list[str]]:
    """Remove our entries (named in ``keys``; ``None``: all of ours) from a list."""
    if items is None:
        return [], []
    current = _list(items, what)
    wanted = None if keys is None else set(keys)
    removed = []
    for index in reversed(range(len(current))):
        item = current[index]
        if is_ours(item) and (wanted is None or name_of(item) in wanted):
            removed.append(name_of(item))
            del current[index]
    return current, removed[::-1]


def secret_or(model: ExportModel, reference: str) -> str:
    """The secret itself when the person asked for it in clear, else the tool-syntax ``reference``."""
    return model.secret if model.secret else reference


def serve_note(models: list[ExportModel], options: ExportOptions) -> list[str]:
    """The lines every exporter shows when some entries go through ``oauth-hub serve``."""
    if not any(m.via_serve for m in models):
        return []
    port = options.serve_url.rsplit(":", 1)[1]
    flag = "" if port == "4141" else f" --port {port}"
    lines = [f"These entries go through `oauth-hub serve` at {options.serve_url}/v1: "
             f"keep `oauth-hub serve --stable-key{flag}` running."]
    if not options.include_secrets:
        lines.append(f"Give tools its key: export {options.serve_key_env}=\"$(oauth-hub serve --print-key)\"")
    return lines
