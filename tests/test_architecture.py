"""The engine's import graph: one way only, no circle.

Every ``import`` and ``from … import`` in ``oauth_core`` counts, wherever it is written
(module level, inside a function, under ``TYPE_CHECKING``): a function-level import is
still a dependency, only a later one. A circle means two modules can only be
understood (and changed) together; here it also meant an import order that worked by
luck. The token record's owner, :mod:`oauth_core.tokens`, sits below everything that
uses a sign-in.
"""

from __future__ import annotations

import ast
from pathlib import Path

import oauth_core

PACKAGE = "oauth_core"
ROOT = Path(oauth_core.__file__).parent


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = [PACKAGE, *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _absolute(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    base = package.split(".")
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph() -> dict[str, set[str]]:
    """``{module: {engine modules it imports}}``, from the source, without importing anything."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    name = alias.name
                    while name and name not in modules:  # `import oauth_core.x.y` -> the deepest module
                        name = name.rpartition(".")[0]
                    if name:
                        targets.add(name)
            elif isinstance(node, ast.ImportFrom):
                source = _absolute(module, path, node)
                for alias in node.names:
                    submodule = f"{source}.{alias.name}"
                    if submodule in modules:  # `from . import plugins` imports a module
                        targets.add(submodule)
                    elif source in modules:  # `from .store import Store` imports from one
                        targets.add(source)
        targets.discard(module)
        graph[module] = targets
    return graph


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle (``[a, b, …, a]``) in ``graph``, or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_the_walk_sees_function_level_and_relative_imports():
    graph = import_graph()
    # Written inside functions in gateway/server.py (serve's request handling) and exporters/export.py:
    assert "oauth_core.tokens" in graph["oauth_core.gateway.server"]
    assert "oauth_core.serve" in graph["oauth_core.exporters.export"]
    # `from . import plugins` is the plugins module; `from ..store import …` resolves upward.
    assert "oauth_core.plugins" in graph["oauth_core.tokens"]
    assert "oauth_core.store" in graph["oauth_core.exporters.export"]
    # The lazy public API's TYPE_CHECKING imports count as well.
    assert "oauth_core.tokens" in graph["oauth_core"]


def test_the_circle_finder_finds_a_circle_of_any_length():
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
    assert find_circle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_oauth_core_has_no_import_circle():
    circle = find_circle(import_graph())
    assert circle is None, "import circle: " + " -> ".join(circle)


def test_the_token_record_owner_depends_on_none_of_its_users():
    graph = import_graph()
    users = {"oauth_core.accounts", "oauth_core.login", "oauth_core.serve", "oauth_core.gateway.server",
             "oauth_core.auth", "oauth_core.authflow", "oauth_core.httpx_auth", "oauth_core.httpx2_auth",
             "oauth_core.doctor", PACKAGE} | {m for m in graph if m.startswith("oauth_core.exporters")}

    def reachable(start: str) -> set[str]:
        seen: set[str] = set()
        todo = [start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    assert not reachable("oauth_core.tokens") & users
    # authflow: the HTTP-client auths' shared rules (requests, httpx, httpx2) reach the record through it.
    for user in ("oauth_core.accounts", "oauth_core.gateway.server", "oauth_core.exporters.export",
                 "oauth_core.login", "oauth_core.authflow"):
        assert "oauth_core.tokens" in graph[user], user
