"""The wheel installs only the project's own top-level names.

`providers` and `exporters` are existing PyPI projects: a wheel that put packages of those
names into site-packages would break them (or be broken by them). The repository keeps
the folders at the top; pyproject maps them under `oauth_hub`. This builds the real wheel
and reads what it would install.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    (found,) = out.glob("oauth_hub-*.whl")
    return found


def _names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_wheel_installs_only_our_top_level_names(wheel: Path) -> None:
    tops = {name.split("/", 1)[0] for name in _names(wheel) if not name.split("/", 1)[0].endswith(".dist-info")}
    assert tops == {"oauth_core", "oauth_hub"}


def test_every_plugin_module_is_in_the_wheel(wheel: Path) -> None:
    """The package list in pyproject is written out by hand: a new provider must be added there."""
    names = set(_names(wheel))
    for folder, package in (("providers", "oauth_hub/providers"), ("exporters", "oauth_hub/exporters"),
                            ("oauth_core", "oauth_core")):
        for source in (ROOT / folder).rglob("*.py"):
            relative = source.relative_to(ROOT / folder).as_posix()
            assert f"{package}/{relative}" in names, f"{folder}/{relative} is not packaged"


def test_entry_points_name_the_installed_modules(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        (entry_points,) = [n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")]
        text = archive.read(entry_points).decode()
    values = [line.split("=", 1)[1].strip() for line in text.splitlines() if "=" in line]
    plugin_values = [v for v in values if not v.startswith("oauth_hub.cli")]
    assert plugin_values and all(v.startswith("oauth_hub.") for v in plugin_values), plugin_values
