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
    assert set(doc) == {"params", "policies"}
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
    (["eval", "--set", "remote_cpus=9"], "remote_cpus=9 must be at most cpus - 1 = 7"),
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
