"""The example plugin package installs on its own and works through entry points.

examples/oauth-hub-acme is the proof that a third-party provider with a confidential
client and a third-party TOML exporter can be written against public names only: it is
installed into a fresh virtualenv like any package, its own tests drive the real CLI
against the fakes, and its imports are checked against oauth-hub's public API.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "oauth-hub-acme"


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A fresh virtualenv that sees oauth-hub and its dependencies but not the example.

    oauth-hub comes from this interpreter's site-packages (processed as a site dir, so
    an editable install works too) rather than a second download; the example is then
    installed into the new venv with pip like any third-party package (pip fetches its
    build backend from the package index, as it would for a user).
    """
    root = tmp_path_factory.mktemp("example") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, capture_output=True)
    python = root / "bin" / "python"
    new_site = subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"],
                              check=True, capture_output=True, text=True).stdout.strip()
    outer = [p for p in site.getsitepackages() if os.path.isdir(p)]
    lines = "".join(f"import site; site.addsitedir({p!r})\n" for p in outer)
    Path(new_site, "outer-oauth-hub.pth").write_text(lines)
    before = subprocess.run([str(python), "-m", "oauth_hub", "providers", "--json"], capture_output=True,
                            text=True, env=dict(os.environ, OAUTH_HUB_HOME=str(root / "home")))
    assert before.returncode == 0, before.stderr
    assert "acme" not in {row["name"] for row in json.loads(before.stdout)}
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps",
                              str(EXAMPLE)], capture_output=True, text=True)
    assert install.returncode == 0, install.stdout + install.stderr
    return python


def test_installed_example_is_listed_with_its_version(venv, tmp_path):
    result = subprocess.run([str(venv), "-m", "oauth_hub", "providers", "--json"], capture_output=True, text=True,
                            env=dict(os.environ, OAUTH_HUB_HOME=str(tmp_path / "home")))
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["acme"] == {**rows["acme"], "distribution": "oauth-hub-acme", "version": "0.4.0", "loaded": True,
                            "source": "entry point"}
    assert rows["chatgpt"]["source"] == "built-in"
    tools = subprocess.run([str(venv), "-m", "oauth_hub", "export", "--list", "--json"], capture_output=True,
                           text=True, env=dict(os.environ, OAUTH_HUB_HOME=str(tmp_path / "home")))
    acme_cli = {row["name"]: row for row in json.loads(tools.stdout)}["acme-cli"]
    assert acme_cli["error"] is None and acme_cli["format"] == "toml" and acme_cli["title"] == "Acme CLI"


def test_the_example_packages_own_tests_pass_in_that_venv(venv):
    """Its tests drive the real `oauth-hub login acme` against oauth_core.testing's FakeOIDC."""
    result = subprocess.run([str(venv), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
                            capture_output=True, text=True, cwd=EXAMPLE, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout


# Public: names in the __all__ of these modules, the ones docs/hooks.md and docs/exporters.md
# import from (oauth_core.testing's for tests).
PUBLIC_MODULES = ("oauth_core", "oauth_core.exporters", "oauth_core.client_auth", "oauth_core.errors",
                  "oauth_core.hookspecs", "oauth_core.claims", "oauth_core.testing",
                  "oauth_core.testing.browser", "oauth_core.testing.fake_oidc", "oauth_core.testing.fake_openai",
                  "oauth_core.testing.fake_anthropic", "oauth_core.testing.seed")


def imported_names(path: Path) -> list[tuple[str, str | None]]:
    """(module, name) for every oauth_core import of a source file (name None for `import module`)."""
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "oauth_core":
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names if alias.name.split(".")[0] == "oauth_core"]
    return found


def test_the_example_uses_only_public_names():
    sources = sorted(EXAMPLE.rglob("*.py"))
    used = [(path.name, module, name) for path in sources for module, name in imported_names(path)]
    assert {module for _, module, _ in used} >= {"oauth_core", "oauth_core.exporters"}  # provider and exporter
    private = []
    for where, module, name in used:
        if module not in PUBLIC_MODULES:
            private.append(f"{where}: {module}")
        elif name is not None and name not in getattr(importlib.import_module(module), "__all__", ()):
            private.append(f"{where}: {module}.{name}")
    assert private == [], "the example package reaches past oauth-hub's public API"
    for module in PUBLIC_MODULES:  # and every public name really is there
        loaded = importlib.import_module(module)
        assert all(hasattr(loaded, name) for name in loaded.__all__), module


def test_the_docs_examples_use_only_public_names(tmp_path):
    """What a plugin author copies from the docs is public API too."""
    import re

    root = EXAMPLE.parents[1]
    private = []
    for doc in ("docs/hooks.md", "docs/exporters.md", "CONTRIBUTING.md", "README.md"):
        for number, block in enumerate(re.findall(r"```python\n(.*?)```", (root / doc).read_text(), re.S)):
            source = tmp_path / f"block{number}.py"
            source.write_text(block)
            for module, name in imported_names(source):
                public = module in PUBLIC_MODULES and (
                    name is None or name in importlib.import_module(module).__all__)
                if not public:
                    private.append(f"{doc}: {module}.{name}")
    assert private == []
