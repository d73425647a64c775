"""Parameter files: the shipped schema matches the registry; every shipped file loads and survives
a round trip; each kind of bad file is one clear error naming the field, and nothing is
overwritten; migrations of older versions print their note, newer versions are refused; show and
diff; --params on the commands."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from costmodel import paramfile, registry
from costmodel.cli import main
from costmodel.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "data" / "reference").glob("*.json")) + sorted((ROOT / "data" / "params").glob("*.json"))


def minimal_doc() -> dict:
    """A valid document written out by hand: every machine parameter at its registry default."""
    params = {}
    for name, e in registry.PARAMS.items():
        if e.kind != registry.MACHINE:
            continue
        if isinstance(e, registry.Numeric):
            params[name] = {"value": e.default, "unit": e.unit, "ci_low": None, "ci_high": None,
                            "source": "assumed", "note": "registry default"}
        else:
            params[name] = {"value": e.default, "source": "assumed", "note": "registry default"}
    params["alloc_ns"].update(value=310.0, ci_low=280.0, ci_high=350.0, source="measured", note="fitted")
    from costmodel.model import model_hash

    return {"schema_version": 1, "model_hash": model_hash(), "name": "hand", "description": "written by hand",
            "parameters": params, "fit": [], "provenance": {"cpu_model": "test"}}


def write(tmp_path, doc, name="p.json") -> Path:
    p = tmp_path / name
    p.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return p


# ---- schema and shipped files --------------------------------------------------------------


def test_shipped_schema_is_the_one_generated_from_the_registry():
    """The published copy (for editors and other tools; loading checks against the registry)."""
    from costmodel.generate import schema_difference, stale_message

    shipped = json.loads(paramfile.schema_path().read_text())
    assert shipped == paramfile.json_schema(), stale_message(
        "costmodel/schemas/" + paramfile.schema_path().name, schema_difference(shipped, paramfile.json_schema()))


def test_a_stale_shipped_schema_says_what_it_lacks_and_the_command(monkeypatch):
    from costmodel.generate import COMMAND, schema_difference, stale_message

    shipped = paramfile.json_schema()
    new = registry.Numeric("test_only_step_ns", "ns", 0.0, 0.0, 1e6, "A test-only cost step.", registry.MACHINE,
                           introduced=registry.REGISTRY_GENERATION + 1)
    monkeypatch.setitem(registry.PARAMS, new.name, new)
    monkeypatch.setitem(registry.NUMERIC, new.name, new)
    message = stale_message("paramset-v1.json", schema_difference(shipped, paramfile.json_schema()))
    assert message == f"paramset-v1.json is stale (lacks test_only_step_ns): run `{COMMAND}`"


def test_minimal_document_passes_json_schema_and_registry(tmp_path):
    import jsonschema

    doc = minimal_doc()
    jsonschema.validate(doc, paramfile.shipped_schema())
    ps = paramfile.load(write(tmp_path, doc))
    assert ps.parameters["alloc_ns"].value == 310.0 and ps.parameters["alloc_ns"].ci_low == 280.0
    assert paramfile.load_values(write(tmp_path, doc, "q.json"))["alloc_ns"] == 310.0


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_file_loads_validates_and_round_trips(path, tmp_path):
    import jsonschema

    text = path.read_text()
    jsonschema.validate(json.loads(text), paramfile.shipped_schema())
    ps = paramfile.load(path)
    out = paramfile.save(ps, tmp_path / path.name)
    again = paramfile.load(out)
    assert again.to_dict() == ps.to_dict()
    assert out.read_text() == text  # files are written in canonical form
    registry.resolve(base=again.values())


def test_round_trip_keeps_types_and_intervals(tmp_path):
    ps = paramfile.load(write(tmp_path, minimal_doc()))
    out = paramfile.save(ps, tmp_path / "out.json")
    back = paramfile.load(out)
    assert back.to_dict() == ps.to_dict()
    assert isinstance(back.values()["page_bytes"], int)
    assert isinstance(back.values()["shootdown_model"], str)


# ---- bad files -----------------------------------------------------------------------------


def _set(doc, path, value):
    d = doc
    for key in path[:-1]:
        d = d[key]
    d[path[-1]] = value
    return doc


def _del(doc, path):
    d = doc
    for key in path[:-1]:
        d = d[key]
    del d[path[-1]]
    return doc


BAD = {
    "missing unit": (lambda d: _del(d, ["parameters", "alloc_ns", "unit"]), "parameters.alloc_ns.unit is missing"),
    "missing value": (lambda d: _del(d, ["parameters", "free_ns", "value"]), "parameters.free_ns.value is missing"),
    "missing top-level field": (lambda d: _del(d, ["provenance"]), "provenance is missing"),
    "missing schema_version": (lambda d: _del(d, ["schema_version"]), "schema_version is missing"),
    "wrong unit": (lambda d: _set(d, ["parameters", "alloc_ns", "unit"], "us"),
                   "parameters.alloc_ns.unit is 'us' but alloc_ns is in 'ns'"),
    "negative": (lambda d: _set(d, ["parameters", "free_ns", "value"], -5), "parameters.free_ns.value is -5, negative"),
    "out of bounds": (lambda d: _set(d, ["parameters", "copy_bandwidth_gbps", "value"], 5000),
                      "copy_bandwidth_gbps=5000 is out of bounds"),
    "expression string": (lambda d: _set(d, ["parameters", "alloc_ns", "value"], "2*3"),
                          "parameters.alloc_ns.value is the string '2*3'; write a plain JSON number"),
    "numeric string": (lambda d: _set(d, ["parameters", "alloc_ns", "value"], "300"),
                       "parameters.alloc_ns.value is the string '300'"),
    "boolean": (lambda d: _set(d, ["parameters", "alloc_ns", "value"], True), "expected a number in ns, got the boolean true"),
    "string bound": (lambda d: _set(d, ["parameters", "alloc_ns", "ci_low"], "1e3"), "parameters.alloc_ns.ci_low"),
    "swapped interval": (lambda d: _set(d, ["parameters", "alloc_ns", "ci_low"], 400.0), "ci_low 400 is above ci_high 350"),
    "half interval": (lambda d: _set(d, ["parameters", "alloc_ns", "ci_high"], None), "give both ci_low and ci_high"),
    "unknown parameter": (lambda d: _set(d, ["parameters", "alloc_nss"], {"value": 1}), "unknown parameter 'alloc_nss'; did you mean alloc_ns?"),
    "bad source": (lambda d: _set(d, ["parameters", "alloc_ns", "source"], "guessed"),
                   "parameters.alloc_ns.source is the string 'guessed'; choose one of measured, published, assumed"),
    "bad categorical": (lambda d: _set(d, ["parameters", "shootdown_model", "value"], "quadratic"),
                        "parameters.shootdown_model.value: shootdown_model: 'quadratic' is not allowed"),
    "fractional integer": (lambda d: _set(d, ["parameters", "page_bytes", "value"], 4096.5), "must be a whole number"),
    "newer schema": (lambda d: _set(d, ["schema_version"], 2), "schema_version 2 is newer than this costmodel reads"),
    "older schema without migration": (lambda d: _set(d, ["schema_version"], 0),
                                       "schema_version 0 is older than any this costmodel can migrate"),
    "schema version as text": (lambda d: _set(d, ["schema_version"], "1"), "schema_version: expected a whole number"),
    "inconsistent": (lambda d: _set(d, ["parameters", "remote_cpus"],
                                    {"value": 9, "unit": "CPUs", "ci_low": None, "ci_high": None, "source": "assumed", "note": ""}),
                     "remote_cpus=9 must be at most cpus - 1"),
    "bad fit record": (lambda d: _set(d, ["fit"], [{"name": "x"}]), "fit[0]: 'method' is a required property"),
    "extra top-level field": (lambda d: _set(d, ["comment"], "hi"), "Additional properties are not allowed ('comment'"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_document_is_one_clear_error(case, tmp_path):
    mutate, needle = BAD[case]
    path = write(tmp_path, mutate(minimal_doc()))
    with pytest.raises(UserError) as exc:
        paramfile.load(path)
    msg = str(exc.value)
    assert needle in msg, msg
    assert msg.startswith(str(path)) and "\n" not in msg


BAD_TEXT = {
    "NaN": ('"value": 310.0', '"value": NaN', "parameters.alloc_ns.value: NaN is not a finite number"),
    "Infinity": ('"value": 310.0', '"value": -Infinity', "parameters.alloc_ns.value: -Infinity is not a finite number"),
    "overflow": ('"value": 310.0', '"value": 1e999', "parameters.alloc_ns.value: 1e999 is not a finite number"),
    "NaN bound": ('"ci_low": 280.0', '"ci_low": NaN', "parameters.alloc_ns.ci_low: NaN is not a finite number"),
    "duplicate key": ('"value": 310.0', '"value": 310.0, "value": 5', "key 'value' appears twice"),
}


@pytest.mark.parametrize("case", list(BAD_TEXT))
def test_bad_json_text_is_one_clear_error(case, tmp_path):
    old, new, needle = BAD_TEXT[case]
    text = json.dumps(minimal_doc())
    assert old in text
    path = write(tmp_path, text.replace(old, new, 1))
    with pytest.raises(UserError, match=needle.replace("(", r"\(")):
        paramfile.load(path)


def test_truncated_json(tmp_path):
    text = json.dumps(minimal_doc(), indent=2)
    path = write(tmp_path, text[: len(text) // 2])
    with pytest.raises(UserError, match=r"not valid JSON at line \d+ column \d+: .*truncated"):
        paramfile.load(path)


def test_an_expression_is_never_evaluated(tmp_path):
    marker = tmp_path / "pwned"
    doc = _set(minimal_doc(), ["parameters", "alloc_ns", "value"], f"__import__('os').system('touch {marker}')")
    path = write(tmp_path, doc)
    with pytest.raises(UserError, match="write a plain JSON number"):
        paramfile.load(path)
    assert main(["eval", "--params", str(path)]) == 2
    assert not marker.exists()


def test_not_a_file(tmp_path):
    with pytest.raises(UserError, match="no such parameter file"):
        paramfile.load(tmp_path / "nope.json")
    with pytest.raises(UserError, match="is a directory"):
        paramfile.load(tmp_path)
    with pytest.raises(UserError, match="expected a JSON object"):
        paramfile.load(write(tmp_path, "[1, 2]"))


def test_saving_a_bad_set_overwrites_nothing(tmp_path):
    good = paramfile.load(write(tmp_path, minimal_doc(), "good.json"))
    target = paramfile.save(good, tmp_path / "target.json")
    before = target.read_bytes()
    bad = copy.deepcopy(good)
    bad.parameters["free_ns"].value = -1.0
    with pytest.raises(UserError, match="negative"):
        paramfile.save(bad, target, force=True)
    bad.parameters["free_ns"].value = float("nan")
    with pytest.raises((UserError, ValueError)):
        paramfile.save(bad, target, force=True)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.json", "target.json"]  # no temp files left
    with pytest.raises(UserError, match="already exists; pass --force"):
        paramfile.save(good, target)


@pytest.mark.parametrize("case", ["wrong unit", "expression string", "newer schema", "missing unit"])
def test_cli_bad_file_exit_2_one_line(case, tmp_path, capsys):
    mutate, needle = BAD[case]
    path = write(tmp_path, mutate(minimal_doc()))
    before = path.read_bytes()
    for argv in (["params", "show", str(path)], ["eval", "--params", str(path)],
                 ["params", "diff", str(path), str(path)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and needle in err and err.startswith(f"costmodel {argv[0]}: error:")
    assert path.read_bytes() == before


def test_cli_truncated_file_exit_2(tmp_path, capsys):
    text = json.dumps(minimal_doc())
    path = write(tmp_path, text[:-40])
    assert main(["params", "show", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not valid JSON" in err


# ---- versions ------------------------------------------------------------------------------


def test_older_version_is_migrated_with_its_note(tmp_path, monkeypatch, capsys):
    """A fake version 0 that called the interval 'range': [lo, hi] registers its migration."""
    monkeypatch.setattr(paramfile, "MIGRATIONS", {})

    def v0_to_v1(doc):
        for entry in doc["parameters"].values():
            if "range" in entry:
                entry["ci_low"], entry["ci_high"] = entry.pop("range")
        return doc

    paramfile.register_migration(0, v0_to_v1, "per-parameter 'range' became ci_low and ci_high")
    doc = minimal_doc()
    doc["schema_version"] = 0
    for entry in doc["parameters"].values():
        if "ci_low" in entry:
            entry["range"] = [entry.pop("ci_low"), entry.pop("ci_high")]
    path = write(tmp_path, doc)
    ps = paramfile.load(path)
    err = capsys.readouterr().err
    assert f"note: {path}: migrated schema_version 0 -> 1: per-parameter 'range' became ci_low and ci_high" in err
    assert ps.schema_version == 1 and ps.parameters["alloc_ns"].ci_low == 280.0
    assert ps.to_dict() == paramfile.load(write(tmp_path, minimal_doc(), "v1.json")).to_dict()


def test_migration_table_is_consistent():
    assert paramfile.SCHEMA_VERSION in paramfile.CHANGES
    for v, m in paramfile.MIGRATIONS.items():
        assert m.from_version == v and m.to_version <= paramfile.SCHEMA_VERSION and m.note
        assert m.to_version in paramfile.CHANGES


# ---- show, diff, --params, default ---------------------------------------------------------


def test_show_lists_every_parameter_with_source(tmp_path, capsys):
    path = write(tmp_path, minimal_doc())
    assert main(["params", "show", str(path)]) == 0
    out = capsys.readouterr().out
    for name in paramfile.required_parameters():
        assert name in out
    assert "measured" in out and "280 .. 350" in out and "matches this model" in out
    assert main(["params", "show", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == paramfile.load(path).to_dict()


def test_diff_flags_differences_beyond_both_intervals(tmp_path, capsys):
    a = minimal_doc()
    b = minimal_doc()
    b["parameters"]["alloc_ns"].update(value=500.0, ci_low=450.0, ci_high=560.0)   # beyond both
    b["parameters"]["free_ns"].update(value=160.0)                                  # no intervals
    b["parameters"]["shootdown_model"]["value"] = "broadcast"
    pa, pb = write(tmp_path, a, "a.json"), write(tmp_path, b, "b.json")
    rows = {r["parameter"]: r for r in paramfile.diff_sets(paramfile.load(pa), paramfile.load(pb))}
    assert rows["alloc_ns"]["verdict"] == "EXCEEDS BOTH INTERVALS" and rows["alloc_ns"]["difference"] == 190.0
    assert rows["free_ns"]["verdict"] == "differs (no intervals)"
    assert rows["shootdown_model"]["verdict"] == "differs"
    assert rows["reuse_ns"]["verdict"] == "same"
    b["parameters"]["alloc_ns"].update(value=340.0, ci_low=300.0, ci_high=380.0)    # overlaps
    pb = write(tmp_path, b, "b.json")
    rows = {r["parameter"]: r for r in paramfile.diff_sets(paramfile.load(pa), paramfile.load(pb))}
    assert rows["alloc_ns"]["verdict"] == "within an interval"
    b["parameters"]["alloc_ns"].update(value=500.0, ci_low=None, ci_high=None)       # outside A's only interval
    pb = write(tmp_path, b, "b.json")
    assert main(["params", "diff", str(pa), str(pb)]) == 0
    out = capsys.readouterr().out
    assert "exceeds the one interval" in out and "beyond both intervals: none" in out
    assert main(["params", "diff", str(pa), str(pb), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {r["parameter"] for r in doc["parameters"]} >= set(paramfile.required_parameters())


def test_diff_of_shipped_milan_sets_flags_the_shootdown():
    ref = ROOT / "data" / "reference"
    rows = {r["parameter"]: r for r in paramfile.diff_sets(paramfile.load(ref / "milan72-ipi.json"),
                                                           paramfile.load(ref / "milan72-invlpgb.json"))}
    assert rows["shootdown_per_cpu_ns"]["verdict"] == "exceeds the one interval"
    assert rows["shootdown_model"]["verdict"] == "differs"
    assert rows["alloc_ns"]["verdict"] == "same"


def test_params_option_feeds_the_model(tmp_path, capsys):
    path = write(tmp_path, minimal_doc())
    assert main(["eval", "--json", "--params", str(path), "--set", "free_ns=170"]) == 0
    params = json.loads(capsys.readouterr().out)["params"]
    assert params["alloc_ns"] == 310.0 and params["free_ns"] == 170.0  # file, then --set on top


def test_default_params_path(monkeypatch, tmp_path):
    monkeypatch.setattr(paramfile, "PARAMS_DIR", tmp_path)
    with pytest.raises(UserError, match="costmodel calibrate data/measurements/"):
        paramfile.default_params_path()
    target = tmp_path / f"{paramfile.DEFAULT_SET}.json"
    target.write_text("{}")
    assert paramfile.default_params_path() == target


def test_a_machine_parameter_newer_than_a_file_migrates_in_as_assumed():
    """A file of an earlier registry generation lacking a parameter introduced since loads: the
    registry default, marked assumed, with one printed note naming it."""
    import io

    newer = next(n for n in paramfile.required_parameters() if registry.PARAMS[n].introduced > 1)
    doc = minimal_doc()
    doc.pop("registry_generation", None)  # written before generations were recorded: generation 1
    doc["parameters"].pop(newer, None)
    notes = io.StringIO()
    ps = paramfile.from_document(doc, "old.json", notes_to=notes)
    e = ps.parameters[newer]
    assert e.value == registry.NUMERIC[newer].default and e.source == "assumed"
    assert newer in notes.getvalue() and notes.getvalue().count("\n") == 1


def test_a_parameter_the_files_generation_had_must_be_there():
    """Missing a parameter its own registry generation already had is an error, not a silent default."""
    doc = minimal_doc()
    doc["registry_generation"] = registry.REGISTRY_GENERATION
    del doc["parameters"]["local_flush_ns"]
    with pytest.raises(UserError, match="parameters.local_flush_ns is missing"):
        paramfile.from_document(doc, "current.json")


def test_a_file_of_a_newer_registry_generation_is_refused():
    doc = minimal_doc()
    doc["registry_generation"] = registry.REGISTRY_GENERATION + 1
    with pytest.raises(UserError, match="registry_generation"):
        paramfile.from_document(doc, "future.json")


def test_old_files_load_after_a_parameter_is_added_at_run_time(monkeypatch, tmp_path):
    """Add a machine parameter to the registry at run time (as the next version will): every shipped
    file still loads, the new parameter taken as its assumed default with its declared range."""
    import io

    new = registry.Numeric("test_only_step_ns", "ns", 25.0, 0.0, 1e6, "A test-only cost step.", registry.MACHINE,
                           plausible=(5.0, 100.0), plausible_basis="test range",
                           introduced=registry.REGISTRY_GENERATION + 1)
    monkeypatch.setattr(registry, "REGISTRY_GENERATION", registry.REGISTRY_GENERATION + 1)
    monkeypatch.setitem(registry.PARAMS, new.name, new)
    monkeypatch.setitem(registry.NUMERIC, new.name, new)
    monkeypatch.setitem(registry.S, new.name, new.symbol)
    # nothing regenerated: files are checked against the registry as loaded, not the shipped schema
    files = sorted((ROOT / "data" / "params").glob("*.json")) + sorted((ROOT / "data" / "reference").glob("*.json"))
    assert files
    for path in files:
        notes = io.StringIO()
        ps = paramfile.load(path, notes_to=notes)
        e = ps.parameters["test_only_step_ns"]
        assert (e.value, e.source, e.ci_low, e.ci_high) == (25.0, "assumed", 5.0, 100.0)
        assert "test_only_step_ns" in notes.getvalue()


def test_params_diff_compares_three_or_more_sets(capsys):
    """`params diff A B C`: one column per set; a parameter is flagged when some pair lies beyond both
    of its intervals (checked here from the files' own numbers)."""
    from costmodel.cli import main

    files = sorted((ROOT / "data" / "params").glob("*.json")) + [ROOT / "data" / "reference" / "milan72-ipi.json"]
    assert main(["params", "diff", *map(str, files), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [s["file"] for s in doc["sets"]] == [str(f) for f in files]
    raw = [json.loads(f.read_text())["parameters"] for f in files]

    def beyond(a, b):
        return (a["ci_low"] is not None and b["ci_low"] is not None
                and not a["ci_low"] <= b["value"] <= a["ci_high"] and not b["ci_low"] <= a["value"] <= b["ci_high"])

    for row in doc["parameters"]:
        name = row["parameter"]
        entries = [r.get(name) for r in raw]
        numeric = [e for e in entries if e is not None and "unit" in e]
        want = any(beyond(a, b) for i, a in enumerate(numeric) for b in numeric[i + 1:])
        assert (row["verdict"] == "EXCEEDS BOTH INTERVALS") == want, name


# ---- small messages ------------------------------------------------------------


def test_a_byte_order_mark_is_accepted(tmp_path, capsys):
    src = paramfile.default_params_path()
    f = tmp_path / "bom.json"
    f.write_bytes(b"\xef\xbb\xbf" + src.read_bytes())
    assert paramfile.load(f).values() == paramfile.load(src).values()
    assert main(["params", "show", str(f)]) == 0


def test_truncated_and_csv_files_say_where_and_what(tmp_path, capsys):
    src = paramfile.default_params_path().read_text()
    f = tmp_path / "cut.json"
    f.write_text(src[: len(src) // 2])
    assert main(["params", "show", str(f)]) == 2
    err = capsys.readouterr().err
    assert "line " in err and "column " in err and "truncated" in err
    c = tmp_path / "m.csv"
    c.write_text("probe,op,n\ncopy,a,3\n")
    assert main(["params", "show", str(c)]) == 2
    err = capsys.readouterr().err
    assert "not a parameter file" in err and "truncated?" not in err


def test_params_takes_a_committed_sets_name(capsys):
    """eval prints the set's name; that name is accepted back by --params."""
    from pathlib import Path

    for label, path in paramfile.committed_sets().items():
        name = Path(path).stem
        assert main(["eval", "--params", name, "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["params"]["fault_entry_ns"] == paramfile.load(path).values()["fault_entry_ns"]
        assert name in doc["parameter_set"]
