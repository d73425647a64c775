"""`costmodel regenerate`: one command rebuilds what the registry and the shipped data generate; a new
parameter needs no regenerated file to load, and every stale file is named with the command."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from costmodel import generate, paramfile, registry
from costmodel.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def new_parameter(monkeypatch):
    """A machine parameter declared at run time, as the next version will (nothing regenerated)."""
    new = registry.Numeric("test_only_step_ns", "ns", 0.0, 0.0, 1e6, "A test-only cost step.", registry.MACHINE,
                           introduced=registry.REGISTRY_GENERATION + 1)
    monkeypatch.setattr(registry, "REGISTRY_GENERATION", registry.REGISTRY_GENERATION + 1)
    monkeypatch.setitem(registry.PARAMS, new.name, new)
    monkeypatch.setitem(registry.NUMERIC, new.name, new)
    monkeypatch.setitem(registry.S, new.name, new.symbol)
    return new.name


def test_the_quick_artefacts_are_up_to_date(capsys):
    """Schema, README table and reference sets (the calibrated sets: test_calibrate's rebuild test)."""
    code = main(["regenerate", "--check", "--only", "schema,readme,reference"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.strip() == "everything generated is up to date"
    assert "[1/3] schema" in err and "[3/3] reference" in err and "STALE" not in err


def test_a_new_parameter_loads_and_evaluates_before_anything_is_regenerated(new_parameter, capsys):
    """The failure this replaced: `eval` on a shipped set once stopped at the stale schema's
    'Additional properties are not allowed'. Now the set loads, the new parameter taken as its
    assumed default, and the note names the command that rebuilds the set."""
    code = main(["eval", "--json", "--params", str(paramfile.PARAMS_DIR / f"{paramfile.DEFAULT_SET}.json")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["params"][new_parameter] == 0.0
    assert new_parameter in err and "`costmodel regenerate` rebuilds it" in err


def test_check_names_each_stale_file_and_writes_nothing(new_parameter, capsys):
    before = {p: p.read_bytes() for p in (paramfile.schema_path(), generate.README)}
    code = main(["regenerate", "--check", "--only", "schema,readme"])
    out, err = capsys.readouterr()
    assert code == 1
    assert out.strip() == "2 stale: costmodel/schemas/paramset-v1.json, README.md; run `costmodel regenerate`"
    assert f"costmodel/schemas/paramset-v1.json: STALE (lacks {new_parameter})" in err
    assert f"README.md: STALE (lacks {new_parameter})" in err
    assert all(p.read_bytes() == b for p, b in before.items())


def test_regenerate_rewrites_the_schema_and_the_readme_table(new_parameter, monkeypatch, tmp_path, capsys):
    schema, readme = tmp_path / "paramset-v1.json", tmp_path / "README.md"
    schema.write_bytes(paramfile.schema_path().read_bytes())
    readme.write_bytes(generate.README.read_bytes())
    monkeypatch.setattr(generate, "schema_path", lambda version=paramfile.SCHEMA_VERSION: schema)
    monkeypatch.setattr(generate, "README", readme)
    assert main(["regenerate", "--only", "schema,readme"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("rewrote 2 file(s)") and err.count("rewritten (lacks test_only_step_ns)") == 2
    assert new_parameter in json.loads(schema.read_text())["properties"]["parameters"]["properties"]
    assert generate.parameter_table_markdown() in readme.read_text()
    # the rest of the README untouched: only the new row was added
    old, new = (ROOT / "README.md").read_text().splitlines(), readme.read_text().splitlines()
    assert [l for l in new if l not in old] == [f"| `{new_parameter}` | machine | ns | 0 | 0 .. 1,000,000 |"
                                                " A test-only cost step. |"]
    assert len(new) == len(old) + 1
    assert main(["regenerate", "--check", "--only", "schema,readme"]) == 0


def test_an_unknown_part_is_one_line_and_exit_2(capsys):
    assert main(["regenerate", "--check", "--only", "schema,tables"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == ("costmodel regenerate: error: --only 'tables': choose among schema, readme, reference,"
                           " params")


def test_first_difference_names_the_first_key_or_value():
    assert generate.first_difference({"a": 1, "b": {"c": 2}}, {"a": 1, "b": {"c": 2}}) == ""
    assert generate.first_difference({"a": 1, "b": {"c": 2}}, {"a": 1, "b": {}}) == "lacks b.c"
    assert generate.first_difference({"a": 1}, {"a": 1, "z": 0}) == "still has z"
    assert generate.first_difference({"a": [1, {"x": 2}]}, {"a": [1, {"x": 3}]}) == "a.[1].x differs"


def test_a_stale_set_is_named_by_what_differs_not_by_its_hash():
    path = paramfile.PARAMS_DIR / f"{paramfile.DEFAULT_SET}.json"
    text = path.read_text()
    doc = json.loads(text)
    older = dict(doc, model_hash="0" * 16, parameters={k: v for k, v in doc["parameters"].items() if k != "free_ns"})
    assert generate.difference(path, json.dumps(older), text) == "lacks parameters.free_ns"
    assert generate.difference(path, json.dumps(dict(doc, model_hash="0" * 16)), text) == "model_hash differs"
    assert generate.difference(path, text, text) == ""
    assert generate.difference(path, None, text) == "missing"
