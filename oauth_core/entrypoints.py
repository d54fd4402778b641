"""Entry points read straight from installed metadata, without ``importlib.metadata``.

Why not the standard library: importing :mod:`importlib.metadata` (and the email
parser it pulls in) costs about 10 ms, a third of the CLI's start-up budget, and
``oauth-hub status`` only needs provider *names*. Installed distributions keep their
entry points in ``<name>-<version>.dist-info/entry_points.txt`` (or ``*.egg-info``)
in a ``sys.path`` directory, an INI-style file that is simple to read. The same rules
as ``importlib.metadata`` apply: ``sys.path`` order, and the first distribution of a
given (normalised) name wins. Loading an entry point imports its module, as
``EntryPoint.load()`` does.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

_SUFFIXES = (".dist-info", ".egg-info")


def normalize(name: str) -> str:
    """PEP 503 name normalisation (``oauth_hub`` and ``OAuth.Hub`` are ``oauth-hub``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class EntryPoint:
    """One entry point: ``name = module[:attr]`` in ``group``, from the metadata in ``path``."""

    name: str
    value: str
    group: str
    path: str = field(repr=False)  # the .dist-info / .egg-info directory

    @property
    def folder_name(self) -> str:
        base = os.path.basename(self.path)
        for suffix in _SUFFIXES:
            base = base.removesuffix(suffix)
        return base.split("-")[0]

    @cached_property
    def _metadata(self) -> dict[str, str]:
        """``Name`` and ``Version`` headers of the distribution (read on demand only)."""
        found: dict[str, str] = {}
        for filename in ("METADATA", "PKG-INFO"):
            try:
                with open(os.path.join(self.path, filename), encoding="utf-8", errors="replace") as handle:
                    for line in handle:
                        if not line.strip():
                            break  # headers end at the first blank line
                        key, _, value = line.partition(":")
                        if key in ("Name", "Version") and key not in found:
                            found[key] = value.strip()
                break
            except OSError:
                continue
        return found

    @property
    def dist_name(self) -> str:
        return self._metadata.get("Name") or self.folder_name

    @property
    def version(self) -> str | None:
        return self._metadata.get("Version")

    def load(self) -> Any:
        value = self.value.split("[", 1)[0].strip()  # "module:attr [extra1, extra2]": extras are not ours to check
        module_name, _, attr = value.partition(":")
        obj: Any = importlib.import_module(module_name.strip())
        for part in filter(None, attr.strip().split(".")):
            obj = getattr(obj, part)
        return obj


def _parse(path: str) -> list[tuple[str, str, str]]:
    """(group, name, value) triples of one entry_points.txt."""
    out: list[tuple[str, str, str]] = []
    try:
        with open(os.path.join(path, "entry_points.txt"), encoding="utf-8", errors="replace") as handle:
            group = None
            for raw in handle:
                line = raw.strip()
                if not line or line[0] in "#;":
                    continue
                if line.startswith("[") and line.endswith("]"):
                    group = line[1:-1].strip()
                elif group is not None and "=" in line:
                    name, _, value = line.partition("=")
                    out.append((group, name.strip(), value.strip()))
    except OSError:
        pass
    return out


_cache: dict[tuple[str, ...], list[EntryPoint]] = {}


def entry_points(group: str) -> list[EntryPoint]:
    """The entry points of ``group`` across the distributions on ``sys.path``, in order."""
    key = tuple(sys.path)
    if key not in _cache:
        found: list[EntryPoint] = []
        seen: set[str] = set()
        for directory in sys.path:
            try:
                names = sorted(os.listdir(directory or "."))
            except (OSError, NotADirectoryError):
                continue
            for entry in names:
                if not entry.endswith(_SUFFIXES):
                    continue
                dist = normalize(entry.rsplit(".", 1)[0].split("-")[0])
                if dist in seen:
                    continue  # a second copy further down sys.path is shadowed, as in importlib.metadata
                seen.add(dist)
                path = os.path.join(directory or ".", entry)
                found.extend(EntryPoint(n, v, g, path) for g, n, v in _parse(path))
        _cache[key] = found
    return [ep for ep in _cache[key] if ep.group == group]
