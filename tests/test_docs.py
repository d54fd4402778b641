"""The documentation agrees with the code.

``docs/hooks.md`` is the provider authors' reference, and ``oauth_core/hookspecs.py`` is
the source of truth: every hookspec must have a section whose heading repeats its
signature, no section may describe a hook that does not exist, and every example must
at least be valid Python that pluggy would accept. ``CONTRIBUTING.md`` must name the
entry-point group providers register in, and its minimal provider must really load.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import json
import re
import tomllib
from pathlib import Path

import pluggy
import pytest

from oauth_core import hookspecs, plugins
from oauth_core.provider import Provider
from oauth_core.store import Store

ROOT = Path(__file__).resolve().parents[1]
HOOKS_MD = ROOT / "docs" / "hooks.md"
CONTRIBUTING_MD = ROOT / "CONTRIBUTING.md"

HOOK_HEADING = re.compile(r"^(\w+)\((.*)\)$")
SPEC_MARKER = f"{hookspecs.PROJECT}_spec"  # the attribute pluggy's HookspecMarker sets

# What docs/hooks.md's table and CONTRIBUTING.md's minimal provider promise a login needs.
LOGIN_HOOKS = ("provider_defaults", "build_auth_url", "exchange_code", "list_models", "model_entry")


# -- reading the code and the docs -------------------------------------------------------


def hookspec_signatures() -> dict[str, list[str]]:
    """Each hookspec's name and argument names, found the way the engine finds them."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    specs: dict[str, list[str]] = {}
    for name, caller in vars(pm.hook).items():
        spec = getattr(caller, "spec", None)
        if spec is not None:
            specs[name] = list(inspect.signature(spec.function).parameters)
    return specs


SPECS = hookspec_signatures()


class Block:
    """One fenced code block, with the level-2 section it sits in."""

    def __init__(self, lang: str, code: str, section: str, line: int) -> None:
        self.lang = lang
        self.code = code
        self.section = section
        self.line = line

    def __repr__(self) -> str:
        return f"<{self.lang or 'plain'} block at line {self.line} in {self.section!r}>"

    @property
    def id(self) -> str:
        return f"line-{self.line}"


def parse_markdown(path: Path) -> tuple[list[str], list[Block]]:
    """All headings (``#`` markers stripped, in order) and all fenced code blocks.

    Lines inside code fences are never taken for headings: a Python comment such as
    ``## not a heading`` in an example must not count.
    """
    headings: list[str] = []
    blocks: list[Block] = []
    section = ""
    fence: tuple[str, int, list[str]] | None = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if fence is not None:
            if line.startswith("```"):
                blocks.append(Block(fence[0], "\n".join(fence[2]) + "\n", section, fence[1]))
                fence = None
            else:
                fence[2].append(line)
            continue
        if line.startswith("```"):
            fence = (line[3:].strip(), number, [])
            continue
        match = re.match(r"^(#{1,6}) (.+?)\s*$", line)
        if match:
            headings.append(match.group(0))
            if len(match.group(1)) == 2:
                section = match.group(2)
    assert fence is None, f"{path.name}: the code fence opened at line {fence[1]} is never closed"
    return headings, blocks


def documented_hooks() -> list[tuple[str, list[str]]]:
    """(name, argument names) for every ``## name(args)`` heading of docs/hooks.md, in order."""
    headings, _ = parse_markdown(HOOKS_MD)
    found = []
    for heading in headings:
        if not heading.startswith("## "):
            continue
        match = HOOK_HEADING.match(heading[3:])
        if match:
            args = [arg.strip() for arg in match.group(2).split(",") if arg.strip()]
            found.append((match.group(1), args))
    return found


def section_blocks(section_prefix: str, lang: str = "python") -> list[Block]:
    _, blocks = parse_markdown(HOOKS_MD)
    return [b for b in blocks if b.lang == lang and b.section.startswith(section_prefix)]


def github_slug(heading_text: str) -> str:
    """The anchor GitHub gives a heading: lowercase, punctuation dropped, spaces to hyphens."""
    text = heading_text.replace("`", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


# -- hookspecs ↔ docs/hooks.md ----------------------------------------------------------------


def test_hookspecs_are_found():
    """The pluggy view of the specs matches the functions carrying pluggy's spec marker."""
    marked = {
        name for name, obj in vars(hookspecs).items()
        if inspect.isfunction(obj) and hasattr(obj, SPEC_MARKER)
    }
    assert SPECS, "no hookspecs found in oauth_core.hookspecs"
    assert set(SPECS) == marked


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_hookspec_is_documented_with_its_signature(name):
    documented = [args for hook, args in documented_hooks() if hook == name]
    expected = f"## {name}({', '.join(SPECS[name])})"
    assert documented, f"docs/hooks.md has no section for the {name!r} hook; add one headed `{expected}`"
    assert len(documented) == 1, f"docs/hooks.md has {len(documented)} sections for {name!r}"
    assert documented[0] == SPECS[name], (
        f"docs/hooks.md documents {name}({', '.join(documented[0])}) but the spec is {name}({', '.join(SPECS[name])})"
    )


def test_docs_describe_no_hook_that_does_not_exist():
    unknown = [hook for hook, _ in documented_hooks() if hook not in SPECS]
    assert not unknown, f"docs/hooks.md documents hooks that oauth_core.hookspecs does not define: {unknown}"


def test_hook_headings_are_exact_signatures():
    """A heading that looks like a hook but does not parse as one would escape the checks above."""
    headings, _ = parse_markdown(HOOKS_MD)
    for heading in headings:
        if heading.startswith("## ") and "(" in heading:
            assert HOOK_HEADING.match(heading[3:]), f"malformed hook heading in docs/hooks.md: {heading!r}"


# -- examples ----------------------------------------------------------------------------------


HOOKS_BLOCKS = parse_markdown(HOOKS_MD)[1]


@pytest.mark.parametrize("block", [b for b in HOOKS_BLOCKS if b.lang == "python"], ids=lambda b: b.id)
def test_python_examples_compile(block):
    compile(block.code, f"docs/hooks.md:{block.line}", "exec")


@pytest.mark.parametrize("block", [b for b in HOOKS_BLOCKS if b.lang == "toml"], ids=lambda b: b.id)
def test_toml_examples_parse(block):
    tomllib.loads(block.code)


def _hookimpls(code: str) -> dict[str, list[str]]:
    """Functions decorated with ``@hookimpl`` in ``code`` and their parameter names."""
    found = {}
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.FunctionDef):
            decorators = [d.func if isinstance(d, ast.Call) else d for d in node.decorator_list]
            if any(isinstance(d, ast.Name) and d.id == "hookimpl" for d in decorators):
                found[node.name] = [a.arg for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs]
    return found


@pytest.mark.parametrize("name", sorted(SPECS))
def test_each_hook_has_an_example_pluggy_would_accept(name):
    """Each section shows an implementation whose arguments are a subset of the spec's."""
    impls: dict[str, list[str]] = {}
    for block in section_blocks(f"{name}("):
        impls.update(_hookimpls(block.code))
    assert name in impls, f"the {name!r} section of docs/hooks.md has no `@hookimpl def {name}(...)` example"
    extra = set(impls[name]) - set(SPECS[name])
    assert not extra, f"the {name!r} example takes arguments the spec does not have: {sorted(extra)}"


def test_required_table_covers_every_hook():
    text = HOOKS_MD.read_text(encoding="utf-8")
    table = text.split("## Required vs optional hooks", 1)[1].split("\n## ", 1)[0]
    missing = [name for name in SPECS if f"`{name}`" not in table]
    assert not missing, f"the 'Required vs optional hooks' table leaves out: {missing}"


def test_internal_links_resolve():
    headings, _ = parse_markdown(HOOKS_MD)
    anchors = {github_slug(h.lstrip("#")) for h in headings}
    text = HOOKS_MD.read_text(encoding="utf-8")
    broken = [target for target in re.findall(r"\]\(#([^)]+)\)", text) if target not in anchors]
    assert not broken, f"docs/hooks.md links to anchors that no heading has: {broken}"


# -- CONTRIBUTING.md -----------------------------------------------------------------------------


def test_contributing_names_the_entry_point_group():
    text = CONTRIBUTING_MD.read_text(encoding="utf-8")
    assert plugins.GROUP == "oauth_hub.providers"
    assert plugins.GROUP in text


def test_contributing_pyproject_example_registers_an_entry_point():
    _, blocks = parse_markdown(CONTRIBUTING_MD)
    tables = [tomllib.loads(b.code) for b in blocks if b.lang == "toml"]
    groups = [t.get("project", {}).get("entry-points", {}).get(plugins.GROUP) for t in tables]
    assert any(groups), f"no pyproject.toml example in CONTRIBUTING.md registers in [{plugins.GROUP}]"


@pytest.mark.parametrize(
    "block", [b for b in parse_markdown(CONTRIBUTING_MD)[1] if b.lang == "python"], ids=lambda b: b.id
)
def test_contributing_python_examples_compile(block):
    compile(block.code, f"CONTRIBUTING.md:{block.line}", "exec")


@pytest.fixture
def minimal_provider(tmp_path):
    """CONTRIBUTING.md's minimal provider module, registered as provider ``docs-example``."""
    _, blocks = parse_markdown(CONTRIBUTING_MD)
    sources = [b.code for b in blocks if b.lang == "python" and "def provider_defaults" in b.code]
    assert len(sources) == 1, "CONTRIBUTING.md should show exactly one minimal provider module"
    path = tmp_path / "docs_example_provider.py"
    path.write_text(sources[0], encoding="utf-8")
    spec = importlib.util.spec_from_file_location("docs_example_provider", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    plugins.register_provider("docs-example", module)
    yield module
    plugins.unregister_provider("docs-example")


def test_contributing_minimal_provider_loads(minimal_provider, tmp_path):
    """The example passes pluggy's validation and the engine's checks, with every login hook."""
    provider = Provider.load("docs-example", Store(tmp_path / "home"))
    assert isinstance(provider.settings["port"], int)
    missing = [hook for hook in LOGIN_HOOKS if not provider.has(hook)]
    assert not missing, f"CONTRIBUTING.md's minimal provider lacks hooks a login needs: {missing}"
    url = provider.call("build_auth_url", redirect_uri=provider.redirect_uri(provider.settings["port"]),
                        state="s" * 43, code_challenge="c" * 43, nonce="n" * 43)
    assert "code_challenge_method=S256" in url


# -- settings ------------------------------------------------------------------------------------


def _engine_defaults_table() -> dict[str, str]:
    text = HOOKS_MD.read_text(encoding="utf-8")
    block = text.split("1. the engine defaults", 1)[1].split("\n2. ", 1)[0]
    return {m.group(1): m.group(2) for m in re.finditer(r"^\s*\| `(\w+)` \| `(.*)` \|$", block, re.M)}


def test_the_engine_defaults_list_is_complete_and_right():
    from oauth_core.provider import ENGINE_DEFAULTS

    documented = _engine_defaults_table()
    assert set(documented) == set(ENGINE_DEFAULTS) | {"prefix", "oauth_source"}, (
        "docs/hooks.md's engine-defaults table and oauth_core.provider.ENGINE_DEFAULTS differ")
    for key, value in ENGINE_DEFAULTS.items():
        assert json.loads(documented[key]) == value, f"docs/hooks.md gives {key} = {documented[key]}"


def test_every_engine_setting_is_described_under_provider_defaults():
    from oauth_core.provider import ENGINE_DEFAULTS

    text = HOOKS_MD.read_text(encoding="utf-8")
    section = text.split("\n## provider_defaults()", 1)[1].split("\n## ", 1)[0]
    missing = [key for key in [*ENGINE_DEFAULTS, "port", "prefix", "oauth_source", "title"]
               if f"`{key}`" not in section]
    assert not missing, f"the provider_defaults section of docs/hooks.md does not describe: {missing}"


def _refresh_posts(code: str) -> list[ast.Call]:
    """``http.post(...)`` calls inside ``refresh_tokens`` implementations of ``code``."""
    calls = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.FunctionDef) and node.name == "refresh_tokens":
            calls += [c for c in ast.walk(node) if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute)
                      and c.func.attr == "post"]
    return calls


def test_documented_refreshes_never_resend_a_spent_refresh_token():
    """Copying an example must not give a refresh that is retried after a read timeout (rotating tokens)."""
    sources = [b.code for path in (HOOKS_MD, CONTRIBUTING_MD) for b in parse_markdown(path)[1] if b.lang == "python"]
    sources += [p.read_text() for p in (ROOT / "examples").rglob("*.py")]
    posts = [call for code in sources for call in _refresh_posts(code)]
    assert posts, "no refresh_tokens example found"
    for call in posts:
        keywords = {k.arg: k.value for k in call.keywords}
        if "retries" in keywords:
            flag = keywords.get("idempotent")
            assert isinstance(flag, ast.Constant) and flag.value is False, ast.unparse(call)
