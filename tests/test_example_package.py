"""The example provider package installs on its own and works through entry points."""

from __future__ import annotations

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
    assert rows["acme"] == {**rows["acme"], "distribution": "oauth-hub-acme", "version": "0.3.1", "loaded": True,
                            "source": "entry point"}
    assert rows["chatgpt"]["source"] == "built-in"


def test_the_example_packages_own_tests_pass_in_that_venv(venv):
    """Its tests drive the real `oauth-hub login acme` against oauth_core.testing's FakeOIDC."""
    result = subprocess.run([str(venv), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
                            capture_output=True, text=True, cwd=EXAMPLE, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
