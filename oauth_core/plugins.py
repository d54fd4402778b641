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
:class:`ProviderLoadError` for that provider alone; :func:`inspect_providers` reports it
next to the healthy ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
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


# What `oauth-hub providers` shows a provider can do, by the hooks it implements: a
# capability needs all of its hooks ("device login" needs both halves), except
# "gateway", which any one of its hooks gives.
CAPABILITIES: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("browser login", ("build_auth_url", "exchange_code"), True),
    ("device login", ("start_device_login", "poll_device_login"), True),
    ("refresh", ("refresh_tokens",), True),
    ("revocation", ("revoke_tokens",), True),
    ("API key", ("obtain_api_key",), True),
    ("models", ("list_models", "model_entry"), True),
    ("gateway", ("api_base", "request_headers"), False),
    ("environment", ("environment",), True),
)


def capabilities(hooks: list[str]) -> list[str]:
    """The capability labels that ``hooks`` (the names a provider implements) add up to."""
    have = set(hooks)
    return [label for label, needed, every in CAPABILITIES
            if (all if every else any)(hook in have for hook in needed)]


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
    note: str | None = None  # why an installed provider is not used (a built-in has its name)
    hooks: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "failed" if self.error else "not used" if self.note else "loaded"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "module": self.module,
            "distribution": self.distribution,
            "version": self.version,
            "source": self.source,
            "status": self.status,
            "loaded": self.status == "loaded",
            "error": self.error,
            "note": self.note,
            "description": self.description,
            "hooks": list(self.hooks),
            "capabilities": capabilities(self.hooks) if self.status == "loaded" else [],
        }


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


def unmarked_hooks(plugin: Any, hook_names: Any, marker_attr: str) -> list[str]:
    """Functions of ``plugin`` named like hooks but not marked with ``oauth_core.hookimpl``.

    pluggy skips them silently, so a module decorated with another project's marker (or
    none) would look like a plugin that implements nothing.
    """
    found = []
    for hook in sorted(hook_names):
        member = getattr(plugin, hook, None)
        if callable(member) and not hasattr(member, marker_attr):
            found.append(hook)
    return found


def plugin_manager(name: str, home: str | os.PathLike[str] | None = None) -> Any:
    """A plugin manager holding provider ``name``'s hook implementations, validated."""
    import pluggy

    from . import hookspecs, trace

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


def hook_names(pm: Any) -> list[str]:
    """Every hook ``pm`` has a specification for."""
    return [n for n, caller in vars(pm.hook).items() if getattr(caller, "spec", None) is not None]


def implemented_hooks(pm: Any) -> list[str]:
    """The hooks the plugin in ``pm`` implements (sorted by name)."""
    return [n for n in hook_names(pm) if getattr(pm.hook, n).get_hookimpls()]


def inspect_providers(home: str | os.PathLike[str] | None = None) -> list[ProviderInfo]:
    """Load every provider and report each one, including failures and shadowed names.

    Each provider's module is imported and checked as a command would load it (hooks,
    name, ``port``, its ``config.toml`` table), so a provider listed as loaded can be
    used; nothing else is imported and nothing goes over the network.
    """
    from .provider import Provider
    from .store import Store

    store = Store(home)
    rows: list[ProviderInfo] = []
    found = _discover()
    try:
        configured = _configured(home)
    except Exception as exc:
        configured = {}
        rows.append(ProviderInfo(name="(config.toml)", module=str(store.config_path()), distribution=None,
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
            provider = Provider.load(name, store)
            info.description = provider.settings.get("description") or None
            info.hooks = implemented_hooks(provider.pm)
        except Exception as exc:
            info.error = str(exc)
        rows.append(info)
    for name, ep, why in found.invalid:
        rows.append(ProviderInfo(name=name, module=ep.value, distribution=ep.dist_name, version=ep.version,
                                 source="entry point", error=why))
    for name, ep, why in found.shadowed:
        rows.append(ProviderInfo(name=name, module=ep.value, distribution=ep.dist_name, version=ep.version,
                                 source="entry point", note=f"not used: {why}"))
    return rows


def excluded_providers() -> list[str]:
    """Installed providers that ``OAUTH_HUB_LOAD_PLUGINS`` leaves out (for a note in the listing)."""
    return sorted(_discover().excluded)
