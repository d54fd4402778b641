"""Finding and loading exporters: entry points, in-process registration, validation.

Exporters are found through the entry-point group ``oauth_hub.exporters`` (name = what
people pass to ``--to``, value = a module with ``@hookimpl`` functions), so built-in
and third-party exporters take the same path. Names are listed from metadata alone;
an exporter's module is imported only when it is used.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pluggy

from ..errors import OAuthHubError
from .formats import _FORMATS
from .hookspecs import APIS, PROJECT, ExporterSpec

GROUP = "oauth_hub.exporters"

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class ExporterNotFound(OAuthHubError):
    """No installed exporter has that name."""


class ExporterLoadError(OAuthHubError):
    """An exporter is installed but could not be imported, or its hooks are wrong."""
_REQUIRED_HOOKS = ("exporter_info", "render", "merge", "remove")


_registered: dict[str, Any] = {}


def register_exporter(name: str, plugin: Any) -> None:
    """Make ``plugin`` (a module or object with exporter hookimpls) available as ``--to name``."""
    _registered[name] = plugin


def unregister_exporter(name: str) -> None:
    _registered.pop(name, None)


def _entry_points() -> dict[str, Any]:
    """Exporter entry points by name; as for providers, a built-in name wins over a third party's."""
    from ..entrypoints import entry_points
    from ..plugins import _is_builtin

    found: dict[str, Any] = {}
    for ep in entry_points(group=GROUP):
        if ep.name not in found or (_is_builtin(ep) and not _is_builtin(found[ep.name])):
            found[ep.name] = ep
    return found


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

    def call(self, hook: str, *, required: bool = True, **kwargs: Any) -> Any:
        caller = getattr(self.pm.hook, hook)
        if not caller.get_hookimpls():
            if required:
                raise OAuthHubError(f"Exporter {self.name!r} does not implement the {hook!r} hook.")
            return None
        return caller(**kwargs)


def load_exporter(name: str) -> Exporter:
    """Import exporter ``name``, check its hooks, and read its description."""
    if not _NAME.match(name or ""):
        raise ExporterNotFound(f"{name!r} is not a valid exporter name. Known exporters: {_known()}.")
    if name in _registered:
        plugin, where = _registered[name], repr(_registered[name])
    else:
        eps = _entry_points()
        if name not in eps:
            raise ExporterNotFound(f"Unknown exporter {name!r}. Known exporters: {_known()}.")
        where = eps[name].value
        try:
            plugin = eps[name].load()
        except Exception as exc:  # a broken third-party exporter must not take the CLI down
            raise ExporterLoadError(
                f"Exporter {name!r} ({where}) failed to import: {type(exc).__name__}: {exc}") from None
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(ExporterSpec)
    try:
        pm.register(plugin, name=name)
        pm.check_pending()
    except Exception as exc:
        raise ExporterLoadError(f"Exporter {name!r} ({where}) is invalid: {exc}") from None
    missing = [hook for hook in _REQUIRED_HOOKS if not getattr(pm.hook, hook).get_hookimpls()]
    if missing:
        raise ExporterLoadError(f"Exporter {name!r} ({where}) does not implement {', '.join(missing)}.")
    info = pm.hook.exporter_info() or {}
    if info.get("format") not in _FORMATS or not set(info.get("apis") or ()) <= set(APIS):
        raise ExporterLoadError(f"Exporter {name!r} ({where}) describes itself wrongly: format must be one of "
                                f"{', '.join(_FORMATS)} and apis a subset of {', '.join(APIS)}.")
    return Exporter(name, pm, dict(info))


def _known() -> str:
    return ", ".join(exporter_names()) or "none installed"


def inspect_exporters() -> list[dict[str, Any]]:
    """Every exporter with its title, format and APIs, or the reason it failed to load."""
    rows = []
    for name in exporter_names():
        row: dict[str, Any] = {"name": name, "title": None, "format": None, "apis": [], "description": None,
                               "default_path": None, "error": None}
        try:
            tool = load_exporter(name)
            row.update(title=tool.title, format=tool.format, apis=list(tool.apis),
                       description=tool.info.get("description"),
                       default_path=tool.call("default_path", required=False, environ=dict(os.environ),
                                              home=Path.home()))
        except OAuthHubError as exc:
            row["error"] = str(exc)
        rows.append(row)
    return rows

