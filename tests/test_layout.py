"""The layout is the architecture: the import graph of harness/ has no cycles, and no wing
imports a wing above it. Read from the source with ast, so it also sees imports inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

HARNESS = Path(__file__).resolve().parents[1] / "harness"
# Bottom to top. The root modules (errors, paths, files, stats, the package itself) are the floor.
WINGS = ("serving", "endpoint", "evalplus", "packs", "regress", "overnight", "report", "cli")


def _module_name(path: Path) -> str:
    parts = path.relative_to(HARNESS.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """harness module -> the harness modules it imports (anywhere in the file)."""
    modules = {_module_name(p): p for p in HARNESS.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets.add(node.module)
                targets.update(f"{node.module}.{a.name}" for a in node.names)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def wing_of(module: str) -> int:
    """0 for the root modules, 1.. for the wings in WINGS order; ``python -m harness`` is the top."""
    if module == "harness.__main__":
        return len(WINGS) + 1
    parts = module.split(".")
    return WINGS.index(parts[1]) + 1 if len(parts) > 2 or (len(parts) == 2 and parts[1] in WINGS) else 0


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (as a path of modules), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _is_package_init(module: str, graph: dict[str, set[str]]) -> bool:
    return any(other.startswith(module + ".") for other in graph)


def test_the_import_graph_has_no_cycles():
    graph = import_graph()
    # `import harness.x.y` also imports the package harness.x; a package's own __init__ importing
    # nothing keeps that edge harmless, so only module-to-module edges are followed.
    cycle = find_cycle({m: {t for t in ts if not _is_package_init(t, graph)} for m, ts in graph.items()})
    assert cycle is None, " -> ".join(cycle)


def test_no_wing_imports_a_wing_above_it():
    upward = [f"{m} imports {t}" for m, ts in import_graph().items() for t in ts if wing_of(t) > wing_of(m)]
    assert not upward, "\n".join(upward)


def test_the_checker_sees_a_cycle_and_an_upward_import():
    """The two checks above can fail: the helpers find what they are meant to find."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert wing_of("harness.cli.main") > wing_of("harness.serving.profiles") > wing_of("harness.errors")
