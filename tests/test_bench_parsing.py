"""Probe output, measurement directories and will-it-scale files: parsed right, or a clear error.

No kernel, compiler or root needed: everything here reads recorded or synthetic files.
"""

from __future__ import annotations

import gzip
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from costmodel.bench import (
    PROBES,
    RESULT_COLUMNS,
    SUMMARY_COLUMNS,
    infer_batch_size,
    parse_probe_output,
    read_measurements,
    read_probe_file,
    read_will_it_scale,
)
from costmodel.bench.catalog import PROBES_BY_NAME
from costmodel.bench.runner import summary_path, table_files
from costmodel.bench.summary import bootstrap_median_interval, summarize, tidy_frame, wilson_interval
from costmodel.cli import main
from costmodel.errors import UserError

FIXTURES = Path(__file__).parent / "fixtures" / "bench"
REPO = Path(__file__).resolve().parents[1]
DATASETS = sorted(p.parent for p in (REPO / "data" / "measurements").glob("*/provenance.json"))


# ----------------------------------------------------------------------------- probe output

def test_valid_output_parses_with_types_meta_and_skips():
    out = read_probe_file(FIXTURES / "unnecessary_copy_good.tsv", expected="unnecessary_copy")
    assert out.probe == "unnecessary_copy"
    assert out.plan == 12 and len(out.samples) == 12
    assert out.meta["timer_overhead_ns"] == "16.0"
    assert str(out.samples["adds_between"].dtype) == "Int64"
    assert set(out.samples["measure"]) == {"copied"}
    assert out.skips == [{"config": {"op": "wp_write", "adds_between": 0, "drained_first": 1, "same_cpu": 0,
                                     "pages": 1, "huge": 1}, "reason": "THP allocation failed"}]
    assert not out.skipped_whole


def test_summary_of_fractions_has_count_and_wilson_interval():
    out = read_probe_file(FIXTURES / "unnecessary_copy_good.tsv")
    rows = summarize(PROBES_BY_NAME["unnecessary_copy"], out)
    assert list(rows.columns) == SUMMARY_COLUMNS
    k0 = rows[(rows.adds_between == 0) & (rows.same_cpu == 0) & (rows.huge == 0)].iloc[0]
    assert (k0.n, k0.successes, k0.fraction, k0.unit) == (4, 3, 0.75, "fraction")
    assert k0.ci_low < 0.75 < k0.ci_high
    assert pd.isna(k0.median_ns)
    skipped = rows[rows.skipped_reason.notna()]
    assert len(skipped) == 1 and skipped.iloc[0].huge == 1 and skipped.iloc[0].n == 0


def test_summary_of_timings_has_median_percentiles_bootstrap_and_counters():
    out = read_probe_file(FIXTURES / "shootdown_good.tsv")
    rows = summarize(PROBES_BY_NAME["shootdown"], out).set_index("siblings")
    spin = rows.loc["spinning"]
    assert spin.median_ns == 18200 and spin.unit == "ns" and spin.n == 5
    assert spin.p10 < spin.median_ns < spin.p90
    assert spin.ci_low <= spin.median_ns <= spin.ci_high
    assert spin.tlb_ipis_per_op == 1.0
    assert rows.loc["none"].tlb_ipis_per_op == 0.0


def test_whole_probe_skip_is_recognised():
    out = read_probe_file(FIXTURES / "skipped_not_root.tsv")
    assert out.skipped_whole
    assert "needs root" in out.skips[0]["reason"]


@pytest.mark.parametrize(
    "fixture, message",
    [
        ("malformed_line.tsv", r"line \d+: field 'copied 1' is not key=value"),
        ("missing_field.tsv", r"line 5: lacks field 'adds_between'"),
        ("nan_value.tsv", r"field 'ns' is nan"),
        ("inf_value.tsv", r"field 'ns' is inf"),
        ("truncated.tsv", r"truncated"),
        ("unknown_record.tsv", r"unknown record type 'sampel'"),
        ("end_mismatch.tsv", r"'end' says 13 samples but 12 were read"),
        ("binary_out_of_range.tsv", r"field 'copied' = 2 must be 0 or 1"),
    ],
)
def test_defective_output_is_a_clear_error(fixture, message):
    with pytest.raises(UserError, match=message) as info:
        read_probe_file(FIXTURES / fixture)
    assert fixture in str(info.value)   # the message names the file
    assert "\n" not in str(info.value)  # and is one line


def test_output_without_end_record_is_truncated():
    text = (FIXTURES / "unnecessary_copy_good.tsv").read_text()
    cut = text[: text.index("end\t")]
    with pytest.raises(UserError, match="without an 'end' record: truncated"):
        parse_probe_output(cut)


def test_other_defects():
    good = (FIXTURES / "unnecessary_copy_good.tsv").read_text()
    with pytest.raises(UserError, match="empty"):
        parse_probe_output("")
    with pytest.raises(UserError, match="expected 'fault_cost'"):
        parse_probe_output(good, expected="fault_cost")
    with pytest.raises(UserError, match="format '9' is not supported"):
        parse_probe_output(good.replace("format=1", "format=9"))
    with pytest.raises(UserError, match="unknown field 'colour'"):
        parse_probe_output(good.replace("huge=0\tcopied=1", "huge=0\tcolour=red\tcopied=1", 1))
    with pytest.raises(UserError, match="sample has no measure"):
        parse_probe_output(good.replace("\tcopied=1\n", "\n", 1))
    with pytest.raises(UserError, match="'adds_between' = '1.5' is not a whole number"):
        parse_probe_output(good.replace("adds_between=30", "adds_between=1.5", 1))
    with pytest.raises(UserError, match="text after the 'end' record"):
        parse_probe_output(good + good)


def test_truncated_gzip_is_a_clear_error(tmp_path):
    data = gzip.compress((FIXTURES / "unnecessary_copy_good.tsv").read_bytes())
    path = tmp_path / "unnecessary_copy.tsv.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="damaged or truncated"):
        read_probe_file(path)


# ----------------------------------------------------------------------------- statistics

def test_wilson_interval_known_values():
    low, high = wilson_interval(0, 10)
    assert low == 0 and high == pytest.approx(0.2775, abs=1e-3)
    low, high = wilson_interval(5, 10)
    assert (low, high) == (pytest.approx(0.2366, abs=1e-3), pytest.approx(0.7634, abs=1e-3))
    assert all(math.isnan(x) for x in wilson_interval(0, 0))


def test_bootstrap_is_deterministic_and_brackets_the_median():
    values = np.random.default_rng(0).normal(1000, 50, size=500)
    a = bootstrap_median_interval(values, seed=7)
    assert a == bootstrap_median_interval(values, seed=7)
    assert a[0] < np.median(values) < a[1]


def _copy_rows(fractions: dict[int, float]) -> pd.DataFrame:
    return tidy_frame([
        {"probe": "unnecessary_copy", "op": "wp_write", "adds_between": k, "drained_first": 1, "same_cpu": 0,
         "pages": 1, "huge": 0, "measure": "copied", "n": 100, "successes": round(f * 100), "fraction": f,
         "unit": "fraction"}
        for k, f in fractions.items()
    ])


def test_batch_size_from_the_step():
    assert infer_batch_size(_copy_rows({k: (1.0 if k < 30 else 0.0) for k in range(41)})) == 31
    assert infer_batch_size(_copy_rows({k: (0.97 if k < 14 else 0.02) for k in range(41)})) == 15
    # no step: never drops, or everything low
    assert infer_batch_size(_copy_rows({k: 1.0 for k in range(41)})) is None
    assert infer_batch_size(_copy_rows({k: 0.0 for k in range(41)})) is None
    # a dip that comes back is not the step
    fr = {k: (1.0 if k < 30 else 0.0) for k in range(41)}
    fr[35] = 0.6
    assert infer_batch_size(_copy_rows(fr)) is None


# ----------------------------------------------------------------------------- will-it-scale

def test_will_it_scale_log_reads_each_run_average():
    frame = read_will_it_scale(FIXTURES / "wis_page_fault2_processes.log", tasks=1, mode="processes")
    assert list(frame["average_ops_per_s"]) == [181261.0, 181260.0]
    assert list(frame["seconds"]) == [3, 2]
    assert frame.loc[0, "testcase"] == "Separate 128MB anonymous page faults"
    assert frame.loc[0, "min_total_ops_per_s"] == 180890.0
    assert (frame["tasks"] == 1).all() and (frame["mode"] == "processes").all()


def test_will_it_scale_log_without_average_is_truncated():
    with pytest.raises(UserError, match="no 'average:' line: it was cut short"):
        read_will_it_scale(FIXTURES / "wis_truncated.log")


def test_will_it_scale_csv_is_tidy():
    frame = read_will_it_scale(FIXTURES / "page_fault2.csv")
    assert len(frame) == 4   # tasks 1 and 2, processes and threads; the 0 anchor row dropped
    row = frame[(frame.tasks == 2) & (frame["mode"] == "threads")].iloc[0]
    assert row.ops_per_s == 190455 and row.idle_percent == 0.52 and row.linear_ops_per_s == 362522
    assert set(frame["testcase"]) == {"page_fault2"}


@pytest.mark.parametrize("fixture, message", [
    ("wis_failed_run.csv", "processes = -1 means that run printed no average"),
    ("wis_short_row.csv", "3 fields, expected 6"),
])
def test_will_it_scale_csv_defects(fixture, message):
    with pytest.raises(UserError, match=message):
        read_will_it_scale(FIXTURES / fixture)


def test_will_it_scale_other_defects(tmp_path):
    bad = tmp_path / "x.log"
    bad.write_text("hello\n")
    with pytest.raises(UserError, match="before any 'testcase:' line"):
        read_will_it_scale(bad)
    bad.write_text("testcase:x\nwarmup\nmin:1 max:2 total:3\nsomething odd\n")
    with pytest.raises(UserError, match="is not will-it-scale output"):
        read_will_it_scale(bad)
    with pytest.raises(UserError, match="no such file"):
        read_will_it_scale(tmp_path / "absent.log")


# ----------------------------------------------------------------------------- measurement directories

needs_dataset = pytest.mark.skipif(not DATASETS, reason="no committed dataset under data/measurements/")


@needs_dataset
@pytest.mark.parametrize("directory", DATASETS, ids=lambda p: p.name)
def test_committed_dataset_reads_and_validates(directory):
    frame, prov = read_measurements(directory)
    assert list(frame.columns) == SUMMARY_COLUMNS
    assert set(frame["probe"]) <= {p.name for p in PROBES}
    assert prov["dataset_id"] and prov["kernel_release"] and prov["date"]
    assert "environment" not in json.dumps(prov).lower()
    rounds = int(prov.get("repeat") or 1)
    for probe in frame["probe"].unique():
        if rounds == 1:
            assert (directory / "raw" / f"{probe}.tsv.gz").exists()
        else:   # bench --repeat N: one raw file per round
            for k in range(1, rounds + 1):
                assert (directory / "raw" / f"{probe}.round{k}.tsv.gz").exists()


@needs_dataset
def test_damaged_measurement_directory_is_a_clear_error(tmp_path):
    src = DATASETS[0]
    d = tmp_path / "d"
    shutil.copytree(src, d)
    csv = summary_path(d, "fault_cost")   # its table, or the wide file of an older set
    good = csv.read_text()

    frame = pd.read_csv(csv)
    # A column the rows need, gone: read as empty, then refused on the first row that needs it.
    frame.drop(columns=["ci_high"]).to_csv(csv, index=False)
    with pytest.raises(UserError, match=r"line 2: column 'ci_high' is empty or NaN") as info:
        read_measurements(d)
    assert str(csv) in str(info.value)
    # A core column gone: this is not a summary at all.
    frame.drop(columns=["unit"]).to_csv(csv, index=False)
    with pytest.raises(UserError, match="lacks column 'unit'"):
        read_measurements(d)

    ns_row = frame.index[frame["unit"] == "ns"][0]
    frame.loc[ns_row, "median_ns"] = float("nan")
    frame.to_csv(csv, index=False)
    with pytest.raises(UserError, match=f"line {ns_row + 2}: column 'median_ns' is empty or NaN"):
        read_measurements(d)

    csv.write_text(good)
    prov = json.loads((d / "provenance.json").read_text())
    del prov["kernel_release"]
    (d / "provenance.json").write_text(json.dumps(prov))
    with pytest.raises(UserError, match="lacks key 'kernel_release'"):
        read_measurements(d)

    (d / "provenance.json").write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        read_measurements(d)
    with pytest.raises(UserError, match="no such measurement directory"):
        read_measurements(tmp_path / "nothing")


# ----------------------------------------------------------------------------- command line, compiler

def test_cli_rejects_contradictory_flags_and_unknown_probes(tmp_path, capsys):
    assert main(["bench", "--force", "--resume", "--out", str(tmp_path / "o")]) == 2
    assert "contradict" in capsys.readouterr().err
    assert main(["bench", "--probe", "nope", "--out", str(tmp_path / "o")]) == 2
    assert "is not a probe" in capsys.readouterr().err


def test_existing_directory_needs_force_or_resume(tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "measurements.csv").write_text("x\n")
    assert main(["bench", "--out", str(out)]) == 2
    assert "--resume to continue it or --force" in capsys.readouterr().err
    assert main(["bench", "--resume", "--out", str(out)]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_missing_compiler_is_a_user_error(monkeypatch):
    from costmodel.bench import compile as comp

    monkeypatch.setenv("CC", "no-such-compiler-anywhere")
    with pytest.raises(UserError, match="no C compiler found"):
        comp.find_compiler()


def test_readme_describes_every_column_and_probe():
    text = (REPO / "costmodel" / "bench" / "README.md").read_text()
    for column in SUMMARY_COLUMNS:
        assert f"`{column}`" in text, column
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| `")}
    for probe in PROBES:
        assert f"`{probe.name}`" in rows, probe.name
        for key in [k for k in probe.all_config if k != "op"]:   # its row names each key (`op` has a column)
            assert f"`{key}`" in rows[f"`{probe.name}`"], (probe.name, key)
    for key in SUMMARY_COLUMNS[1:]:   # and each key and result column has its row
        assert any(f"`{key}`" in name for name in rows), key


# ----------------------------------------------------------------------------- the runner, with fake probes

@pytest.fixture
def fake_probes(monkeypatch):
    """run_suite with recorded outputs in place of compiled probes (no compiler, kernel or root)."""
    from costmodel.bench import provenance, runner

    outputs = {
        "unnecessary_copy": (FIXTURES / "skipped_not_root.tsv").read_text(),
        "shootdown": (FIXTURES / "shootdown_good.tsv").read_text(),
        "fault_cost": "probe\tname=fault_cost\tformat=1\nsample\top=first_touch\tns=600",  # cut short
    }
    calls: list[str] = []
    facts = {key: None for key in provenance.REQUIRED_KEYS if key not in ("quick", "probes")}
    facts.update(dataset_id="fake", kernel_release="6.18.0", cpu_model="fake cpu", online_cpus=2,
                 date="2026-01-01T00:00:00+00:00", harness_version="test")

    def run_binary(binary, args, name, timeout_s, progress):
        calls.append(name)
        return outputs[name], 0, ""

    monkeypatch.setattr(runner._compile, "find_compiler", lambda: "cc")
    monkeypatch.setattr(runner._compile, "compile_probe", lambda name, compiler=None: Path("/bin/true"))
    monkeypatch.setattr(runner, "machine_facts", lambda: dict(facts))
    monkeypatch.setattr(runner, "_run_binary", run_binary)
    return outputs, calls


def test_runner_records_skips_and_failures_and_runs_the_rest(tmp_path, fake_probes):
    from costmodel.bench import run_suite

    outputs, calls = fake_probes
    out = tmp_path / "m"
    result = run_suite(out, probes=["unnecessary_copy", "shootdown", "fault_cost"], progress=False)
    assert result.status == {"unnecessary_copy": "skipped", "shootdown": "done", "fault_cost": "failed"}
    assert "needs root" in result.reasons["unnecessary_copy"]
    assert "truncated" in result.reasons["fault_cost"]

    skipped = json.loads((out / "skipped.json").read_text())
    assert [(s["probe"], s["status"]) for s in skipped] == [("unnecessary_copy", "skipped"), ("fault_cost", "failed")]
    frame, prov = read_measurements(out)
    assert set(frame["probe"]) == {"shootdown"}
    assert prov["probes"]["unnecessary_copy"]["status"] == "skipped"
    # one table per finished probe, with its own keys only; none for the failed one, no wide file
    assert sorted(table_files(out)) == ["shootdown", "unnecessary_copy"]
    assert not (out / "measurements.csv").exists()
    assert (out / "measurements" / "shootdown.csv").read_text().split("\n")[0].startswith(
        "op,target_cpus,siblings,measure,")
    assert prov["batch_size_found"] is None
    for name in outputs:   # raw output kept, also for the failed one
        assert (out / "raw" / f"{name}.tsv.gz").exists()

    # --resume runs only what did not finish (the failure), once it works
    outputs["fault_cost"] = "probe\tname=fault_cost\tformat=1\nsample\top=first_touch\tns=600\nend\tsamples=1\n"
    calls.clear()
    result = run_suite(out, probes=["unnecessary_copy", "shootdown", "fault_cost"], resume=True, progress=False)
    assert calls == ["fault_cost"]
    assert result.status == {"unnecessary_copy": "kept", "shootdown": "kept", "fault_cost": "done"}
    frame, _ = read_measurements(out)
    assert list(frame["probe"].unique()) == ["fault_cost", "shootdown"]   # table order
    assert json.loads((out / "skipped.json").read_text())[0]["probe"] == "unnecessary_copy"


def test_runner_refuses_to_resume_a_different_kind_of_run(tmp_path, fake_probes):
    from costmodel.bench import run_suite

    out = tmp_path / "m"
    run_suite(out, probes=["shootdown"], progress=False)
    with pytest.raises(UserError, match="was a full run; resume it the same way"):
        run_suite(out, probes=["shootdown"], quick=True, resume=True, progress=False)
    with pytest.raises(UserError, match="already holds files"):
        run_suite(out, probes=["shootdown"], progress=False)
    run_suite(out, probes=["shootdown"], force=True, progress=False)


# ----------------------------------------------------------------------------- remote_drain output

def test_remote_drain_recording_parses_and_keeps_ns_for_verified_trials_only():
    out = read_probe_file(FIXTURES / "remote_drain_quick.tsv", expected="remote_drain")
    s = out.samples
    assert set(s["measure"]) == {"ns", "copied", "verified"}
    assert set(s["remote_state"]) == {"idle", "busy", "rt"}
    # folios is set where the remote fill applies and empty elsewhere
    assert s.loc[s.op == "fadvise_base", "folios"].isna().all()
    assert set(s.loc[s.op == "seal_remote", "folios"].dropna().astype(int)) == {0, 1, 7, 15, 29}
    assert out.meta["rt_restore_failures"] == "0"
    rows = summarize(PROBES_BY_NAME["remote_drain"], out)
    key = ["op", "folios", "remote_state"]
    ns = rows[rows.measure == "ns"].set_index(key)
    verified = rows[rows.measure == "verified"].set_index(key)
    # one ns sample per verified trial: the ns row's n is the verified row's successes
    for idx, row in ns.iterrows():
        assert row.n == verified.loc[idx].successes, idx
    # counted from the file itself, not from the summary code
    lines = (FIXTURES / "remote_drain_quick.tsv").read_text().splitlines()
    unverified = sum(1 for line in lines if line.startswith("sample\t") and line.endswith("\tverified=0"))
    assert int((verified.n - verified.successes).sum()) == unverified == int(out.meta["unverified_trials"])
    copies = rows[rows.measure == "copied"].set_index(["op", "remote_state"])
    assert copies.loc[("anon_no_drain", "idle")].fraction == 1.0
    assert copies.loc[("anon_after_drain", "idle")].fraction == 0.0


def _ns_probe_text(values: list[float]) -> str:
    lines = ["probe\tname=remote_drain\tformat=1"]
    for v in values:
        lines.append(f"sample\top=seal_remote\tfolios=0\tremote_state=idle\tns={v}")
    lines.append(f"end\tsamples={len(values)}")
    return "\n".join(lines) + "\n"


def test_ns_row_has_mean_with_bootstrap_interval_and_tail_percentiles():
    values = [100.0, 200.0, 300.0, 400.0, 10000.0]
    rows = summarize(PROBES_BY_NAME["remote_drain"], parse_probe_output(_ns_probe_text(values)))
    row = rows.iloc[0]
    # by hand: mean 11000/5; linear-interpolation percentiles at rank q*(n-1)
    assert row.mean_ns == 2200.0
    assert row.median_ns == 300.0
    assert row.p90 == pytest.approx(400 + 0.6 * 9600)    # rank 3.6
    assert row.p99 == pytest.approx(400 + 0.96 * 9600)   # rank 3.96
    assert row.p10 == pytest.approx(100 + 0.4 * 100)     # rank 0.4
    # the mean's interval lies within the sample range and brackets the mean; resampling a heavy
    # tail leaves it wide: every resample mean is a multiple of 20 between 100 and 10000
    assert 100 <= row.mean_ci_low < 2200 < row.mean_ci_high <= 10000
    assert row.mean_ci_high - row.mean_ci_low > 2000
    assert row.ci_low <= row.median_ns <= row.ci_high


def test_bootstrap_mean_interval_is_deterministic_and_shrinks_with_n():
    from costmodel.bench.summary import bootstrap_mean_interval

    rng = np.random.default_rng(3)
    small = rng.exponential(1000, size=50)
    large = rng.exponential(1000, size=5000)
    a = bootstrap_mean_interval(small, seed=5)
    assert a == bootstrap_mean_interval(small, seed=5)
    b = bootstrap_mean_interval(large, seed=5)
    assert a[0] < small.mean() < a[1] and b[0] < large.mean() < b[1]
    assert (b[1] - b[0]) < (a[1] - a[0]) / 4   # sqrt(100) = 10x narrower in theory


# ----------------------------------------------------------------------------- sets that outlive the code

QUICK_WIDE = Path(__file__).parent / "fixtures" / "prediction" / "quick-amd"   # a wide set, kept as written


def _summary_bytes(directory: Path) -> dict[str, bytes]:
    """Every summary file of a set (the wide one, the tables), by path within it."""
    files = [directory / "measurements.csv", *table_files(directory).values()]
    return {str(f.relative_to(directory)): f.read_bytes() for f in files if f.exists()}


def _header(directory: Path, probe: str = "fault_cost") -> list[str]:
    return summary_path(directory, probe).read_text().splitlines()[0].split(",")


WIDE_SETS = [QUICK_WIDE, *[p for p in DATASETS if (p / "measurements.csv").exists()]]


@pytest.mark.parametrize("src", WIDE_SETS, ids=lambda p: p.name)
def test_an_old_wide_set_reads_unchanged_with_a_note(src, tmp_path, capsys):
    d = tmp_path / src.name
    shutil.copytree(src, d)
    before = _summary_bytes(d)
    frame, _ = read_measurements(d)
    again, _ = read_measurements(d)
    err = capsys.readouterr().err
    assert err.count("note:") == 1 and "one wide table of an earlier version" in err   # once per set
    assert f"costmodel bench --resummarise {d} --force" in err
    assert _summary_bytes(d) == before == {"measurements.csv": (src / "measurements.csv").read_bytes()}
    pd.testing.assert_frame_equal(frame, again)
    # every cell of the file, as pandas reads it without this package
    plain = pd.read_csv(d / "measurements.csv", keep_default_na=True)
    assert len(frame) == len(plain)
    for col in plain.columns:
        for got, want in zip(frame[col], plain[col]):
            assert (pd.isna(got) and pd.isna(want)) or got == want or str(got) == str(want), (col, got, want)


def test_tables_written_and_read_back(tmp_path, capsys):
    """An old wide set rebuilt from raw/ as tables: one per probe, only its own keys, the same summary."""
    from costmodel.bench.runner import resummarise

    d = tmp_path / "set"
    shutil.copytree(QUICK_WIDE, d)
    wide, _ = read_measurements(d)
    capsys.readouterr()
    result = resummarise(d, force=True)
    assert result.written and result.changes == [
        "the one wide measurements.csv of earlier versions becomes measurements/<probe>.csv, one table per probe"]
    assert not (d / "measurements.csv").exists()
    assert sorted(table_files(d)) == sorted(set(wide["probe"]))
    for name, path in table_files(d).items():
        header = path.read_text().splitlines()[0].split(",")
        assert header == [*PROBES_BY_NAME[name].all_config, *RESULT_COLUMNS]   # no other probe's keys
    tables, _ = read_measurements(d)
    assert capsys.readouterr().err == ""   # the current layout: no note
    pd.testing.assert_frame_equal(tables, wide)
    assert resummarise(d).changes == []    # and it rebuilds byte for byte


def test_a_key_added_to_one_probe_widens_no_other_table(tmp_path, fake_probes, monkeypatch):
    from dataclasses import replace

    from costmodel.bench import catalog, run_suite

    outputs, _ = fake_probes
    outputs["unnecessary_copy"] = (FIXTURES / "unnecessary_copy_good.tsv").read_text()
    names = ["unnecessary_copy", "shootdown"]
    old = tmp_path / "old"
    run_suite(old, probes=names, progress=False)
    before = {n: p.read_bytes() for n, p in table_files(old).items()}

    # a later version: the shootdown probe declares one more key, in its own entry and nowhere else
    spec = catalog.PROBES_BY_NAME["shootdown"]
    moons = catalog.ConfigKey("moons", int, "a key from the future")
    probes = [replace(p, optional_config=p.optional_config + (moons,)) if p is spec else p for p in catalog.PROBES]
    monkeypatch.setattr(catalog, "PROBES", probes)
    monkeypatch.setattr(catalog, "PROBES_BY_NAME", {p.name: p for p in probes})
    outputs["shootdown"] = outputs["shootdown"].replace("\tns=", "\tmoons=3\tns=")
    new = tmp_path / "new"
    run_suite(new, probes=names, progress=False)
    after = {n: p.read_bytes() for n, p in table_files(new).items()}
    assert after["unnecessary_copy"] == before["unnecessary_copy"]   # the other probe's file: unchanged
    old_header = before["shootdown"].decode().splitlines()[0].split(",")
    new_header = after["shootdown"].decode().splitlines()[0].split(",")
    assert new_header == old_header[:3] + ["moons"] + old_header[3:]
    frame, _ = read_measurements(new)
    assert "moons" in frame.columns and str(frame["moons"].dtype) == "Int64"
    assert (frame.loc[frame.probe == "shootdown", "moons"] == 3).all()
    assert frame.loc[frame.probe != "shootdown", "moons"].isna().all()
    # the set written before the key existed reads with it empty, and otherwise as it did
    monkeypatch.undo()
    earlier, _ = read_measurements(old)
    monkeypatch.setattr(catalog, "PROBES", probes)
    monkeypatch.setattr(catalog, "PROBES_BY_NAME", {p.name: p for p in probes})
    frame, _ = read_measurements(old)
    assert frame["moons"].isna().all()
    pd.testing.assert_frame_equal(frame[list(earlier.columns)], earlier)
    # and an old wide set too
    wide, _ = read_measurements(QUICK_WIDE)
    assert wide["moons"].isna().all() and len(wide) == len(pd.read_csv(QUICK_WIDE / "measurements.csv"))


def test_a_probe_resumed_into_a_wide_set_gets_a_table_beside_it(tmp_path, fake_probes, monkeypatch, capsys):
    from costmodel.bench import run_suite, runner

    d = tmp_path / "set"
    shutil.copytree(QUICK_WIDE, d)
    wide_before = (d / "measurements.csv").read_bytes()
    prov = json.loads((d / "provenance.json").read_text())
    monkeypatch.setattr(runner, "machine_facts", lambda: {k: prov.get(k) for k in
                                                           ("kernel_release", "cpu_model", "online_cpus")})
    result = run_suite(d, quick=True, resume=True, probes=["shootdown"], progress=False)
    assert result.status == {"shootdown": "done"}
    assert (d / "measurements.csv").read_bytes() == wide_before   # the old file is not touched
    assert sorted(table_files(d)) == ["shootdown"]
    frame, _ = read_measurements(d)
    assert list(frame["probe"].unique()) == ["workload", "swap_cow", "shootdown"]
    assert "beside the tables of shootdown" in capsys.readouterr().err


def test_a_key_declared_twice_or_nowhere_is_refused():
    from costmodel.bench import catalog

    with pytest.raises(ValueError, match="'colour' is not one of SHARED_KEYS; declare it in the entry"):
        catalog.ProbeSpec("x", "x", config=("op", "colour"), measures=("ns",))
    with pytest.raises(ValueError, match="'n' cannot name a configuration key"):
        catalog.ProbeSpec("x", "x", config=(catalog.ConfigKey("n", int, "clashes with a result column"),),
                          measures=("ns",))
    a = catalog.ProbeSpec("a", "a", config=(catalog.ConfigKey("k", int, "one thing"),), measures=("ns",))
    b = catalog.ProbeSpec("b", "b", config=(catalog.ConfigKey("k", str, "another"),), measures=("ns",))
    with pytest.raises(ValueError, match="'k' is declared by probes a and b with different meanings"):
        catalog.config_columns([a, b])


@needs_dataset
def test_cut_short_summary_is_a_one_line_error_naming_file_and_line(tmp_path):
    src = DATASETS[0]
    d = tmp_path / "d"
    shutil.copytree(src, d)
    path = summary_path(d, "unnecessary_copy")
    text = path.read_bytes()
    at = min(5000, len(text) // 2)
    path.write_bytes(text[:at])
    expected_line = text[:at].count(b"\n") + 1   # the partial line after the last newline
    with pytest.raises(UserError) as info:
        read_measurements(d)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    assert f"line {expected_line}:" in message
    # cut exactly at a line end, the file lacks nothing but rows: it reads (fewer rows)
    cut = text[: text[:at].rindex(b"\n") + 1]
    path.write_bytes(cut)
    frame, _ = read_measurements(d)
    assert (frame["probe"] == "unnecessary_copy").sum() == cut.count(b"\n") - 1
    # a row with a field too many
    path.write_bytes(cut + cut.splitlines(keepends=True)[1].replace(b"\n", b",x\n"))
    with pytest.raises(UserError, match=r"line \d+: \d+ fields where the header has \d+"):
        read_measurements(d)


@needs_dataset
def test_resummarise_rebuilds_a_copy_of_the_committed_set(tmp_path, capsys):
    from costmodel.bench import read_raw
    from costmodel.bench.runner import resummarise

    # the oldest committed summary: one written before the mean columns existed, where there is one
    older = [p for p in DATASETS if "mean_ns" not in _header(p)]
    src = (older or DATASETS)[0]
    d = tmp_path / "set"
    shutil.copytree(src, d)
    committed, committed_prov = read_measurements(src)
    before = _summary_bytes(d)
    header = _header(d)
    wide = (d / "measurements.csv").exists()

    if "mean_ns" not in header or wide:
        # the committed summary predates the mean or the tables: the rebuild changes it, so it needs --force
        assert main(["bench", "--resummarise", str(d)]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "--force" in err
        if "mean_ns" not in header:
            assert "fills columns it lacked" in err and "mean_ns" in err
        if wide:
            assert "becomes measurements/<probe>.csv" in err
        assert _summary_bytes(d) == before   # untouched
    assert main(["bench", "--resummarise", str(d), "--force"]) == 0
    capsys.readouterr()
    assert not (d / "measurements.csv").exists()
    rebuilt, prov = read_measurements(d)
    # every column the committed set had keeps its values; the batch size is the same
    pd.testing.assert_frame_equal(rebuilt[[c for c in header if c in rebuilt.columns]],
                                  committed[[c for c in header if c in committed.columns]])
    assert prov["batch_size_found"] == committed_prov["batch_size_found"]
    # a rebuild that changed the summary says so in the provenance (one that changed nothing has nothing to say)
    changed = "mean_ns" not in header or wide
    assert ("resummarised" in prov or not changed) and prov["dataset_id"] == committed_prov["dataset_id"]
    # the new mean, against the raw samples averaged here
    raw = read_raw(d, "fault_cost")
    for op, group in raw.groupby("op"):
        row = rebuilt[(rebuilt.probe == "fault_cost") & (rebuilt.op == op) & (rebuilt.measure == "ns")].iloc[0]
        assert row.mean_ns == pytest.approx(group["value"].sum() / len(group), rel=1e-9)
        assert row.mean_ci_low <= row.mean_ns <= row.mean_ci_high

    # a second rebuild changes nothing and writes nothing, not even the provenance
    everything = {f: f.read_bytes() for f in d.rglob("*") if f.is_file()}
    stamps = {f: f.stat().st_mtime_ns for f in everything}
    assert main(["bench", "--resummarise", str(d)]) == 0
    assert "is unchanged" in capsys.readouterr().out
    assert {f: f.read_bytes() for f in d.rglob("*") if f.is_file()} == everything
    assert {f: f.stat().st_mtime_ns for f in everything} == stamps

    # a cut-short table: refused without --force (the old one cannot be read), rebuilt with it
    table = d / "measurements" / "fault_cost.csv"
    text = table.read_text()
    table.write_text(text[: len(text) // 2])
    with pytest.raises(UserError, match="cannot be read"):
        resummarise(d)
    assert resummarise(d, force=True).written
    assert table.read_text() == text
    # a table that no raw output backs is named, and removed with --force
    from costmodel.bench.runner import raw_files

    absent = [p for p in PROBES if p.name not in raw_files(d / "raw")]
    if absent:
        stale = d / "measurements" / f"{absent[0].name}.csv"
        stale.write_text(",".join(absent[0].table_columns) + "\n")
        with pytest.raises(UserError, match=f"removes measurements/{absent[0].name}.csv"):
            resummarise(d)
        assert resummarise(d, force=True).written and not stale.exists()
    # a missing summary is simply written
    shutil.rmtree(d / "measurements")
    assert resummarise(d).written
    assert table.read_text() == text


def test_resummarise_refuses_what_it_cannot_do(tmp_path, capsys):
    from costmodel.bench.runner import resummarise

    with pytest.raises(UserError, match="no such measurement directory"):
        resummarise(tmp_path / "absent")
    (tmp_path / "d" / "raw").mkdir(parents=True)
    with pytest.raises(UserError, match="holds no <probe>.tsv.gz"):
        resummarise(tmp_path / "d")
    (tmp_path / "d" / "raw" / "shootdown.tsv.gz").write_bytes(gzip.compress((FIXTURES / "shootdown_good.tsv").read_bytes()))
    with pytest.raises(UserError, match="provenance.json is missing"):
        resummarise(tmp_path / "d")
    assert main(["bench", "--resummarise", str(tmp_path / "d"), "--quick"]) == 2
    assert "drop --quick" in capsys.readouterr().err


def test_directory_holding_only_an_empty_raw_dir_counts_as_empty(tmp_path, fake_probes):
    from costmodel.bench import run_suite

    out = tmp_path / "m"
    (out / "raw").mkdir(parents=True)   # what an interrupt before the first probe finished leaves
    result = run_suite(out, probes=["shootdown"], progress=False)
    assert result.status == {"shootdown": "done"}
    # but a raw/ with a file in it is a run to resume or replace
    other = tmp_path / "n"
    (other / "raw").mkdir(parents=True)
    (other / "raw" / "shootdown.tsv.gz").write_bytes(b"")
    with pytest.raises(UserError, match="already holds files"):
        run_suite(other, probes=["shootdown"], progress=False)
