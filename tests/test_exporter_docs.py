"""docs/exporters.md agrees with oauth_core/exporters/hookspecs.py, and its complete exporter works.

The same checks as tests/test_docs.py makes for docs/hooks.md: every exporter hookspec
has a section headed by its exact signature and an example pluggy would accept; no
section describes a hook that does not exist; the required/optional table names every
hook; the examples compile; internal links resolve. Then the page's complete TOML
exporter, taken verbatim, is loaded and used for a real export and logout.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import tomllib
from pathlib import Path

import pluggy
import pytest

from oauth_core import exporters
from oauth_core.exporters import ExporterSpec, export_models, register_exporter, unregister_exporter

from .test_docs import HOOK_HEADING, _hookimpls, github_slug, parse_markdown

ROOT = Path(__file__).resolve().parents[1]
EXPORTERS_MD = ROOT / "docs" / "exporters.md"


def exporter_specs() -> dict[str, list[str]]:
    pm = pluggy.PluginManager(exporters.PROJECT)
    pm.add_hookspecs(ExporterSpec)
    return {name: list(inspect.signature(caller.spec.function).parameters)
            for name, caller in vars(pm.hook).items() if getattr(caller, "spec", None) is not None}


SPECS = exporter_specs()
HEADINGS, BLOCKS = parse_markdown(EXPORTERS_MD)


def documented() -> list[tuple[str, list[str]]]:
    found = []
    for heading in HEADINGS:
        match = HOOK_HEADING.match(heading[3:]) if heading.startswith("## ") else None
        if match:
            found.append((match.group(1), [a.strip() for a in match.group(2).split(",") if a.strip()]))
    return found


def test_every_exporter_hook_is_found():
    assert {"exporter_info", "render", "merge", "remove", "parse", "serialize"} <= set(SPECS)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_exporter_hook_is_documented_with_its_signature(name):
    sections = [args for hook, args in documented() if hook == name]
    expected = f"## {name}({', '.join(SPECS[name])})"
    assert sections, f"docs/exporters.md has no section for the {name!r} hook; add one headed `{expected}`"
    assert sections == [SPECS[name]], f"docs/exporters.md documents {name}{sections} but the spec is {expected}"


def test_no_section_describes_a_hook_that_does_not_exist():
    assert [hook for hook, _ in documented() if hook not in SPECS] == []
    for heading in HEADINGS:
        if heading.startswith("## ") and "(" in heading:
            assert HOOK_HEADING.match(heading[3:]), f"malformed hook heading: {heading!r}"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_each_exporter_hook_has_an_example_pluggy_would_accept(name):
    impls: dict[str, list[str]] = {}
    for block in BLOCKS:
        if block.lang == "python" and block.section.startswith(f"{name}("):
            impls.update(_hookimpls(block.code))
    assert name in impls, f"the {name!r} section of docs/exporters.md has no `@hookimpl def {name}(...)` example"
    assert not set(impls[name]) - set(SPECS[name]), f"the {name!r} example takes arguments the spec lacks"


def test_required_table_covers_every_hook():
    table = EXPORTERS_MD.read_text().split("## Required vs optional hooks", 1)[1].split("\n## ", 1)[0]
    assert [name for name in SPECS if f"`{name}`" not in table] == []


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang in ("python", "toml")], ids=lambda b: b.id)
def test_examples_compile(block):
    if block.lang == "python":
        compile(block.code, f"docs/exporters.md:{block.line}", "exec")
    else:
        tomllib.loads(block.code)


def test_internal_links_resolve():
    anchors = {github_slug(h.lstrip("#")) for h in HEADINGS}
    broken = [t for t in re.findall(r"\]\(#([^)]+)\)", EXPORTERS_MD.read_text()) if t not in anchors]
    assert broken == []


def test_every_built_in_format_and_helper_named_is_public():
    text = EXPORTERS_MD.read_text()
    for name in ("marked", "merge_mapping", "remove_mapping", "merge_list", "remove_list", "secret_or", "serve_note",
                 "register_exporter", "unregister_exporter", "export_models", "MARKER_KEY", "APIS"):
        assert re.search(rf"\b{name}\b", text) and name in exporters.__all__, name
    for fmt in exporters.BUILT_IN_FORMATS:
        assert f"| `{fmt}` |" in text, f"the format table of docs/exporters.md leaves out {fmt}"


@pytest.fixture
def complete_exporter(tmp_path):
    """The page's complete TOML exporter, verbatim, registered as `mytool`."""
    sources = [b.code for b in BLOCKS if b.lang == "python" and b.section == "A complete TOML exporter"]
    assert len(sources) == 1
    path = tmp_path / "mytool_oauth_hub.py"
    path.write_text(sources[0])
    spec = importlib.util.spec_from_file_location("mytool_oauth_hub", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    register_exporter("mytool", module)
    yield module
    unregister_exporter("mytool")


def test_the_complete_example_exports_and_logout_removes(home, chatgpt_home, idp, complete_exporter, tmp_path):
    from oauth_core.accounts import logout
    from oauth_core.testing.seed import seed_sign_in

    from .test_serve import seed_models

    idp.issued_api_keys.add("sk-docs-example")
    seed_sign_in("chatgpt", idp.mint_tokens(), home=chatgpt_home, api_key="sk-docs-example")
    seed_models("chatgpt", chatgpt_home)
    target = tmp_path / "config.toml"
    target.write_text("# My Tool\n[models.mine]  # my own model\nmodel = \"local\"\n")
    result = export_models("chatgpt", "mytool", output=target, home=home)
    data = tomllib.loads(target.read_text())
    assert set(data["models"]) == {"mine", *result.keys} and result.keys
    assert all(data["models"][k]["api_key"] == "${CHATGPT_OAUTH_API_KEY}" for k in result.keys)
    assert "# my own model" in target.read_text()
    logout("chatgpt", home=home)
    assert tomllib.loads(target.read_text()) == {"models": {"mine": {"model": "local"}}}
    assert target.read_text().startswith("# My Tool\n")
