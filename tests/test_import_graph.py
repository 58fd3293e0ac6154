"""The library's import graph has no circle (issue 17), counting imports inside functions too
(a lazy import that dodges a circle at load time is still a circle in the design), and the
installed namespace never imports the checkout-only `experiments` package."""

from __future__ import annotations

import ast
from pathlib import Path

import wm_jax
import wm_jax.conversion
import wm_jax.datasets

ROOTS = {  # dotted package -> its folder (conversion/ and data/ install under wm_jax)
    "wm_jax": Path(wm_jax.__file__).parent,
    "wm_jax.conversion": Path(wm_jax.conversion.__file__).parent,
    "wm_jax.datasets": Path(wm_jax.datasets.__file__).parent,
}


def _modules() -> dict[str, Path]:
    modules = {}
    for package, folder in ROOTS.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] in ("__init__", "__main__"):
                parts = parts[:-1] + (["__main__"] if path.stem == "__main__" else [])
            modules[".".join([package, *parts])] = path
    return modules


def _imports(path: Path, modules) -> set[str]:
    """The project modules a file imports: `from a.b import c` is a.b.c when that is a module."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                found.add(f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module)
    return {name for name in found if name in modules or name.split(".")[0] == "experiments"}


def _graph():
    modules = _modules()
    return {name: _imports(path, modules) for name, path in modules.items()}


def _cycle(graph) -> list[str] | None:
    """One import circle as a path of module names, or None (depth-first search)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_cycle_finder_finds_a_planted_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_library_import_graph_has_no_circle():
    graph = _graph()
    assert {"wm_jax.bench.report", "wm_jax.conversion.api", "wm_jax.datasets.sources.doom"} <= set(graph)
    assert "wm_jax.machine" in graph["wm_jax.evaluation"]  # the walk sees imports inside functions
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_installed_namespace_never_imports_experiments():
    offenders = {name: sorted(i for i in imports if i.split(".")[0] == "experiments")
                 for name, imports in _graph().items()}
    assert not {name: found for name, found in offenders.items() if found}
