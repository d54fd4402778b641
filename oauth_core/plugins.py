"""Finding and loading provider plugins.

Providers are found through the entry-point group ``oauth_hub.providers`` (name = the
provider name, value = the module holding its hook implementations). The built-in
providers are registered the same way in our own ``pyproject.toml``, so built-in and
third-party providers take one path.

Each provider gets a :class:`pluggy.PluginManager` of its own holding just its module.
That keeps every hook ``firstresult`` and spares providers from checking "is this call
for me?". Names are listed from the entry-point metadata without importing anything;
a provider's module is imported only when that provider is used.

A plugin that fails to import, or has a misspelled hook implementation (caught by
``check_pending()``), raises :class:`ProviderLoadError` for that provider alone;
:func:`inspect_providers` reports it next to the healthy ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import ProviderLoadError, ProviderNotFound

GROUP = "oauth_hub.providers"

# Providers registered from Python (tests, or a host tool shipping its own provider
# without packaging it). They shadow entry points of the same name.
_registered: dict[str, Any] = {}


def register_provider(name: str, plugin: Any) -> None:
    """Make ``plugin`` (a module or object with hookimpls) available as provider ``name``."""
    _registered[name] = plugin


def unregister_provider(name: str) -> None:
    _registered.pop(name, None)


def _entry_points() -> dict[str, Any]:
    from importlib.metadata import entry_points

    found: dict[str, Any] = {}
    for ep in entry_points(group=GROUP):
        found.setdefault(ep.name, ep)
    return found


def provider_names() -> list[str]:
    """Every known provider name, read from metadata only (nothing is imported)."""
    return sorted(set(_entry_points()) | set(_registered))


@dataclass
class ProviderInfo:
    """One row of ``oauth-hub providers``."""

    name: str
    module: str
    distribution: str | None
    version: str | None
    error: str | None = None
    description: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "module": self.module,
            "distribution": self.distribution,
            "version": self.version,
            "loaded": self.error is None,
            "error": self.error,
            "description": self.description,
        }


def _import_plugin(name: str) -> tuple[Any, Any]:
    """Return (plugin object, entry point or None)."""
    if name in _registered:
        return _registered[name], None
    eps = _entry_points()
    if name not in eps:
        known = ", ".join(provider_names()) or "none installed"
        raise ProviderNotFound(f"Unknown provider {name!r}. Known providers: {known}.")
    ep = eps[name]
    try:
        return ep.load(), ep
    except Exception as exc:  # a broken third-party plugin must not take the CLI down
        raise ProviderLoadError(
            f"Provider {name!r} ({ep.value}) failed to import: {type(exc).__name__}: {exc}"
        ) from None


def plugin_manager(name: str) -> Any:
    """A plugin manager holding provider ``name``'s hook implementations, validated."""
    import pluggy

    from . import hookspecs

    plugin, ep = _import_plugin(name)
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    try:
        pm.register(plugin, name=name)
        pm.check_pending()
    except Exception as exc:  # pluggy.PluginValidationError and friends
        where = ep.value if ep is not None else repr(plugin)
        raise ProviderLoadError(f"Provider {name!r} ({where}) is invalid: {exc}") from None
    return pm


def inspect_providers() -> list[ProviderInfo]:
    """Load every provider and report each one, including those that fail."""
    rows: list[ProviderInfo] = []
    eps = _entry_points()
    for name in provider_names():
        ep = eps.get(name) if name not in _registered else None
        dist = getattr(ep, "dist", None) if ep is not None else None
        info = ProviderInfo(
            name=name,
            module=ep.value if ep is not None else getattr(_registered[name], "__name__", repr(_registered[name])),
            distribution=getattr(dist, "name", None),
            version=getattr(dist, "version", None),
        )
        try:
            pm = plugin_manager(name)
            defaults = pm.hook.provider_defaults() or {}
            info.description = defaults.get("description")
        except Exception as exc:
            info.error = str(exc)
        rows.append(info)
    return rows

