"""The CLI: output shape and one-line errors with exit status 2 for every kind of bad input."""

import json
import subprocess
import sys

import pytest

from costmodel import registry
from costmodel.cli import main
from costmodel.model import BREAKDOWN, OUTPUTS, POLICIES


def run(capsys, *argv):
    """Exit status, stdout and stderr of one CLI call; argparse's own usage errors exit too."""
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_eval_json_shape(capsys):
    code, out, err = run(capsys, "eval", "--json", "--set", "remote_cpus=7", "--set", "cpus=16")
    assert code == 0, err
    doc = json.loads(out)
    assert set(doc) == {"parameter_set", "params", "policies"}
    assert set(doc["params"]) == set(registry.PARAMS)
    assert doc["params"]["remote_cpus"] == 7
    assert set(doc["policies"]) == set(POLICIES)
    for o in doc["policies"].values():
        assert set(o) == set(OUTPUTS) | {"breakdown_ns"}
        assert set(o["breakdown_ns"]) == set(BREAKDOWN)


def test_eval_table_names_every_policy_and_the_preset(capsys):
    code, out, _ = run(capsys, "eval", "--preset", "linux-5.13")
    assert code == 0
    for p in POLICIES:
        assert p in out
    assert "*copy_if_referenced" in out


def test_preset_sets_batch_size(capsys):
    code, out, _ = run(capsys, "eval", "--json", "--preset", "linux-5.18")
    assert json.loads(out)["params"]["batch_size"] == 15


@pytest.mark.parametrize("argv,needle", [
    (["eval", "--set", "remote_cpu=3"], "unknown parameter 'remote_cpu'; did you mean remote_cpus?"),
    (["eval", "--set", "remote_cpus=abc"], "remote_cpus: 'abc' is not a number"),
    (["eval", "--set", "remote_cpus=2.5"], "remote_cpus='2.5' must be a whole number"),
    (["eval", "--set", "p_same_cpu=1.5"], "p_same_cpu=1.5 is out of bounds; allowed 0 to 1"),
    (["eval", "--set", "wp_gap_s=nan"], "wp_gap_s: 'nan' is not a finite number"),
    (["eval", "--set", "wp_gap_s=inf"], "wp_gap_s: 'inf' is not a finite number"),
    (["eval", "--set", "gap_model=poisson"], "gap_model: 'poisson' is not allowed; choose one of"),
    (["eval", "--set", "batch_size=__import__('os').system('touch /tmp/pwned')"], "batch_size: \"__import__('os')"),
    (["eval", "--set", "remote_cpus"], "expected NAME=VALUE"),
    (["eval", "--set", "remote_cpus=9"], "remote_cpus=9 must be at most cpus - 1"),
    (["eval", "--set", "batch_position=31"], "batch_position=31 must be below batch_size=31"),
    (["eval", "--policy", "drain_some"], "unknown policy 'drain_some'"),
    (["eval", "--preset", "linux-9.9"], "invalid choice"),
    (["breakeven", "--policy", "drain_remote", "--against", "drain_local", "--solve-for", "gap_model"], "categorical"),
    (["sweep", "--vary", "remote_cpus=1:x:3", "-o", "/tmp/never.csv"], "remote_cpus: 'x' is not a number"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_expression_strings_are_never_evaluated(tmp_path):
    marker = tmp_path / "pwned"
    proc = subprocess.run([sys.executable, "-m", "costmodel.cli", "eval", "--set",
                           f"wp_gap_s=__import__('os').system('touch {marker}')"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert not marker.exists()
    assert proc.stderr.count("\n") == 1


def test_sweep_writes_tidy_csv_and_refuses_to_overwrite(capsys, tmp_path):
    import pandas as pd

    out = tmp_path / "s.csv"
    code, msg, err = run(capsys, "sweep", "--vary", "remote_cpus=0,1,2,3", "--vary", "shootdown_model=linear,broadcast",
                         "--policy", "drain_local", "--policy", "mapcount", "-o", str(out))
    assert code == 0, err
    df = pd.read_csv(out)
    assert len(df) == 4 * 2 * 2
    assert {"remote_cpus", "shootdown_model", "policy", "expected_ns", "breakdown_shootdown_ns"} <= set(df.columns)
    before = out.read_bytes()
    code, _, err = run(capsys, "sweep", "--vary", "remote_cpus=0,1", "-o", str(out))
    assert code == 2 and "--force" in err
    assert out.read_bytes() == before


def test_params_lists_every_registry_entry(capsys):
    code, out, _ = run(capsys, "params")
    assert code == 0
    for name in registry.PARAMS:
        assert name in out


# ---- what a new user trips over -----------------------------------------------------------------

import errno  # noqa: E402
import re  # noqa: E402
from pathlib import Path  # noqa: E402

from costmodel import presets  # noqa: E402
from costmodel.errors import UserError  # noqa: E402
from costmodel.cli import COMMANDS, build_parser  # noqa: E402

CLI = [sys.executable, "-m", "costmodel.cli"]
FIXTURES = Path(__file__).parent / "fixtures" / "bench"
REFERENCE = Path(__file__).parent.parent / "data" / "reference"
#: the command modules this file checks the help of (each has an EPILOG of examples)
OWN_COMMANDS = ["params", "policies", "presets", "breakeven", "simulate", "calibrate", "validate", "report"]


def one_line_error(code, err, needle=""):
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert needle in err, err


@pytest.mark.parametrize("argv,needle", [
    (["breakeven", "--policy", "drain_local", "--against", "drain_local", "--solve-for", "remote_cpus"],
     "--policy and --against are both drain_local"),
    (["breakeven", "--policy", "drain_local", "--against", "drain_remote", "--solve-for", "remote_cpus",
      "--rtol", "x"], "--rtol 'x'"),
    (["params", "list", "extra"], "params list takes no file, got 'extra'"),
    (["params", "extra"], "invalid choice"),
    (["params", "show"], "params show takes 1 file(s), got 0"),
    (["validate", "/nonexistent-dir", "--min-inside", "1.5"], "--min-inside '1.5': give a share from 0 to 1"),
])
def test_more_bad_input_is_one_line_and_exit_2(capsys, argv, needle):
    one_line_error(*run(capsys, *argv)[::2], needle)


def test_breakeven_names_the_limiting_parameter_and_how_to_widen(capsys):
    code, out, err = run(capsys, "breakeven", "--policy", "drain_remote", "--against", "drain_local",
                         "--solve-for", "remote_cpus")
    assert code == 0, err
    cpus = registry.PARAMS["cpus"].default
    assert f"remote_cpus = 0 .. {cpus - 1} CPUs" in out
    assert f"because cpus={cpus}" in out and "--set cpus=" in out


def test_breakeven_with_enough_cpus_gives_the_integer_where_the_order_changes(capsys):
    from costmodel.evaluate import evaluate_point

    code, out, err = run(capsys, "breakeven", "--policy", "drain_remote", "--against", "drain_local",
                         "--solve-for", "remote_cpus", "--set", "cpus=64", "--params", "none", "--json")
    assert code == 0, err
    doc = json.loads(out)
    v = registry.resolve({"cpus": 64})

    def cheaper(n):
        r = evaluate_point(dict(v, remote_cpus=n), ["drain_remote", "drain_local"])
        return "drain_remote" if r["drain_remote"]["expected_ns"] < r["drain_local"]["expected_ns"] else "drain_local"

    first = next(n for n in range(1, 64) if cheaper(n) != cheaper(n - 1))
    assert doc["roots"] == [first] and doc["integer"] is True and doc["rtol"] == 1e-9
    assert doc["regions"][0] == {"low": 0, "high": first - 1, "cheaper": cheaper(0)}
    assert doc["regions"][1]["low"] == first and doc["regions"][1]["cheaper"] == cheaper(first)


def test_params_list_refuses_extra_arguments_but_show_takes_one(capsys, tmp_path):
    one_line_error(*run(capsys, "params", "list", "a", "b")[::2], "params list takes no file")
    assert run(capsys, "params", "list")[0] == 0


def test_params_json_has_real_numbers_and_choice_lists(capsys):
    code, out, _ = run(capsys, "params", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert list(rows) == list(registry.PARAMS)
    for name, e in registry.PARAMS.items():
        r = rows[name]
        if isinstance(e, registry.Numeric):
            for key, want in (("default", e.default), ("low", e.low), ("high", e.high)):
                assert isinstance(r[key], (int, float)) and not isinstance(r[key], bool), (name, key, r[key])
                assert r[key] == want
                if e.integer:
                    assert isinstance(r[key], int), (name, key)
            assert "bounds" not in r and "choices" not in r
        else:
            assert r["choices"] == list(e.choices) and r["default"] == e.default


def test_params_table_prints_integers_as_integers(capsys):
    code, out, _ = run(capsys, "params")
    assert code == 0
    for name, e in registry.NUMERIC.items():
        if e.integer:
            line = next(l for l in out.splitlines() if l.startswith(name + " "))
            assert f"{int(e.low):,} .. {int(e.high):,}" in line, line
    assert "1,024 .. 2,097,152" in out  # page_bytes: once printed as 2.09715e+06


def test_output_error_on_stdout_is_one_line_exit_2(capsys, monkeypatch):
    class Full:
        def write(self, _):
            raise OSError(errno.ENOSPC, "No space left on device")

        def flush(self):
            pass

    monkeypatch.setattr(sys, "stdout", Full())
    code = main(["params", "--json"])
    err = capsys.readouterr().err
    one_line_error(code, err, "cannot write the output (No space left on device)")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_output_into_dev_full_is_one_line_exit_2():
    with open("/dev/full", "w") as full:
        proc = subprocess.run([*CLI, "params", "--json"], stdout=full, stderr=subprocess.PIPE, text=True)
    one_line_error(proc.returncode, proc.stderr, "No space left on device")


def test_broken_pipe_is_quiet():
    proc = subprocess.Popen([*CLI, "params", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first write
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert err == "" and proc.returncode == 0


def test_ctrl_c_exits_130_with_one_line(capsys, monkeypatch, tmp_path):
    import costmodel.validate

    def interrupted(directory):
        raise KeyboardInterrupt

    (tmp_path / "provenance.json").write_text("{}")
    monkeypatch.setattr(costmodel.validate, "model_vs_kernel", interrupted)
    code, out, err = run(capsys, "validate", str(tmp_path))
    assert code == 130
    assert err.strip() == "costmodel validate: interrupted"


# ---- output files: missing directories, --parents, -o - ----------------------------------------


@pytest.fixture
def fake_report(monkeypatch):
    """The report command's plumbing without building the real report (slow, tested elsewhere)."""
    import costmodel.report as report

    def build(values, **kw):
        return report.Report(html=f"<html>{values['cpus']}</html>")

    monkeypatch.setattr(report, "build_report", build)
    return build


def test_output_into_a_missing_directory_is_refused(capsys, tmp_path, fake_report):
    missing = tmp_path / "no" / "such"
    for argv in (["report", "-o", str(missing / "r.html")],
                 ["report", "-o", str(tmp_path / "r.html"), "--png", str(missing / "charts")],
                 ["calibrate", str(FIXTURES), "-o", str(missing / "p.json")]):
        if argv[0] == "calibrate":
            (tmp_path / "m").mkdir(exist_ok=True)
            (tmp_path / "m" / "provenance.json").write_text("{}")
            argv[1] = str(tmp_path / "m")
        code, out, err = run(capsys, *argv)
        one_line_error(code, err, f"{missing}: no such directory")
        assert "--parents" in err
    assert not (tmp_path / "no").exists()
    assert not (tmp_path / "r.html").exists()


def test_parents_creates_the_directory(capsys, tmp_path, fake_report):
    out = tmp_path / "a" / "b" / "r.html"
    code, msg, err = run(capsys, "report", "--set", "cpus=12", "-o", str(out), "--png", str(tmp_path / "c" / "d"),
                         "--parents")
    assert code == 0, err
    assert out.read_text() == "<html>12</html>"
    assert (tmp_path / "c" / "d").is_dir()


def test_png_makes_its_own_directory_but_not_those_above(capsys, tmp_path, fake_report):
    """--png DIR names an output, like -o FILE: it is made; a missing directory above it is not."""
    code, msg, err = run(capsys, "report", "-o", str(tmp_path / "r.html"), "--png", str(tmp_path / "charts"))
    assert code == 0, err
    assert (tmp_path / "charts").is_dir()


def test_dash_means_standard_output(capsys, tmp_path, fake_report):
    code, out, err = run(capsys, "report", "--set", "cpus=12", "-o", "-")
    assert code == 0, err
    assert out == "<html>12</html>"
    assert "wrote standard output" in err
    assert not Path("-").exists()


def test_atomic_write_output_and_check_output(tmp_path, capsys):
    from costmodel.atomic import check_output, write_output

    check_output("-")
    assert write_output("-", "text") == "standard output"
    assert capsys.readouterr().out == "text"
    target = tmp_path / "new" / "f.txt"
    with pytest.raises(UserError, match="no such directory"):
        check_output(target)
    with pytest.raises(UserError, match="no such directory"):
        write_output(target, "x")
    assert not target.parent.exists()
    assert write_output(target, "x", parents=True) == str(target)
    assert target.read_text() == "x"
    with pytest.raises(UserError, match="--force"):
        check_output(target)
    check_output(target, force=True)


# ---- calibrate and validate messages ------------------------------------------------------------


@pytest.mark.parametrize("make,needle", [
    (lambda t: t / "absent", "no such file or directory"),
    (lambda t: (t / "m.csv").write_text("a,b\n") and t / "m.csv", "is a file, not a measurement directory"),
    (lambda t: t, "has no provenance.json"),
])
def test_calibrate_says_what_is_wrong_with_the_directory(capsys, tmp_path, make, needle):
    path = make(tmp_path)
    code, out, err = run(capsys, "calibrate", str(path), "-o", str(tmp_path / "p.json"))
    one_line_error(code, err, needle)
    assert str(path) in err and "provenance.json: missing" not in err


def _validate_with(monkeypatch, tmp_path, inside: int, rows: int):
    import pandas as pd

    import costmodel.validate

    frame = pd.DataFrame({"inside_ci": [True] * inside + [False] * (rows - inside), "measured_fraction": 0.5})
    summary = {"directory": str(tmp_path), "policy": "drain_local", "batch_size": 31, "rows": rows,
               "inside_ci": inside, "by_position_model": {}}
    (tmp_path / "provenance.json").write_text("{}")
    monkeypatch.setattr(costmodel.validate, "model_vs_kernel", lambda d: (frame, summary))


@pytest.mark.parametrize("threshold,code", [(None, 0), ("0.75", 0), ("0.7", 0), ("0.8", 1), ("1", 1), ("0", 0)])
def test_validate_min_inside_sets_the_exit_status(capsys, monkeypatch, tmp_path, threshold, code):
    _validate_with(monkeypatch, tmp_path, inside=3, rows=4)
    argv = ["validate", str(tmp_path)] + (["--min-inside", threshold] if threshold else [])
    got, out, err = run(capsys, *argv)
    assert got == code, err
    if code == 1:
        assert "3/4 = 0.750" in err and f"below --min-inside {float(threshold):g}" in err


def test_validate_json_carries_the_check(capsys, monkeypatch, tmp_path):
    _validate_with(monkeypatch, tmp_path, inside=3, rows=4)
    code, out, _ = run(capsys, "validate", str(tmp_path), "--json", "--min-inside", "0.9")
    assert code == 1
    assert json.loads(out)["check"] == {"share_inside": 0.75, "min_inside": 0.9, "passed": False}


# ---- help, version, listings --------------------------------------------------------------------


def test_top_level_help_describes_the_tool_with_examples(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    import costmodel.cli as cli_module

    assert cli_module.__doc__.splitlines()[0] not in out  # not the internal module docstring
    assert "write-protect fault" in out and "examples:" in out
    for name, _, _ in COMMANDS:
        assert name in out


def _examples(parser_name: str) -> list[list[str]]:
    import shlex

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, __import__("argparse")._SubParsersAction))
    epilog = sub.choices[parser_name].epilog or ""
    lines = [l.strip().split("#")[0].split("|")[0].split(">")[0] for l in epilog.splitlines()]
    return [shlex.split(l)[1:] for l in lines if l.startswith("costmodel ")]


@pytest.mark.parametrize("name", OWN_COMMANDS)
def test_each_command_has_examples_that_parse(name):
    from costmodel.model import POLICIES

    examples = _examples(name)
    assert examples, f"`costmodel {name} --help` shows no example"
    parser = build_parser()
    for argv in examples:
        parser.parse_args(argv)  # argparse exits (a test failure) on a wrong option or choice
        for flag, value in zip(argv, argv[1:]):
            if flag in ("--policy", "--against"):
                assert value in POLICIES, argv
            if flag == "--solve-for":
                assert value in registry.NUMERIC, argv
            if flag == "--set":
                registry.parse_assignments([value])


def test_breakeven_options_all_have_help():
    import argparse

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for action in sub.choices["breakeven"]._actions:
        assert action.help, action.option_strings


def test_version_prints_the_version_and_model_hash(capsys):
    from costmodel import __version__
    from costmodel.model import model_hash

    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out.strip() == f"costmodel {__version__} (model {model_hash()})"
    assert re.fullmatch(r"costmodel \S+ \(model [0-9a-f]{16}\)", out.strip())


def test_policies_lists_every_declared_policy(capsys):
    from costmodel.model import CANDIDATES, POLICIES

    code, out, _ = run(capsys, "policies")
    assert code == 0
    for name, p in POLICIES.items():
        line = next(l for l in out.splitlines() if l.startswith(name + " "))
        assert p.summary in line and p.kernels in line
    code, out, _ = run(capsys, "policies", "--json")
    doc = json.loads(out)
    assert [r["name"] for r in doc] == list(POLICIES)
    for r in doc:
        p = POLICIES[r["name"]]
        assert (r["refcount_test"], r["local_drain"], r["still_held"], r["kernels"]) == \
            (p.refcount_test, p.local_drain, p.still_held, p.kernels)
        assert r["candidate"] == (r["name"] in CANDIDATES)


def test_presets_lists_kernel_and_workload_presets(capsys):
    code, out, _ = run(capsys, "presets")
    assert code == 0
    for name in [*registry.KERNEL_PRESETS, *presets.WORKLOAD_PRESETS]:
        assert name in out
    code, out, _ = run(capsys, "presets", "--json")
    doc = json.loads(out)
    assert [k["name"] for k in doc["kernel"]] == list(registry.KERNEL_PRESETS)
    for k in doc["kernel"]:
        kp = registry.KERNEL_PRESETS[k["name"]]
        assert k["policy"] == kp.policy and k["sets"] == dict(kp.values)
    assert [w["name"] for w in doc["workload"]] == list(presets.WORKLOAD_PRESETS)
    for w in doc["workload"]:
        assert w["sets"] == dict(presets.WORKLOAD_PRESETS[w["name"]].values)


# ---- will-it-scale: only a tlb_flush2 thread sweep gives a shootdown ------------------------------


def _measurement_dir(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    (d / "provenance.json").write_text("{}")
    return d


def test_calibrate_refuses_a_page_fault2_run_for_the_shootdown(capsys, tmp_path):
    code, out, err = run(capsys, "calibrate", str(_measurement_dir(tmp_path)), "-o", str(tmp_path / "p.json"),
                         "--will-it-scale", str(FIXTURES / "page_fault2.csv"))
    one_line_error(code, err, "is not tlb_flush2")
    assert not (tmp_path / "p.json").exists()


def test_calibrate_refuses_a_will_it_scale_log(capsys, tmp_path):
    code, out, err = run(capsys, "calibrate", str(_measurement_dir(tmp_path)), "-o", str(tmp_path / "p.json"),
                         "--will-it-scale", str(FIXTURES / "wis_page_fault2_processes.log"))
    one_line_error(code, err, "does not record thread counts")


def test_the_shipped_published_curve_is_read_as_its_ipi_curve():
    import csv

    from costmodel.bench.willitscale import read_tlb_flush2

    path = REFERENCE / "milan72_tlb_flush2.csv"
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    ipi = {int(r["threads"]): float(r["ops_per_s"]) for r in rows if r["flush"] == "ipi"}
    frame = read_tlb_flush2(path)
    assert dict(zip(frame["tasks"], frame["ops_per_s"])) == ipi
    assert set(frame["mode"]) == {"threads"} and set(frame["testcase"]) == {"tlb_flush2"}
    assert set(frame["flush"]) == {"ipi"}
    other = read_tlb_flush2(path, flush="invlpgb")
    assert dict(zip(other["tasks"], other["ops_per_s"])) == {int(r["threads"]): float(r["ops_per_s"])
                                                             for r in rows if r["flush"] == "invlpgb"}
    with pytest.raises(UserError, match="no 'tlb' curve; it has ipi, invlpgb"):
        read_tlb_flush2(path, flush="tlb")


def test_the_shipped_published_curve_calibrates_the_shootdown():
    import numpy as np

    from costmodel import calibrate

    fit = calibrate.shootdown_from_will_it_scale(REFERENCE / "milan72_tlb_flush2.csv",
                                                 rng=np.random.default_rng(1), n_boot=50)
    est = fit.estimates["shootdown_base_ns"]
    assert est.source == "measured" and est.ci_low < est.ci_high


def test_runtest_csv_is_taken_by_its_test_name(tmp_path):
    from costmodel.bench.willitscale import read_tlb_flush2

    text = (FIXTURES / "page_fault2.csv").read_text()
    good = tmp_path / "tlb_flush2.csv"
    good.write_text(text)
    frame = read_tlb_flush2(good)
    assert list(frame["tasks"]) == [1, 2] and list(frame["ops_per_s"]) == [175300, 190455]
    assert set(frame["mode"]) == {"threads"}
    for name in ("tlb_flush21.csv", "tlb_flush1.csv", "run.csv"):
        (tmp_path / name).write_text(text)
        with pytest.raises(UserError, match="is not tlb_flush2"):
            read_tlb_flush2(tmp_path / name)


@pytest.mark.parametrize("citation,needle", [
    ("will-it-scale page_fault2_threads, median of 5", "names will-it-scale page_fault2, not tlb_flush2"),
    ("will-it-scale tlb_flush2_processes", "no threads run"),
    ("a talk, 2024", "does not name the will-it-scale test and mode"),
])
def test_published_curve_defects(tmp_path, citation, needle):
    from costmodel.bench.willitscale import read_tlb_flush2

    path = tmp_path / "curve.csv"
    path.write_text(f'flush,threads,ops_per_s,citation\nipi,1,1000,"{citation}"\nipi,2,1500,"{citation}"\n')
    with pytest.raises(UserError, match=re.escape(needle)):
        read_tlb_flush2(path)


def test_every_command_starts_from_the_one_default_set_and_names_it(capsys):
    """Without --params, eval uses the shipped default set (the one `make demo` uses) and says so;
    --params none gives the registry defaults."""
    from costmodel.evaluate import evaluate_point
    from costmodel.paramfile import DEFAULT_SET, default_params_path, load

    code, out, err = run(capsys, "eval", "--json")
    assert code == 0, err
    doc = json.loads(out)
    want = evaluate_point(registry.resolve(base=load(default_params_path()).values()))
    for policy, o in want.items():
        assert doc["policies"][policy]["expected_ns"] == pytest.approx(o["expected_ns"], rel=1e-9)
    assert doc["parameter_set"].startswith(DEFAULT_SET)
    code, out, err = run(capsys, "eval")
    assert code == 0 and f"parameter set: {DEFAULT_SET}" in out
    code, out, err = run(capsys, "eval", "--params", "none", "--json")
    bare = evaluate_point(registry.resolve())
    assert json.loads(out)["policies"]["drain_local"]["expected_ns"] == pytest.approx(bare["drain_local"]["expected_ns"])
    code, out, err = run(capsys, "eval", "--params", "none")
    assert code == 0 and "parameter set: the registry defaults" in out


def test_eval_largest_part_is_the_largest_of_every_part(capsys):
    """The table's "largest part" column considers every part of the breakdown, fault entry included
    (at the registry defaults with no copy, the fault entry is the largest)."""
    from costmodel.evaluate import evaluate_point

    code, out, err = run(capsys, "eval", "--params", "none", "--policy", "mapcount")
    assert code == 0, err
    parts = evaluate_point(registry.resolve(), ["mapcount"])["mapcount"]["breakdown_ns"]
    name, value = max(parts.items(), key=lambda kv: kv[1])
    row = next(line for line in out.splitlines() if line.strip().startswith("mapcount"))
    assert row.rstrip().endswith(f"{name} {value:.0f} ns")


def test_sweep_refuses_a_repeated_axis_and_writes_dash_to_stdout(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "sweep", "--vary", "remote_cpus=1:3:3", "--vary", "remote_cpus=1:5:5", "-o", "x.csv")
    assert code == 2 and "given twice" in err and "\n" not in err.strip()
    assert not (tmp_path / "x.csv").exists()
    code, out, err = run(capsys, "sweep", "--vary", "remote_cpus=1:3:3", "-o", "-")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].startswith("remote_cpus,policy,") and len(lines) == 1 + 3 * len(POLICIES)
    assert not (tmp_path / "-").exists()


def test_cpu_time_beyond_the_machine_is_warned_about(capsys):
    """--set wp_faults_per_s=1e9 gave 19,881,092,959 us of CPU per second on 8
    CPUs without a word. CPU time per second above cpus x 1 s is impossible: eval, sweep and the
    report say so; at the shipped rate they do not."""
    from costmodel import registry
    from costmodel.evaluate import evaluate_point
    from costmodel.report import verdict_sentences

    assert main(["eval", "--set", "wp_faults_per_s=1e9", "--set", "cpus=8"]) == 0
    err = capsys.readouterr().err
    assert "more CPU time than the 8 CPUs have" in err and "wp_faults_per_s" in err
    assert main(["eval"]) == 0
    assert "CPU time" not in capsys.readouterr().err
    assert main(["sweep", "--set", "wp_faults_per_s=1e9", "--vary", "remote_cpus=1:2:2", "-o", "-"]) == 0
    assert "rows of the sweep need more CPU time" in capsys.readouterr().err
    # the threshold by hand: a rate at which the dearest policy needs just under / over 8 s per second
    v = registry.resolve({"cpus": 8, "wp_faults_per_s": 1.0})
    dearest = max(p["expected_ns"] for p in evaluate_point(v).values())
    for factor, warned in ((0.99, False), (1.01, True)):
        rate = factor * 8e9 / dearest
        w = registry.resolve({"cpus": 8, "wp_faults_per_s": rate})
        point = evaluate_point(w)
        from costmodel import chartdata

        dm = chartdata.decision_map_data(w, n=6)
        text = " ".join(verdict_sentences(w, point, chartdata.cheapest_along(chartdata.cost_vs_cpus_data(w)),
                                          chartdata.map_shares(dm), dm, None))
        assert ("more CPU time than the 8 CPUs have" in text) is warned, factor


_EXPONENT = re.compile(r"(?<![0-9A-Za-z_.])\d(?:\.\d+)?e[+-]\d", re.I)


@pytest.mark.parametrize("argv", [["sensitivity", "--draws", "300"], ["params"],
                                  ["params", "show", "data/params/kvm-amd-epyc-f26m2-2cpu-linux6.18.json"],
                                  ["eval"]])
def test_no_number_in_e_notation(argv, capsys, monkeypatch):
    """'6.064e+04 ns', '9.485e+08' in sensitivity, params show and the flip
    values. Every number these commands print is in the project's style."""
    monkeypatch.chdir(Path(__file__).resolve().parent.parent)
    assert main(argv) == 0
    out = capsys.readouterr().out
    hits = [line for line in out.splitlines() if _EXPONENT.search(line)]
    assert not hits, hits[:3]


def test_eval_columns_are_the_sweeps_and_each_is_explained(tmp_path, capsys):
    """eval's headings were p_unneeded, p_drain_loc, 'largest part', unlike the sweep's CSV, and
    never explained; cpu_us_per_s did not say what it assumes."""
    import csv

    assert main(["sweep", "--vary", "remote_cpus=1:2:2", "-o", str(tmp_path / "s.csv")]) == 0
    with open(tmp_path / "s.csv", newline="") as f:
        csv_cols = set(next(csv.reader(f)))
    capsys.readouterr()
    assert main(["eval"]) == 0
    out = capsys.readouterr().out.splitlines()
    heads = out[0].split()[1:]
    assert set(heads) - {"largest_part"} <= csv_cols, set(heads) - csv_cols
    legend = "\n".join(out[out.index(next(l for l in out if l.startswith("columns"))):])
    for h in heads:
        assert f"  {h}: " in legend, h
    assert "wp_faults_per_s" in legend and "no queueing" in legend


# ---- a user's own workload: --workload FILE ------------------------------------------------------


def test_workload_file_written_edited_and_used(tmp_path, capsys):
    """`params workload` writes the workload in force; edited by hand (a value,
    a range) it is taken by every command's --workload, its values layered like a preset's and
    its ranges drawn like --vary-range."""
    f = tmp_path / "mine.json"
    assert main(["params", "workload", "-o", str(f)]) == 0
    doc = json.loads(f.read_text())
    assert doc["kind"] == "costmodel-workload" and "p_same_cpu" in doc["parameters"]
    assert "fault_entry_ns" not in doc["parameters"]  # machine parameters stay in the parameter set
    doc["parameters"]["p_same_cpu"] = {"value": 0.3, "low": 0.1, "high": 0.6}
    doc["parameters"]["remote_cpus"] = 5
    f.write_text(json.dumps(doc))
    capsys.readouterr()
    assert main(["eval", "--workload", str(f), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)["params"]
    assert got["p_same_cpu"] == 0.3 and got["remote_cpus"] == 5
    assert main(["sensitivity", "--workload", str(f), "--draws", "300", "--json"]) == 0
    rows = {r["parameter"]: r for r in json.loads(capsys.readouterr().out)["ranking"]}
    assert rows["p_same_cpu"]["origin"] == "varied" and (rows["p_same_cpu"]["low"], rows["p_same_cpu"]["high"]) == (0.1, 0.6)
    # --set still wins, as over a preset
    assert main(["eval", "--workload", str(f), "--set", "remote_cpus=2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["params"]["remote_cpus"] == 2
    # and over a built-in workload
    assert main(["params", "workload", "--workload", "fork-snapshot"]) == 0
    assert json.loads(capsys.readouterr().out)["parameters"]["p_same_cpu"] == 0.9


@pytest.mark.parametrize("content, says", [
    ('{"parameters": {"alloc_ns": 300}}', "machine parameter"),
    ('{"parameters": {"p_same_cpu": 2}}', "p_same_cpu"),
    ('{"parameters": {"p_same_cpu": {"value": 0.5, "low": 0.6, "high": 0.9}}}', "must hold the value"),
    ('{"parameters": {"p_same_cpu": 0.5,}}', "line 1"),
    ('{"parameters": {"no_such": 1}}', "no_such"),
    ('{"parameters": {"remote_cpus": 50, "cpus": 8}}', "remote_cpus"),
])
def test_bad_workload_file_is_one_line(tmp_path, capsys, content, says):
    f = tmp_path / "w.json"
    f.write_text(content)
    assert main(["eval", "--workload", str(f)]) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1 and "Traceback" not in err


def test_simulate_states_one_limit_in_full(capsys):
    """--faults 0 said the limit was 1e+13, --faults 1e13 then 1e+12: one limit, written out."""
    from costmodel.simulate import MAX_FAULTS

    for raw in ("0", "1e13", str(MAX_FAULTS + 1)):
        assert main(["simulate", "--faults", raw]) == 2
        assert f"{MAX_FAULTS:,}" in capsys.readouterr().err


def test_vary_range_message_names_the_range_not_the_point(capsys):
    """--vary-range remote_cpus=1:4000 complained about remote_cpus=3 (the point, which is fine)."""
    assert main(["sensitivity", "--set", "cpus=8", "--set", "remote_cpus=3", "--vary-range", "remote_cpus=1:4000"]) == 2
    err = capsys.readouterr().err
    assert "remote_cpus=3 " not in err and "remote_cpus=4000" in err and "1:7" in err


def test_a_partial_run_is_described_as_one(tmp_path, capsys):
    """a set of one probe (bench --probe fault_cost) calibrated with
    --allow-defaults said it came from data/measurements/<name> (it was elsewhere), and calibrate
    and eval counted the assumed parameters differently."""
    import csv
    import shutil

    src = Path(__file__).resolve().parent.parent / "data" / "measurements" / "kvm-amd-epyc-f26m2-2cpu-linux6.18"
    d = tmp_path / "elsewhere" / "bench_fc"
    d.mkdir(parents=True)
    if (src / "measurements").is_dir():   # the set's tables: the one probe's
        (d / "measurements").mkdir()
        shutil.copy(src / "measurements" / "fault_cost.csv", d / "measurements")
    else:   # a set written before the tables: the wide file's rows of the one probe
        with open(src / "measurements.csv", newline="") as f:
            rows = list(csv.reader(f))
        with open(d / "measurements.csv", "w", newline="") as f:
            csv.writer(f).writerows([rows[0]] + [r for r in rows[1:] if r[0] == "fault_cost"])
    prov = json.loads((src / "provenance.json").read_text())
    prov["probes"] = {k: v for k, v in prov["probes"].items() if k == "fault_cost"}
    prov["catalog"] = ["copy_bandwidth", "fault_cost", "remote_drain", "shootdown"]  # as a bench writes it
    (d / "provenance.json").write_text(json.dumps(prov))
    out = tmp_path / "fc.json"
    assert main(["calibrate", str(d), "-o", str(out), "--allow-defaults"]) == 0
    said = capsys.readouterr().out
    m = re.search(r"(\d+) assumed", said)
    assert m, said
    assert main(["params", "show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "data/measurements/bench_fc" not in shown and str(d) in shown
    doc = json.loads(out.read_text())
    n_assumed = sum(1 for e in doc["parameters"].values() if e.get("source") == "assumed")
    assert int(m.group(1)) == n_assumed
    assert main(["eval", "--params", str(out)]) == 0
    assert f"{n_assumed} of the set's parameters are assumed" in capsys.readouterr().out
    # a probe the recording's bench knew but did not run is 'not run', not 'recorded before it existed'
    notes = {n: e.get("note", "") for n, e in doc["parameters"].items()}
    for name in ("remote_drain_ns", "shootdown_receive_ns"):
        assert "not run in this recording" in notes[name] and "before it existed" not in notes[name], notes[name]
