"""The package's import graph, read from the source (imports inside functions included): no
circle, and no arrow from a module that computes or checks to one that presents."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "costmodel"

#: modules that draw or word things for a person; everything else computes, measures or checks
PRESENTATION = {"costmodel.charts", "costmodel.live", "costmodel.widgets", "costmodel.report",
                "costmodel.notebook", "costmodel.vegawidget", "costmodel.trace.section",
                "costmodel.cli"}
PRESENTATION_PREFIXES = ("costmodel.commands",)


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Modules of the package that ``path`` imports (``from . import x`` resolved to x where x is a
    module)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("costmodel")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("costmodel"):
                target = node.module
            else:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in MODULES else target)
    return {m for m in found if m in MODULES and m != name}


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}
GRAPH = {name: imports_of(path) for name, path in MODULES.items()}


def is_presentation(name: str) -> bool:
    return name in PRESENTATION or name.startswith(PRESENTATION_PREFIXES)


def test_the_graph_is_read():
    # a known arrow, so an empty graph cannot pass
    assert "costmodel.registry" in GRAPH["costmodel.evaluate"]
    assert "costmodel.widgets" in MODULES and "costmodel.model.outputs" in MODULES


def test_no_circle():
    # a package's __init__ hands its modules' names on; arrows into it are arrows to them
    def edges(name):
        return {m for m in GRAPH[name] if not MODULES[m].name == "__init__.py" or not m.startswith(name + ".")}

    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(edges(n)):
            if MODULES[m].name == "__init__.py" and n.startswith(m + "."):
                continue  # a module importing its own package's face
            if state.get(m) == 1:
                raise AssertionError("import circle: " + " -> ".join(stack[stack.index(m):] + [m]))
            if m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(GRAPH):
        if n not in state:
            visit(n)


def test_nothing_that_computes_imports_what_presents():
    wrong = sorted(f"{a} -> {b}" for a, targets in GRAPH.items() if not is_presentation(a)
                   for b in targets if is_presentation(b))
    assert not wrong, wrong
