"""Checks on a plugin's hook implementations, shared by providers and exporters."""

from __future__ import annotations

from typing import Any


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


def hook_names(pm: Any) -> list[str]:
    """Every hook ``pm`` has a specification for."""
    return [n for n, caller in vars(pm.hook).items() if getattr(caller, "spec", None) is not None]


def implemented_hooks(pm: Any) -> list[str]:
    """The hooks the plugin in ``pm`` implements (sorted by name)."""
    return [n for n in hook_names(pm) if getattr(pm.hook, n).get_hookimpls()]
