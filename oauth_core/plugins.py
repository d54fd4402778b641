"""Finding and loading provider plugins.

Providers come from three places, resolved in this order:

1. The entry-point group ``oauth_hub.providers`` (name = the provider name, value =
   the module holding its hook implementations). The built-in providers are registered
   the same way in our own ``pyproject.toml``, so built-in and third-party providers
   take one path. When a third-party package registers a name a built-in already has,
   **the built-in wins** and the other is reported by ``oauth-hub providers``.
2. ``[providers.NAME]`` tables in ``config.toml`` with a ``type`` key: a provider that
   needs no code, served by the module registered under that type in the entry-point
   group ``oauth_hub.provider_types`` (built in: ``oidc``).
3. :func:`register_provider`, for tests and for host tools that ship a provider without
   packaging it.

``OAUTH_HUB_LOAD_PLUGINS`` limits the third-party entry points, like llm's
``LLM_LOAD_PLUGINS``: a comma-separated list of provider names to load; set but empty
means built-ins only.

Each provider gets a :class:`pluggy.PluginManager` of its own holding just its module.
That keeps every hook ``firstresult`` and spares providers from checking "is this call
for me?". Names are listed from metadata and config without importing anything; a
provider's module is imported only when that provider is used. A plugin that fails to
import, or has a misspelled hook implementation (caught by ``check_pending()``), raises
:class:`ProviderLoadError` for that provider alone; :func:`inspect_providers` reports it
next to the healthy ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .entrypoints import entry_points, normalize
from .errors import ProviderLoadError, ProviderNotFound

GROUP = "oauth_hub.providers"
TYPES_GROUP = "oauth_hub.provider_types"
LOAD_ENV = "OAUTH_HUB_LOAD_PLUGINS"
BUILTIN_DISTRIBUTION = "oauth-hub"

# Providers registered from Python. They shadow entry points of the same name.
_registered: dict[str, Any] = {}


def register_provider(name: str, plugin: Any) -> None:
    """Make ``plugin`` (a module or object with hookimpls) available as provider ``name``."""
    _registered[name] = plugin


def unregister_provider(name: str) -> None:
    _registered.pop(name, None)


def _dist_name(ep: Any) -> str | None:
    return ep.dist_name


def _is_builtin(ep: Any) -> bool:
    return normalize(ep.folder_name) == BUILTIN_DISTRIBUTION


@dataclass
class _Discovery:
    chosen: dict[str, Any]  # name -> entry point that will be used
    shadowed: list[tuple[str, Any, str]]  # (name, entry point, why it is not used)


def _discover(group: str = GROUP) -> _Discovery:
    allowed = None
    raw = os.environ.get(LOAD_ENV)
    if raw is not None:
        allowed = {item.strip() for item in raw.split(",") if item.strip()}
    chosen: dict[str, Any] = {}
    shadowed: list[tuple[str, Any, str]] = []
    for ep in entry_points(group=group):
        if allowed is not None and not _is_builtin(ep) and ep.name not in allowed:
            continue  # not asked for; not listed either
        current = chosen.get(ep.name)
        if current is None:
            chosen[ep.name] = ep
        elif _is_builtin(ep) and not _is_builtin(current):
            chosen[ep.name] = ep
            shadowed.append((ep.name, current, "the built-in provider of that name wins"))
        else:
            why = "the built-in provider of that name wins" if _is_builtin(current) else (
                f"{_dist_name(current) or current.value} registered that name first")
            shadowed.append((ep.name, ep, why))
    return _Discovery(chosen, shadowed)


def _entry_points() -> dict[str, Any]:
    return _discover().chosen


def _configured(home: str | os.PathLike[str] | None) -> dict[str, dict[str, Any]]:
    """``[providers.NAME]`` tables of config.toml that declare a ``type``."""
    from . import config
    from .store import Store

    path = Store(home).config_path()
    if not path.exists():
        return {}
    tables = config.load(path).get("providers", {})
    for name, table in tables.items():
        if "type" in table and not isinstance(table["type"], str):
            raise ProviderLoadError(f"{path}: [providers.{name}] type must be a string such as \"oidc\".")
    return {name: table for name, table in tables.items() if "type" in table}


def provider_names(home: str | os.PathLike[str] | None = None) -> list[str]:
    """Every known provider name, from metadata and config (nothing is imported)."""
    names = set(_entry_points()) | set(_registered)
    try:
        names |= set(_configured(home))
    except Exception:  # noqa: S110 - a broken config.toml is reported where it is used
        pass
    return sorted(names)


@dataclass
class ProviderInfo:
    """One row of ``oauth-hub providers``."""

    name: str
    module: str
    distribution: str | None
    version: str | None
    error: str | None = None
    description: str | None = None
    source: str = "entry point"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "module": self.module,
            "distribution": self.distribution,
            "version": self.version,
            "source": self.source,
            "loaded": self.error is None,
            "error": self.error,
            "description": self.description,
        }


def _import_plugin(name: str, home: str | os.PathLike[str] | None = None) -> tuple[Any, str]:
    """Return (plugin object, where it came from)."""
    if name in _registered:
        return _registered[name], repr(_registered[name])
    eps = _entry_points()
    if name in eps:
        ep = eps[name]
        if name in _configured(home):
            raise ProviderLoadError(
                f"config.toml declares a provider {name!r}, but an installed provider has that name. "
                "Rename the [providers.…] table."
            )
        return _load_entry_point(name, ep), ep.value
    configured = _configured(home)
    if name in configured:
        kind = configured[name]["type"]
        types = _discover(TYPES_GROUP).chosen
        if kind not in types:
            known = ", ".join(sorted(types)) or "none"
            raise ProviderLoadError(f"Provider {name!r} in config.toml has unknown type {kind!r} (known: {known}).")
        return _load_entry_point(name, types[kind]), f"{types[kind].value} (type {kind!r} from config.toml)"
    known = ", ".join(provider_names(home)) or "none installed"
    raise ProviderNotFound(f"Unknown provider {name!r}. Known providers: {known}.")


def _load_entry_point(name: str, ep: Any) -> Any:
    try:
        return ep.load()
    except Exception as exc:  # a broken third-party plugin must not take the CLI down
        raise ProviderLoadError(
            f"Provider {name!r} ({ep.value}) failed to import: {type(exc).__name__}: {exc}"
        ) from None


def plugin_manager(name: str, home: str | os.PathLike[str] | None = None) -> Any:
    """A plugin manager holding provider ``name``'s hook implementations, validated."""
    import pluggy

    from . import hookspecs

    plugin, where = _import_plugin(name, home)
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    try:
        pm.register(plugin, name=name)
        pm.check_pending()
    except Exception as exc:  # pluggy.PluginValidationError and friends
        raise ProviderLoadError(f"Provider {name!r} ({where}) is invalid: {exc}") from None
    return pm


def inspect_providers(home: str | os.PathLike[str] | None = None) -> list[ProviderInfo]:
    """Load every provider and report each one, including failures and shadowed names."""
    from .store import Store

    rows: list[ProviderInfo] = []
    found = _discover()
    try:
        configured = _configured(home)
    except Exception as exc:
        configured = {}
        rows.append(ProviderInfo(name="(config.toml)", module=str(Store(home).config_path()), distribution=None,
                                 version=None, error=str(exc), source="config"))
    for name in provider_names(home):
        ep = found.chosen.get(name) if name not in _registered else None
        if name in _registered:
            module, source = getattr(_registered[name], "__name__", repr(_registered[name])), "registered"
        elif ep is not None:
            module, source = ep.value, "built-in" if _is_builtin(ep) else "entry point"
        else:
            module, source = f"type {configured.get(name, {}).get('type')!r}", "config"
        info = ProviderInfo(name=name, module=module, distribution=ep.dist_name if ep else None,
                            version=ep.version if ep else None, source=source)
        try:
            pm = plugin_manager(name, home)
            defaults = pm.hook.provider_defaults() or {}
            info.description = defaults.get("description")
        except Exception as exc:
            info.error = str(exc)
        rows.append(info)
    for name, ep, why in found.shadowed:
        rows.append(ProviderInfo(name=name, module=ep.value, distribution=ep.dist_name, version=ep.version,
                                 source="entry point", error=f"not used: {why}"))
    return rows

