"""What is installed: the rows of ``oauth-hub providers``, each provider checked as a command loads it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from . import plugins
from .discovery import is_builtin
from .hookcheck import implemented_hooks
from .provider import Provider
from .store import Store

# What `oauth-hub providers` shows a provider can do, by the hooks it implements: a
# capability needs all of its hooks ("device login" needs both halves) unless marked
# "any". "gateway" is the /v1 gateway of `oauth-hub serve` (gateway_backend says which
# dialects the backend speaks); every provider has the raw /<provider>/ route anyway.
CAPABILITIES: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("browser login", ("build_auth_url", "exchange_code"), True),
    ("device login", ("start_device_login", "poll_device_login"), True),
    ("sign-in variants", ("sign_in_variants",), True),
    ("refresh", ("refresh_tokens",), True),
    ("revocation", ("revoke_tokens",), True),
    ("API key", ("obtain_api_key",), True),
    ("models", ("list_models", "model_entry"), True),
    ("gateway", ("gateway_backend",), True),
    ("usage limits", ("gateway_rate_limits",), True),
    ("plan limits", ("account_limits",), True),
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


def inspect_providers(home: str | os.PathLike[str] | None = None) -> list[ProviderInfo]:
    """Load every provider and report each one, including failures and shadowed names.

    Each provider's module is imported and checked as a command would load it (hooks,
    name, ``port``, its ``config.toml`` table), so a provider listed as loaded can be
    used; nothing else is imported and nothing goes over the network.
    """
    store = Store(home)
    rows: list[ProviderInfo] = []
    found = plugins._discover()
    try:
        configured = plugins._configured(home)
    except Exception as exc:
        configured = {}
        rows.append(ProviderInfo(name="(config.toml)", module=str(store.config_path()), distribution=None,
                                 version=None, error=str(exc), source="config"))
    for name in plugins.provider_names(home):
        ep = found.chosen.get(name) if name not in plugins._registered else None
        if name in plugins._registered:
            plugin = plugins._registered[name]
            module, source = getattr(plugin, "__name__", repr(plugin)), "registered"
        elif ep is not None:
            module, source = ep.value, "built-in" if is_builtin(ep) else "entry point"
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
