"""No import cycle between modules of ``llm_aug`` (issue 20), imports inside functions included.

grimp sees every import statement (top level, inside functions, under ``TYPE_CHECKING``), so
a lazy import does not hide a circle. The bench/ scripts (not a package) are held to the
same rule by reading their import statements, and import nothing from tests/.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

grimp = pytest.importorskip("grimp")
BENCH = Path(__file__).resolve().parents[1] / "bench"

def cycles(edges: Mapping[str, Iterable[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
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
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    comp.add(member)
                    if member == node:
                        break
                if len(comp) > 1:
                    found.append(frozenset(comp))
    return found


def test_cycles_finds_a_circle_and_only_circles() -> None:
    edges = {"a": ["b"], "b": ["c"], "c": ["a", "d"], "d": [], "e": ["d"], "f": ["f"]}
    assert cycles(edges) == [frozenset({"a", "b", "c"})]


@pytest.fixture(scope="module")
def graph_edges() -> dict[str, set[str]]:
    graph = grimp.build_graph("llm_aug")  # classifiers, eval, prompts: symlinked into llm_aug
    return {m: graph.find_modules_directly_imported_by(m) - {m} for m in graph.modules}


def test_graph_sees_imports_inside_functions(graph_edges: dict[str, set[str]]) -> None:
    # classifiers.methods imports the BERT classifier only inside a function: grimp must see it, or
    # a lazy import could hide a circle from the test below.
    assert "llm_aug.classifiers.bert" in graph_edges["llm_aug.classifiers.methods"]


def test_no_import_cycle(graph_edges: dict[str, set[str]]) -> None:
    found = [sorted(c) for c in cycles(graph_edges)]
    assert not found, f"import cycles inside llm_aug (move the shared types down, not a lazy import): {found}"


def _bench_imports() -> dict[str, set[str]]:
    """For each bench/ script, the top-level module names it imports (anywhere in the file)."""
    found: dict[str, set[str]] = {}
    for path in sorted(BENCH.glob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
        found[path.stem] = names
    return found


def test_bench_scripts_import_no_circle_and_nothing_from_tests() -> None:
    imports = _bench_imports()
    assert {"scale", "scale_augment", "_common"} <= set(imports)  # the scan reads bench/
    edges = {name: names & set(imports) for name, names in imports.items()}
    assert not cycles(edges), f"import cycles between bench/ scripts: {[sorted(c) for c in cycles(edges)]}"
    test_modules = {p.stem for p in (BENCH.parent / "tests").glob("*.py")}
    from_tests = {name: sorted(names & test_modules) for name, names in imports.items() if names & test_modules}
    assert not from_tests, f"bench/ imports modules of tests/ (move them to bench/): {from_tests}"
