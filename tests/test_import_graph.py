"""No import cycle between modules of ``llm_aug`` (issue 20), imports inside functions included.

grimp sees every import statement (top level, inside functions, under ``TYPE_CHECKING``), so
a lazy import does not hide a circle. The cycles that remain are listed below, each by its
modules (a strongly connected component of the module graph): a new cycle fails, and so does
a listed one that is gone, so the list only shrinks. The bench/ scripts (not a package) are
held to the same rule by reading their import statements, and import nothing from tests/.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

grimp = pytest.importorskip("grimp")
BENCH = Path(__file__).resolve().parents[1] / "bench"

# Strongly connected components still allowed. Remove an entry when its cycle is broken.
KNOWN_CYCLES: dict[str, frozenset[str]] = {
    # Issue 20's batch redesign (llm/batch/ sub-package, dispatch handed to build_runner,
    # RunState taking values): the mode lives in llm/batch, the runner reads it, run_state
    # takes the Runner, batch_client reaches back into the batch manifest.
    "batch runtime": frozenset({"llm_aug.llm.batch", "llm_aug.llm.batch_client", "llm_aug.llm.run_state",
                                "llm_aug.llm.runner"}),
    # Issue 20's batch redesign: `batch collect` imports the root CLI app to replay argv
    # (cli/batch.py); it is to continue the recorded job through the jobs API instead.
    "batch collect replays argv": frozenset({"llm_aug.cli", "llm_aug.cli.augment", "llm_aug.cli.batch",
                                             "llm_aug.cli.llm", "llm_aug.cli.llm_options",
                                             "llm_aug.cli.prompts"}),
}


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


def test_no_new_import_cycle(graph_edges: dict[str, set[str]]) -> None:
    found = set(cycles(graph_edges))
    known = set(KNOWN_CYCLES.values())
    new = [sorted(c) for c in found - known]
    assert not new, f"import cycles inside llm_aug (move the shared types down, not a lazy import): {new}"
    gone = [name for name, comp in KNOWN_CYCLES.items() if comp not in found]
    assert not gone, f"listed cycles no longer found (changed or broken: update KNOWN_CYCLES): {gone}"


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
