"""The package's import graph, read from the source (imports inside functions included): no
circle, no arrow from a module that computes or checks to one that presents, no drawing library
below the charts, and no module reaching into another's private names."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "costmodel"

#: modules that draw or word things for a person; everything else computes, measures or checks
PRESENTATION = {"costmodel.charts", "costmodel.chartdata", "costmodel.live", "costmodel.widgets",
                "costmodel.report", "costmodel.notebook", "costmodel.vegawidget", "costmodel.trace.section",
                "costmodel.cli"}
#: presentation modules whose job is the data behind a drawing: like every module that computes,
#: they import no drawing library (the notebooks extra), directly or through what they import
DATA_FOR_DRAWINGS = {"costmodel.chartdata"}
#: third-party packages that draw or display
DRAWING = {"altair", "vl_convert", "ipywidgets", "anywidget", "IPython", "nbconvert"}
PRESENTATION_PREFIXES = ("costmodel.commands",)


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def from_target(path: Path, node: ast.ImportFrom) -> str | None:
    """The package module a ``from ... import`` reads from (None: not ours)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    if node.level:
        base = package.split(".")
        base = base[:len(base) - (node.level - 1)]
        return ".".join(base + ([node.module] if node.module else []))
    if node.module and node.module.startswith("costmodel"):
        return node.module
    return None


def imports_of(path: Path) -> set[str]:
    """Modules of the package that ``path`` imports (``from . import x`` resolved to x where x is a
    module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("costmodel")}
        elif isinstance(node, ast.ImportFrom) and (target := from_target(path, node)) is not None:
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in MODULES else target)
    return {m for m in found if m in MODULES and m != module_name(path)}


def libraries_of(path: Path) -> set[str]:
    """Top-level names of the other packages that ``path`` imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found - {"costmodel"}


def private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_reaches(path: Path, text: str | None = None) -> list[str]:
    """Another module's private names that ``path`` uses: imported by name (``from .x import _y``),
    or read off a module it imported (``x._y``)."""
    me = module_name(path)
    tree = ast.parse(path.read_text() if text is None else text)
    modules = {}   # local name -> package module it is bound to
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name in MODULES and a.asname:
                    modules[a.asname] = a.name
        elif isinstance(node, ast.ImportFrom) and (target := from_target(path, node)) is not None:
            for a in node.names:
                if f"{target}.{a.name}" in MODULES:
                    modules[a.asname or a.name] = f"{target}.{a.name}"
                elif private(a.name) and target != me:
                    out.append(f"{me}: from {target} import {a.name}")
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules
                and private(node.attr) and modules[node.value.id] != me):
            out.append(f"{me}: {modules[node.value.id]}.{node.attr}")
    return out


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


def test_the_private_reach_check_sees_one():
    # the check reads both forms, so a clean package cannot pass by reading nothing
    probe = PACKAGE / "probe_private.py"   # read as if it were there; nothing is written
    found = private_reaches(probe, "from .registry import _hidden\nfrom . import charts\ncharts._axis\n")
    assert any("costmodel.registry import _hidden" in f for f in found), found
    assert any("costmodel.charts._axis" in f for f in found), found


def test_nothing_imports_another_modules_private_names():
    wrong = [w for path in MODULES.values() for w in private_reaches(path)]
    assert not wrong, wrong


def test_what_computes_and_the_data_for_charts_draw_nothing():
    # every module that computes or checks, and the chart data, with everything of ours they
    # import: no drawing library among their imports (altair stays with the charts)
    todo = [m for m in MODULES if not is_presentation(m)] + sorted(DATA_FOR_DRAWINGS)
    seen: set[str] = set()
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(GRAPH[m])
    assert "costmodel.chartdata" in seen and "costmodel.uncertainty.grid" in seen
    wrong = {m: sorted(libraries_of(MODULES[m]) & DRAWING) for m in sorted(seen)
             if libraries_of(MODULES[m]) & DRAWING}
    assert not wrong, wrong
    assert "altair" in libraries_of(MODULES["costmodel.charts"])  # the check reads libraries at all
