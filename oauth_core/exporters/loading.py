"""Finding and loading exporters: entry points, in-process registration, validation.

Exporters are found through the entry-point group ``oauth_hub.exporters`` (name = what
people pass to ``--to``, value = a module with ``@hookimpl`` functions), so built-in
and third-party exporters take the same path. Names are listed from metadata alone;
an exporter's module is imported only when it is used.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import OAuthHubError
from .formats import BUILT_IN_FORMATS, KEEPS_COMMENTS, dump_document, not_valid, parse_document
from .hookspecs import APIS, PROJECT, ExporterSpec

GROUP = "oauth_hub.exporters"


class ExporterNotFound(OAuthHubError):
    """No installed exporter has that name."""


class ExporterLoadError(OAuthHubError):
    """An exporter is installed but could not be imported, or its hooks are wrong."""


_REQUIRED_HOOKS = ("exporter_info", "render", "merge", "remove")
_FORMAT_HOOKS = ("parse", "serialize")

_registered: dict[str, Any] = {}


def register_exporter(name: str, plugin: Any) -> None:
    """Make ``plugin`` (a module or object with exporter hookimpls) available as ``--to name``."""
    _registered[name] = plugin


def unregister_exporter(name: str) -> None:
    _registered.pop(name, None)


def _discover() -> Any:
    """The exporter entry points, chosen by the rule every plugin follows (:mod:`oauth_core.discovery`)."""
    from ..discovery import discover

    return discover(GROUP, "exporter")


def _entry_points() -> dict[str, Any]:
    return _discover().chosen


def exporter_names() -> list[str]:
    """Every installed exporter name, from metadata only (nothing is imported)."""
    return sorted(set(_entry_points()) | set(_registered))


class Exporter:
    """One loaded exporter: its plugin manager and what ``exporter_info`` said."""

    def __init__(self, name: str, pm: Any, info: dict[str, Any]) -> None:
        self.name = name
        self.pm = pm
        self.info = info

    def __repr__(self) -> str:
        return f"Exporter({self.name!r})"

    @property
    def title(self) -> str:
        return str(self.info.get("title") or self.name)

    @property
    def format(self) -> str:
        return str(self.info["format"])

    @property
    def apis(self) -> tuple[str, ...]:
        return tuple(self.info.get("apis") or ())

    @property
    def provides_format(self) -> bool:
        """Whether the exporter parses and writes its files itself (the ``parse`` and ``serialize`` hooks)."""
        return bool(self.pm.hook.parse.get_hookimpls())

    @property
    def keeps_comments(self) -> bool:
        """Whether rewriting the tool's file keeps its comments (unknown for a format of the exporter's own)."""
        return self.provides_format or KEEPS_COMMENTS.get(self.format, False)

    def parse(self, text: str, path: Path | None = None) -> Any:
        """The tool's file parsed: by the exporter's ``parse`` hook, else by the built-in format."""
        if not self.provides_format:
            return parse_document(text, self.format, path)
        if not text.strip():
            return None
        try:
            return self.pm.hook.parse(text=text)
        except (ValueError, RecursionError):  # the file is not valid in that format
            raise not_valid(str(path) if path is not None else "the file", self.format) from None

    def dump(self, document: Any) -> str:
        """The file's text for ``document``: by the exporter's ``serialize`` hook, else the built-in format."""
        if not self.provides_format:
            return dump_document(document, self.format)
        if document is None:
            return ""
        text = self.pm.hook.serialize(document=document)
        if not isinstance(text, str):
            raise OAuthHubError(f"Exporter {self.name!r}: serialize returned {type(text).__name__}, not text.")
        return text

    def call(self, hook: str, *, required: bool = True, **kwargs: Any) -> Any:
        caller = getattr(self.pm.hook, hook)
        if not caller.get_hookimpls():
            if required:
                raise OAuthHubError(f"Exporter {self.name!r} does not implement the {hook!r} hook.")
            return None
        return caller(**kwargs)


def _plugin(name: str) -> tuple[Any, str]:
    """The exporter's module (or object) and where it came from."""
    from ..discovery import NAME_PATTERN, NAME_RULE, not_loaded_message

    if not NAME_PATTERN.match(name or ""):
        raise ExporterNotFound(f"{name!r} is not a valid exporter name ({NAME_RULE}). Known exporters: {_known()}.")
    if name in _registered:
        return _registered[name], repr(_registered[name])
    found = _discover()
    if name in found.excluded:
        raise ExporterNotFound(not_loaded_message("exporter", name))
    if name not in found.chosen:
        raise ExporterNotFound(f"Unknown exporter {name!r}. Known exporters: {_known()}.")
    ep = found.chosen[name]
    try:
        return ep.load(), ep.value
    except Exception as exc:  # a broken third-party exporter must not take the CLI down
        raise ExporterLoadError(
            f"Exporter {name!r} ({ep.value}) failed to import: {type(exc).__name__}: {exc}") from None


def load_exporter(name: str) -> Exporter:
    """Import exporter ``name``, check its hooks, and read its description."""
    import pluggy

    from .. import trace
    from ..hookcheck import hook_names, unmarked_hooks

    plugin, where = _plugin(name)
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(ExporterSpec)
    try:
        pm.register(plugin, name=name)
        pm.check_pending()
    except Exception as exc:
        raise ExporterLoadError(f"Exporter {name!r} ({where}) is invalid: {exc}") from None
    missing = [hook for hook in _REQUIRED_HOOKS if not getattr(pm.hook, hook).get_hookimpls()]
    if missing:
        unmarked = unmarked_hooks(plugin, hook_names(pm), f"{PROJECT}_impl")
        hint = (f" It has {', '.join(unmarked)}, but not marked as hooks: decorate each with @hookimpl "
                "(`from oauth_core.exporters import hookimpl`, the same marker as `oauth_core.hookimpl`).") \
            if unmarked else ""
        raise ExporterLoadError(f"Exporter {name!r} ({where}) does not implement {', '.join(missing)}.{hint}")
    own_format = [hook for hook in _FORMAT_HOOKS if getattr(pm.hook, hook).get_hookimpls()]
    if len(own_format) == 1:
        raise ExporterLoadError(f"Exporter {name!r} ({where}) implements {own_format[0]} without "
                                f"{({'parse', 'serialize'} - set(own_format)).pop()}: a format needs both.")
    trace.watch(pm, "exporter", name)
    info = pm.hook.exporter_info() or {}
    fmt = info.get("format")
    if not isinstance(fmt, str) or not fmt or (fmt not in BUILT_IN_FORMATS and not own_format):
        raise ExporterLoadError(
            f"Exporter {name!r} ({where}) declares format {fmt!r}: use one of the built-in formats "
            f"({', '.join(BUILT_IN_FORMATS)}), or implement the parse and serialize hooks for another.")
    if not set(info.get("apis") or ()) <= set(APIS):
        raise ExporterLoadError(f"Exporter {name!r} ({where}) describes itself wrongly: apis must be a subset of "
                                f"{', '.join(APIS)}.")
    return Exporter(name, pm, dict(info))


def _known() -> str:
    return ", ".join(exporter_names()) or "none installed"


def inspect_exporters() -> list[dict[str, Any]]:
    """Every exporter with its title, format and APIs, or the reason it failed to load.

    Exporters another package registers under a name already taken are listed with a
    ``note`` ("not used: …"), not an error: nothing is broken.
    """
    rows = []

    def row(name: str, **values: Any) -> dict[str, Any]:
        base: dict[str, Any] = {"name": name, "title": None, "format": None, "apis": [], "description": None,
                                "default_path": None, "error": None, "note": None, "hooks": []}
        base.update(values)
        return base

    from ..hookcheck import implemented_hooks

    found = _discover()
    for name in exporter_names():
        current = row(name)
        try:
            tool = load_exporter(name)
            current.update(title=tool.title, format=tool.format, apis=list(tool.apis),
                           description=tool.info.get("description"), hooks=implemented_hooks(tool.pm),
                           default_path=tool.call("default_path", required=False, environ=dict(os.environ),
                                                  home=Path.home()))
        except OAuthHubError as exc:
            current["error"] = str(exc)
        rows.append(current)
    for name, ep, why in found.invalid:
        rows.append(row(name, error=why, description=ep.value))
    for name, ep, why in found.shadowed:
        rows.append(row(name, note=f"not used: {why}", description=f"{ep.value} ({ep.dist_name})"))
    return rows

