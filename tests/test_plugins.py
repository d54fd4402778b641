"""Provider discovery through entry points, and what a broken plugin may not do."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import click
import pytest

from oauth_core import plugins
from oauth_core.errors import ProviderLoadError, ProviderNotFound
from oauth_core.provider import Provider
from oauth_core.store import Store, platform_app_dir


def make_dist(site, dist: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
    """A minimal installed distribution: a .dist-info with entry points, plus its modules."""
    info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    lines = "\n".join(f"{name} = {module}" for name, module in entry_points.items())
    (info / "entry_points.txt").write_text(f"[oauth_hub.providers]\n{lines}\n")
    for name, source in modules.items():
        (site / f"{name}.py").write_text(textwrap.dedent(source))


BROKEN_IMPORT = "raise ImportError('this plugin needs a library that is not installed')\n"
MISSPELLED = """
from oauth_core.hookspecs import hookimpl

@hookimpl
def provider_defaults():
    return {"port": 1999}

@hookimpl
def build_auth_ulr(settings, redirect_uri, state, code_challenge):
    return "https://example.invalid/authorize"
"""


@pytest.fixture
def third_party(tmp_path, cli):
    site = tmp_path / "site"
    make_dist(site, "oauth-hub-broken", {"broken": "broken_provider"}, {"broken_provider": BROKEN_IMPORT})
    make_dist(site, "oauth-hub-typo", {"typo": "typo_provider"}, {"typo_provider": MISSPELLED})
    cli.env["PYTHONPATH"] = str(site)
    return site


def test_broken_plugins_are_reported_and_do_not_break_the_cli(cli, third_party, chatgpt_home, idp):
    listed = cli("providers", "--json")
    rows = {row["name"]: row for row in listed.json}
    assert rows["chatgpt"]["loaded"] is True
    assert rows["broken"]["loaded"] is False
    assert rows["broken"]["distribution"] == "oauth-hub-broken" and rows["broken"]["version"] == "1.2.3"
    assert "failed to import" in rows["broken"]["error"] and "not installed" in rows["broken"]["error"]
    assert rows["typo"]["loaded"] is False and "build_auth_ulr" in rows["typo"]["error"]

    human = cli("providers")
    assert human.returncode == 1  # something is broken: say so in the exit code too
    assert "broken" in human.stdout and "FAILED" in human.stdout
    assert "Traceback" not in human.stdout + human.stderr

    login = cli("login", "broken")
    assert login.returncode == 1
    assert login.stderr.count("\n") == 1 and "failed to import" in login.stderr

    # The healthy provider still works end to end.
    assert cli("login", "chatgpt").returncode == 0
    assert cli("status", "--json").returncode == 0


def test_listing_names_imports_no_provider(tmp_path):
    site = tmp_path / "site"
    make_dist(site, "oauth-hub-loud", {"loud": "loud_provider"},
              {"loud_provider": "raise SystemExit('imported!')\n"})
    code = ("import sys; from oauth_core.plugins import provider_names; names = provider_names(); "
            "assert 'loud' in names and 'chatgpt' in names, names; "
            "assert 'oauth_hub.providers.chatgpt' not in sys.modules; "
            "assert 'loud_provider' not in sys.modules; print('ok')")
    result = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(site)}, capture_output=True,
                            text=True)
    assert result.stdout.strip() == "ok", result.stderr


def test_unknown_provider_message_lists_known(home):
    with pytest.raises(ProviderNotFound, match=r"Unknown provider 'nope'. Known providers: .*chatgpt"):
        Provider.load("nope", Store(home))


def test_in_process_registration_for_embedding(home):
    class Plugin:
        @staticmethod
        def provider_defaults():
            return {"port": 1234, "prefix": "mine-"}

    from oauth_core.hookspecs import hookimpl

    Plugin.provider_defaults = hookimpl(Plugin.provider_defaults)
    plugins.register_provider("mine", Plugin)
    try:
        assert "mine" in plugins.provider_names()
        provider = Provider.load("mine", Store(home))
        assert provider.settings["port"] == 1234 and provider.settings["prefix"] == "mine-"
        assert provider.settings["callback_path"] == "/callback"  # engine default
        with pytest.raises(Exception, match="does not implement the 'build_auth_url' hook"):
            provider.call("build_auth_url", redirect_uri="x", state="s", code_challenge="c")
    finally:
        plugins.unregister_provider("mine")
    assert "mine" not in plugins.provider_names()


def test_a_provider_without_a_port_is_refused(home):
    from oauth_core.hookspecs import hookimpl

    class NoPort:
        @hookimpl
        def provider_defaults(self):
            return {}

    plugins.register_provider("noport", NoPort())
    try:
        with pytest.raises(ProviderLoadError, match="port"):
            Provider.load("noport", Store(home))
    finally:
        plugins.unregister_provider("noport")


def test_engine_does_not_import_click_or_providers():
    code = ("import sys, oauth_core, oauth_core.login, oauth_core.tokens, oauth_core.accounts, oauth_core.auth; "
            "bad = [m for m in sys.modules if m == 'click' "
            "or m.startswith(('providers', 'oauth_hub.providers', 'oauth_hub.exporters'))]; print(bad)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


def test_platform_dir_matches_click(monkeypatch):
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    assert str(platform_app_dir()) == click.get_app_dir("oauth-hub")
    monkeypatch.setenv("XDG_CONFIG_HOME", "/somewhere/else")
    assert str(platform_app_dir()) == click.get_app_dir("oauth-hub")


def _code_strings_and_names(path):
    """String constants (docstrings excluded) and identifiers of a module: its code, not its prose."""
    import ast

    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.value
        elif isinstance(node, ast.Name):
            yield node.id
        elif isinstance(node, ast.Attribute):
            yield node.attr
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            yield getattr(node, "module", None) or ""
            yield from (alias.name for alias in node.names)


#: Provider and vendor names the engine's code may not contain (issue 16 added the last three).
ENGINE_MUST_NOT_NAME = ("chatgpt", "openai", "anthropic", "claude", "codex", "copilot", "openrouter", "github")
# Wire-protocol names of a dialect the gateway speaks, not provider names: clients of the
# Anthropic Messages API mark every request with this header, whoever serves the model.
PROTOCOL_NAMES = frozenset({"anthropic-version"})


def test_engine_knows_no_provider_by_name():
    from pathlib import Path

    import oauth_core

    root = Path(oauth_core.__file__).parent
    engine = [p for p in root.rglob("*.py") if "testing" not in p.parts]
    assert len(engine) > 10
    offenders = []
    for path in engine:
        prose = path.read_text().lower()
        for word in ("claude", "copilot", "openrouter"):  # not even in prose: issue 5's `git grep` check
            if word in prose:
                offenders.append(f"{path.name}: mentions {word}")
        for text in _code_strings_and_names(path):
            if text in PROTOCOL_NAMES:
                continue
            if any(word in text.lower() for word in ENGINE_MUST_NOT_NAME):
                offenders.append(f"{path.name}: {text!r}")
    assert offenders == []
