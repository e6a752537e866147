"""The design rules of docs/ARCHITECTURE.md, checked: the product's import graph (imports inside
functions included) has no cycle, and no import climbs a layer."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Bottom to top. A module may import its own layer or any below it, never one above.
LAYERS = (
    ("incidents", "observability"),
    ("storage", "cards", "mail", "pages", "charts", "integrations"),
    ("handlers", "handlers.context", "handlers.effects.registry"),
    ("handlers.reads",),
    ("handlers.effects",),
    ("handlers.reports",),
    ("handlers.incident",),
    ("handlers.ingest", "handlers.commands", "handlers.sync"),
    ("bot", "scheduler"),
    ("app",),
    ("cli",),
)
# Only the outbox's job bodies talk to the outside world (and app.py, which builds the clients).
MAY_IMPORT_INTEGRATIONS = ("handlers.effects", "app", "integrations")
PRODUCT = {prefix.split(".")[0] for layer in LAYERS for prefix in layer}


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    found = {"app": REPO / "app.py"}
    for top in PRODUCT - {"app"}:
        for path in (REPO / top).rglob("*.py"):
            if "migrations" not in path.parts:
                found[_module_name(path)] = path
    return found


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                out.add(name)
    return out


def _layer(module: str) -> int:
    best, rank = -1, None
    for i, layer in enumerate(LAYERS):
        for prefix in layer:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    assert rank is not None, f"{module} is in no layer of docs/ARCHITECTURE.md"
    return rank


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def test_no_import_climbs_a_layer(graph):
    climbs = sorted(f"{a} -> {b}" for a, deps in graph.items() for b in deps
                    if _layer(b) > _layer(a))
    assert climbs == []


def test_only_outbox_effects_talk_to_the_outside_world(graph):
    offenders = sorted(f"{a} -> {b}" for a, deps in graph.items() for b in deps
                       if b.startswith("integrations")
                       and not a.startswith(MAY_IMPORT_INTEGRATIONS))
    assert offenders == []


def test_no_import_cycle(graph):
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for dep in graph.get(node, ()):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert cycles == []
