"""The resolved point: parameters checked once at an edge of the program (a command's options, a
notebook's starting values, a file read in), with each value's origin, then passed along unchecked;
``registry.resolve`` is called at those edges only (read from the source)."""

import ast
import json
import pickle
from pathlib import Path

import pytest

from costmodel import evaluate, paramfile, presets, registry
from costmodel.errors import UserError
from costmodel.uncertainty import flip_values

PACKAGE = Path(__file__).resolve().parents[1] / "costmodel"

#: the modules that build a point from raw values: where values enter the program
EDGES = {
    "costmodel.registry": "defines resolve",
    "costmodel.presets": "the layering of --params/--workload/--preset/--set, and workload files",
    "costmodel.paramfile": "a parameter file read in (ParamSet.point)",
    "costmodel.widgets": "the notebook's controls, as a person moves them",
    "costmodel.commands.params_cmd": "`costmodel params` without a shipped set",
}
#: the functions that resolve raw values (``registry.changed`` / ``Point.replace`` make a new point
#: from a checked one and may be called anywhere)
RESOLVERS = {"resolve", "resolve_layers"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolve_calls(name: str, text: str) -> list[str]:
    """``module:line`` of each call of a resolver in ``text``: ``registry.resolve(...)`` (the
    module imported under any name) or a resolver imported by name."""
    tree = ast.parse(text)
    registry_names, direct = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            for a in node.names:
                if a.name == "registry":
                    registry_names.add(a.asname or a.name)
                elif (node.module or "").endswith("registry") and a.name in RESOLVERS:
                    direct.add(a.asname or a.name)
        elif isinstance(node, ast.Import):
            registry_names |= {a.asname or a.name for a in node.names if a.name == "costmodel.registry"}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if (isinstance(f, ast.Attribute) and f.attr in RESOLVERS
                and ast.unparse(f.value) in registry_names | {"costmodel.registry"}) \
                or (isinstance(f, ast.Name) and f.id in direct):
            found.append(f"{name}:{node.lineno}")
    return found


def test_the_check_sees_each_form():
    text = ("from . import registry\nfrom .registry import resolve as r\nimport costmodel.registry\n"
            "registry.resolve({})\nr()\ncostmodel.registry.resolve_layers()\nregistry.as_point({})\n")
    assert resolve_calls("costmodel.x", text) == ["costmodel.x:4", "costmodel.x:5", "costmodel.x:6"]


def test_resolve_is_called_only_at_the_edges():
    calls = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        calls[name] = resolve_calls(name, path.read_text())
    assert calls["costmodel.presets"], "the check read no call at all"
    wrong = [c for name, found in calls.items() if name not in EDGES for c in found]
    assert not wrong, (
        f"registry.resolve called inside the program at {', '.join(wrong)}: take the caller's point with "
        "registry.as_point(values) (a Point passes unchecked, a plain dict is checked once), make a changed "
        "point with point.with_values(...) or registry.changed(values, changes), or, if this module is where "
        "values enter the program, add it to EDGES in tests/test_point.py with the reason")


# ---- the point itself -------------------------------------------------------------------------


def test_a_point_is_read_only_and_changes_only_checked():
    p = registry.resolve({"cpus": 32, "remote_cpus": 16})
    for change in (lambda: p.__setitem__("cpus", 2), lambda: p.update(cpus=2), lambda: p.pop("cpus"),
                   lambda: p.setdefault("cpus", 2), lambda: p.clear(), lambda: p.__delitem__("cpus")):
        with pytest.raises(TypeError, match="with_values"):
            change()
    assert p["cpus"] == 32 and p["remote_cpus"] == 16
    with pytest.raises(UserError, match="remote_cpus=16 must be at most cpus - 1"):
        p.with_values(cpus=8)
    with pytest.raises(UserError, match="batch_size"):
        p.with_values(batch_size="many")
    # a change may mend what the old values alone would break, as one resolve of the whole would
    q = p.replace({"remote_cpus": 40, "cpus": 64}, origin="mine")
    assert (q["remote_cpus"], q["cpus"], q.origin("cpus"), p["cpus"]) == (40, 64, "mine", 32)


def test_a_point_reads_as_the_dict_resolve_returned():
    raw = {"cpus": "32", "remote_cpus": 16.0, "gap_model": "fixed_time"}
    p = registry.resolve(raw)
    want = registry.defaults()
    want.update(cpus=32, remote_cpus=16, gap_model="fixed_time")
    assert dict(p) == want and p == want and isinstance(p["cpus"], int)
    assert json.loads(json.dumps(p)) == json.loads(json.dumps(want))
    again = pickle.loads(pickle.dumps(p))
    assert type(again) is registry.Point and again == p and again.origins == p.origins
    assert dict(p, cpus=4)["cpus"] == 4 and type(p.as_dict()) is dict


def test_origins_name_each_layer():
    ps = paramfile.load(paramfile.default_params_path())
    p, policy = presets.compose(ps.values(), "fork-snapshot", "linux-6.12", {"remote_cpus": 3},
                                paramfile_origin=ps.name)
    wl = presets.workload_preset("fork-snapshot").values
    kp = registry.preset("linux-6.12").values
    for name in registry.PARAMS:
        want = ("--set" if name == "remote_cpus" else "preset linux-6.12" if name in kp
                else "workload fork-snapshot" if name in wl else ps.name if name in ps.parameters else "default")
        assert p.origin(name) == want, name
    assert policy == "drain_local"
    assert ps.point().origin(next(iter(ps.parameters))) == ps.name
    with pytest.raises(UserError, match="unknown parameter"):
        p.origin("no_such_thing")


# ---- passed along unchecked ----------------------------------------------------------------------


@pytest.fixture
def counted_checks(monkeypatch):
    """Counts every parse and consistency check the registry makes."""
    counts = {"parse": 0, "rules": 0}
    parse, rules = registry.parse_value, registry.check_consistency

    def counting_parse(name, raw):
        counts["parse"] += 1
        return parse(name, raw)

    def counting_rules(values):
        counts["rules"] += 1
        return rules(values)

    monkeypatch.setattr(registry, "parse_value", counting_parse)
    monkeypatch.setattr(registry, "check_consistency", counting_rules)
    return counts


def test_a_point_is_not_checked_again_and_a_plain_dict_is(counted_checks):
    point = registry.resolve({"cpus": 16, "remote_cpus": 4})
    counted_checks.update(parse=0, rules=0)
    assert registry.as_point(point) is point
    flips = flip_values(point, ["remote_drain_ns"])
    evaluate.sweep({"remote_cpus": [2, 3]}, base=point)
    assert counted_checks["rules"] == 0 and flips
    # the sweep parses its own axis values (raw input), nothing of the point
    assert counted_checks["parse"] == 2
    counted_checks.update(parse=0, rules=0)
    plain = dict(point)
    flip_values(plain, ["remote_drain_ns"])
    assert counted_checks["rules"] == 1 and counted_checks["parse"] == len(plain)
    with pytest.raises(UserError, match="remote_cpus=20 must be at most cpus - 1"):
        flip_values(dict(point, remote_cpus=20), ["remote_drain_ns"])
