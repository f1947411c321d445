"""The import graph of src/veilnet, read with ``ast``: no cycles between modules, and the
direction rules of DESIGN §12 (which layers may import which)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

ALLOWED_CYCLES: frozenset[frozenset[str]] = frozenset()
"""Temporary: cycles through veilnet.runtime or veilnet.sdk that their owners still have to
break, each as the set of its modules. Empty now; only ever shrink it."""

FORBIDDEN: dict[str, tuple[str, ...]] = {
    "veilnet.runtime": ("worker", "chain", "sdk", "cli", "devnet", "enclave"),
    "veilnet.protocol": ("runtime", "sandbox", "worker", "chain", "sdk", "enclave"),
    "veilnet.enclave": ("worker", "chain", "sdk", "cli", "devnet"),
    "veilnet.sdk": ("runtime", "sandbox", "worker"),
    "veilnet.chain": ("runtime", "worker", "sdk"),
}
"""DESIGN §12: package → the veilnet packages it must never import."""


def _modules() -> dict[str, tuple[Path, bool]]:
    """Module name → (file, is a package ``__init__``)."""
    found: dict[str, tuple[Path, bool]] = {}
    for path in sorted((SRC / "veilnet").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        found[".".join(parts)] = (path, is_package)
    return found


MODULES = _modules()


def _owner(name: str) -> str | None:
    """The module or package that importing ``name`` runs (its longest known prefix)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imported(module: str, path: Path, is_package: bool) -> Iterator[str]:
    """Every veilnet module ``module`` imports, at any depth (functions, TYPE_CHECKING too)."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _owner(alias.name)
                if target is not None:
                    yield target
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                package = ".".join([*base, *([node.module] if node.module else [])])
            else:
                package = node.module or ""
            for alias in node.names:
                # ``from a.b import c``: the module a.b.c when there is one, else a.b itself
                full = f"{package}.{alias.name}"
                target = full if full in MODULES else _owner(package)
                if target is not None:
                    yield target


def _graph() -> dict[str, set[str]]:
    return {
        module: set(_imported(module, path, is_package))
        for module, (path, is_package) in MODULES.items()
    }


GRAPH = _graph()


def _components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with a cycle (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph[node]:
                    found.append(sorted(component))
    return found


def _cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One concrete cycle inside ``component``, as a path that returns to its start."""
    members = set(component)
    start = component[0]
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if child not in parents:
                    parents[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle in component {component}")


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_graph_sees_known_edges() -> None:
    # guards the parser itself: a graph that lost its edges would pass every check below
    assert "veilnet.protocol.egress" in GRAPH["veilnet.chain.egress"]
    assert "veilnet.worker.constants" in GRAPH["veilnet.worker.config"]  # from pkg import mod
    assert "veilnet.worker.api" in GRAPH["veilnet.worker"]
    assert "veilnet.enclave" in GRAPH["veilnet.worker.host"]  # imported inside a method


def test_no_import_cycles() -> None:
    cycles = [c for c in _components(GRAPH) if frozenset(c) not in ALLOWED_CYCLES]
    described = [" -> ".join(_cycle(GRAPH, component)) for component in cycles]
    assert not cycles, "import cycles:\n" + "\n".join(described)


def test_allowed_cycles_still_exist_and_go_through_runtime_or_sdk() -> None:
    current = {frozenset(c) for c in _components(GRAPH)}
    for allowed in ALLOWED_CYCLES:
        assert allowed in current, f"fixed, remove from ALLOWED_CYCLES: {sorted(allowed)}"
        assert any(_in(m, "veilnet.runtime") or _in(m, "veilnet.sdk") for m in allowed)


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_import_direction(package: str) -> None:
    banned = [f"veilnet.{name}" for name in FORBIDDEN[package]]
    wrong = sorted(
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        if _in(module, package)
        for target in targets
        if any(_in(target, other) for other in banned)
    )
    assert not wrong, f"{package} must not import {', '.join(banned)}:\n" + "\n".join(wrong)
