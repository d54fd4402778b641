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

Which entry points are used (names checked, built-ins first, ``OAUTH_HUB_LOAD_PLUGINS``
taking entry-point or distribution names) is decided by :mod:`oauth_core.discovery`,
the one rule every command and both plugin kinds follow.

Each provider gets a :class:`pluggy.PluginManager` of its own holding just its module.
That keeps every hook ``firstresult`` and spares providers from checking "is this call
for me?". Names are listed from metadata and config without importing anything; a
provider's module is imported only when that provider is used. A plugin that fails to
import, or has a misspelled hook implementation (caught by ``check_pending()``), raises
:class:`ProviderLoadError` for that provider alone; :func:`oauth_core.inventory.inspect_providers` reports it
next to the healthy ones.
"""

from __future__ import annotations

import os
from typing import Any

from . import discovery
from .discovery import BUILTIN_DISTRIBUTION, LOAD_ENV  # noqa: F401 - re-exported, the names plugins used before
from .errors import ProviderLoadError, ProviderNotFound

GROUP = "oauth_hub.providers"
TYPES_GROUP = "oauth_hub.provider_types"

# Providers registered from Python. They shadow entry points of the same name.
_registered: dict[str, Any] = {}


def register_provider(name: str, plugin: Any) -> None:
    """Make ``plugin`` (a module or object with hookimpls) available as provider ``name``."""
    _registered[name] = plugin


def unregister_provider(name: str) -> None:
    _registered.pop(name, None)


_is_builtin = discovery.is_builtin


def _discover(group: str = GROUP) -> discovery.Discovery:
    return discovery.discover(group, "provider" if group == GROUP else "provider type")


def _entry_points() -> dict[str, Any]:
    return _discover().chosen


def not_loaded(name: str) -> str | None:
    """Why provider ``name`` is installed but left out by ``OAUTH_HUB_LOAD_PLUGINS``; ``None`` otherwise."""
    if name in _registered:
        return None
    if name in _discover().excluded:
        return discovery.not_loaded_message("provider", name)
    return None


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


def _import_plugin(name: str, home: str | os.PathLike[str] | None = None) -> tuple[Any, str]:
    """Return (plugin object, where it came from)."""
    if name in _registered:
        return _registered[name], repr(_registered[name])
    found = _discover()
    eps = found.chosen
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
        types = _discover(TYPES_GROUP)
        if kind in types.excluded:
            raise ProviderLoadError(f"Provider {name!r} in config.toml has type {kind!r}: "
                                    + discovery.not_loaded_message("provider type", kind))
        if kind not in types.chosen:
            known = ", ".join(sorted(types.chosen)) or "none"
            raise ProviderLoadError(f"Provider {name!r} in config.toml has unknown type {kind!r} (known: {known}).")
        ep = types.chosen[kind]
        return _load_entry_point(name, ep), f"{ep.value} (type {kind!r} from config.toml)"
    if name in found.excluded:
        raise ProviderNotFound(discovery.not_loaded_message("provider", name))
    for bad, ep, why in found.invalid:
        if bad == name:
            raise ProviderLoadError(f"Provider {name!r} ({ep.dist_name}) cannot be used: {why}.")
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

    from . import hookspecs, trace
    from .hookcheck import hook_names, unmarked_hooks

    plugin, where = _import_plugin(name, home)
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    try:
        pm.register(plugin, name=name)
        pm.check_pending()
    except Exception as exc:  # pluggy.PluginValidationError and friends
        raise ProviderLoadError(f"Provider {name!r} ({where}) is invalid: {exc}") from None
    if not pm.hook.provider_defaults.get_hookimpls():
        unmarked = unmarked_hooks(plugin, hook_names(pm), f"{hookspecs.PROJECT}_impl")
        if unmarked:
            raise ProviderLoadError(
                f"Provider {name!r} ({where}) has {', '.join(unmarked)} but none is marked as a hook: "
                "decorate each with @hookimpl from oauth_core (`from oauth_core import hookimpl`).")
    trace.watch(pm, "provider", name)
    return pm


def excluded_providers() -> list[str]:
    """Installed providers that ``OAUTH_HUB_LOAD_PLUGINS`` leaves out (for a note in the listing)."""
    return sorted(_discover().excluded)
