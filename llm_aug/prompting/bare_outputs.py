"""Which template variables can be filled in without rendering the template again.

A variable output only as a bare ``{{ post }}`` at the top level of a template (not in a
loop, a condition, a filter, a macro or an assignment) contributes exactly
``neutralise(value)`` at each of those places and nothing elsewhere: the rest of the text
does not depend on it. ``Prompt.bind`` uses that to render the rest once per job.
"""

from __future__ import annotations

from collections import Counter

from jinja2 import nodes

# What would make two renders with the same variables differ: the ``random`` filter
# (also reachable by name, as in ``map('random')``) and the ``lipsum`` global.
_RANDOM_FILTER = "random"
_RANDOM_GLOBAL = "lipsum"


def bare_outputs(ast: nodes.Template) -> dict[str, int]:
    """Variables used only as bare top-level ``{{ name }}`` outputs, with how many there are.

    Empty when the template could render differently twice with the same variables.
    """
    if _nondeterministic(ast):
        return {}
    bare = Counter(child.name for node in ast.body if isinstance(node, nodes.Output)
                   for child in node.nodes if isinstance(child, nodes.Name))
    every = Counter(node.name for node in ast.find_all(nodes.Name))
    return {name: count for name, count in bare.items() if every[name] == count}


def _nondeterministic(ast: nodes.Template) -> bool:
    if any(f.name == _RANDOM_FILTER for f in ast.find_all(nodes.Filter)):
        return True
    if any(c.value == _RANDOM_FILTER for c in ast.find_all(nodes.Const)):
        return True
    return any(n.name == _RANDOM_GLOBAL for n in ast.find_all(nodes.Name))
