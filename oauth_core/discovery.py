"""Which installed plugins are used: one rule for providers, provider types and exporters.

Every entry-point group oauth-hub reads (``oauth_hub.providers``,
``oauth_hub.provider_types``, ``oauth_hub.exporters``) goes through :func:`discover`,
and every command asks it, so ``providers``, ``status``, ``token``, ``env``, ``export``
and the rest give the same answer about a plugin:

- **Names are checked here**, before anything is imported: a name becomes part of file
  names and command lines, so it must be a lowercase slug (:data:`NAME_PATTERN`). An
  entry point named ``Bad.Name`` is reported as broken, never loaded.
- **A built-in name wins.** When another package registers a name that oauth-hub itself
  registers, the built-in is used and the other is reported as a *note* ("not used"),
  not as a failure. Between two third-party packages, the first found on ``sys.path``
  wins, the same way.
- **``OAUTH_HUB_LOAD_PLUGINS``** (like llm's ``LLM_LOAD_PLUGINS`` and Datasette's
  ``DATASETTE_LOAD_PLUGINS``) limits the third-party plugins to a comma-separated list
  of entry-point names *or* distribution names (``oauth-hub-acme`` loads every plugin
  that package registers, in every group); set but empty means built-ins only. A
  plugin left out is not listed and, asked for by name, is refused with a message that
  names the variable. A listed name that matches nothing installed is warned about
  once (a :class:`~oauth_core.errors.PluginNotice`), since it is usually a typo.

Discovery reads metadata only (:mod:`oauth_core.entrypoints`); nothing is imported.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any

from .entrypoints import entry_points, normalize

LOAD_ENV = "OAUTH_HUB_LOAD_PLUGINS"
BUILTIN_DISTRIBUTION = "oauth-hub"
GROUPS = ("oauth_hub.providers", "oauth_hub.provider_types", "oauth_hub.exporters")
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
NAME_RULE = "lowercase letters, digits, '-' and '_', at most 64 characters, starting with a letter or digit"


def is_builtin(ep: Any) -> bool:
    """Whether ``ep`` is registered by oauth-hub itself (its dist-info directory's name)."""
    return normalize(ep.folder_name) == BUILTIN_DISTRIBUTION


def distribution_key(ep: Any) -> str:
    """The normalised distribution name of ``ep``, from its dist-info directory (no file read)."""
    return normalize(ep.folder_name)


def load_list() -> frozenset[str] | None:
    """The names in ``OAUTH_HUB_LOAD_PLUGINS``; ``None`` when it is not set (load everything)."""
    raw = os.environ.get(LOAD_ENV)
    if raw is None:
        return None
    return frozenset(item.strip() for item in raw.split(",") if item.strip())


def selected(ep: Any, wanted: frozenset[str] | None) -> bool:
    """Whether the load rule lets ``ep`` load: built-ins always, others when named."""
    if wanted is None or is_builtin(ep):
        return True
    return ep.name in wanted or distribution_key(ep) in {normalize(w) for w in wanted}


@dataclass
class Discovery:
    """What one entry-point group holds, after the rule is applied."""

    group: str
    chosen: dict[str, Any] = field(default_factory=dict)  # name -> the entry point that is used
    shadowed: list[tuple[str, Any, str]] = field(default_factory=list)  # (name, entry point, why not used)
    invalid: list[tuple[str, Any, str]] = field(default_factory=list)  # (name, entry point, what is wrong)
    excluded: dict[str, Any] = field(default_factory=dict)  # name -> entry point left out by LOAD_ENV


def discover(group: str, kind: str = "plugin") -> Discovery:
    """Apply the rule to ``group``; ``kind`` ("provider", "exporter") words the notes."""
    wanted = load_list()
    if wanted:
        warn_unmatched(wanted)
    found = Discovery(group)
    for ep in entry_points(group=group):
        if not selected(ep, wanted):
            found.excluded.setdefault(ep.name, ep)
            continue
        if not NAME_PATTERN.match(ep.name):
            found.invalid.append((ep.name, ep, f"{ep.name!r} is not a valid {kind} name ({NAME_RULE})"))
            continue
        current = found.chosen.get(ep.name)
        if current is None:
            found.chosen[ep.name] = ep
        elif is_builtin(ep) and not is_builtin(current):
            found.chosen[ep.name] = ep
            found.shadowed.append((ep.name, current, f"the built-in {kind} of that name wins"))
        else:
            why = f"the built-in {kind} of that name wins" if is_builtin(current) else (
                f"{current.dist_name or current.value} registered that name first")
            found.shadowed.append((ep.name, ep, why))
    for name in list(found.excluded):
        if name in found.chosen:
            del found.excluded[name]  # a built-in (or a named package) has the name anyway
    return found


def not_loaded_message(kind: str, name: str) -> str:
    """Why an installed ``kind`` called ``name`` is not available, naming the variable to change."""
    value = os.environ.get(LOAD_ENV, "")
    shown = f"{LOAD_ENV}={value!r}" if value else f"{LOAD_ENV} is set but empty"
    return (f"The {kind} {name!r} is installed but not loaded: {shown}. "
            f"Add {name} (or its package name) to {LOAD_ENV}, or unset it.")


def unmatched(wanted: frozenset[str]) -> list[str]:
    """Names in the load list that are no entry point or distribution in any oauth-hub group."""
    names: set[str] = set()
    for group in GROUPS:
        for ep in entry_points(group=group):
            names.add(ep.name)
            names.add(distribution_key(ep))
    return sorted(w for w in wanted if w not in names and normalize(w) not in names)


_warned: set[tuple[str, tuple[str, ...]]] = set()


def warn_unmatched(wanted: frozenset[str]) -> None:
    """Warn once per process (and per ``sys.path``) about load-list names that match nothing."""
    key = (",".join(sorted(wanted)), tuple(sys.path))
    if key in _warned:
        return
    _warned.add(key)
    missing = unmatched(wanted)
    if missing:
        import warnings

        from .errors import PluginNotice

        names = ", ".join(missing)
        warnings.warn(f"{LOAD_ENV} names {names}, which matches no installed plugin or package "
                      "(`oauth-hub providers` and `oauth-hub export --list` show what is installed).",
                      PluginNotice, stacklevel=3)
