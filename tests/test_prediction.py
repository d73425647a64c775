"""The prediction of the end-to-end probes, on a recorded quick run (AMD EPYC Zen 5 guest,
Linux 6.18) and the parameter set calibrated on the same machine that day.

Expected values are derived here by hand from the set's numbers: the parts of a copy and of a
reuse, the local drain of the held batch or of the writer's own batch at its uniform mean fill
(no drains: positions 0..B-1 alike, mean (B-1)/2), the residency of a fixed count ((B-1-k)/B at a
uniform position) and of a Poisson gap (the Poisson CDF at B-2), Wilson intervals from their formula.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats as sst

from costmodel import paramfile, prediction, registry
from costmodel.errors import UserError
from helpers import copy_price_ns, entry_price_ns

FIXTURES = Path(__file__).parent / "fixtures" / "prediction"
RUN = FIXTURES / "quick-amd"
PARAMS = FIXTURES / "kvm-amd-epyc-2cpu-linux6.18.json"
B = 31
MEAN_FILL = (B - 1) / 2   # the writer's own batch: uniform over 0..B-1 folios without drains


@pytest.fixture(scope="module")
def result():
    return prediction.predict(RUN, params=PARAMS)


@pytest.fixture(scope="module")
def p():
    """The fixture set's values as the prediction reads them (a parameter newer than the file
    migrated in at its registry default)."""
    from costmodel import paramfile

    return paramfile.load(PARAMS).values()


def _row(rows, **where):
    sel = rows
    for key, value in where.items():
        sel = sel[sel[key].isna()] if value is None else sel[sel[key] == value]
    assert len(sel) == 1, (where, len(sel))
    return sel.iloc[0]


def _entry(p, targets=0, elsewhere=0.0, forked_there=False):
    """What every fault pays: the entry (each of these faults comes alone: cold), the sibling cost
    while another CPU runs the mm, and, for the share ``elsewhere`` written on another CPU than the
    page's installer, what that adds, unless the fork ran on that CPU (``forked_there``: the
    workload probe forks on its writer, so the fork brought the page's lines there)."""
    return entry_price_ns(p, targets, cold=1.0) + (not forked_there) * elsewhere * p["cross_cpu_fault_ns"]


def _wilson(k, n, z=2.5758293035489004):
    ph = k / n
    centre = (ph + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(ph * (1 - ph) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (0.0 if k == 0 else centre - half), (1.0 if k == n else centre + half)


def test_every_configuration_is_predicted(result):
    rows, summary = result
    assert summary["policy"] == "drain_local" and summary["preset"] == "linux-6.18"
    assert (rows["probe"] == "workload").sum() == 19
    assert (rows["probe"] == "swap_cow").sum() == 24
    assert summary["configurations"] == 43


@pytest.mark.parametrize("targets", [0, 1])
def test_cross_cpu_write_at_position_zero_copies_and_pays_every_part(result, p, targets):
    rows, _ = result
    r = _row(rows, probe="workload", adds_between=0, drained_first=1, same_cpu_percent=0, target_cpus=targets)
    assert r.model_p_copy == pytest.approx(1.0)
    # not on an LRU: the writer drains its own batch (uniform fill), in vain, then copies
    expected = (_entry(p, targets, 1.0, forked_there=True) + copy_price_ns(p, targets) + p["cross_cpu_copy_ns"]
                + p["drain_base_ns"] + p["drain_per_folio_ns"] * MEAN_FILL)
    assert r.predicted_ns == pytest.approx(expected, rel=1e-6)


def test_same_cpu_write_drains_the_one_held_folio_and_reuses(result, p):
    rows, _ = result
    r = _row(rows, probe="workload", adds_between=0, drained_first=1, same_cpu_percent=100, target_cpus=0)
    assert r.model_p_copy == 0
    expected = _entry(p) + p["reuse_ns"] + p["drain_base_ns"] + p["drain_per_folio_ns"] * 1
    assert r.predicted_ns == pytest.approx(expected, rel=1e-6)


def test_half_the_writes_on_the_holding_cpu_is_the_even_mixture(result, p):
    rows, _ = result
    r = _row(rows, probe="workload", adds_between=0, drained_first=1, same_cpu_percent=50, target_cpus=0)
    assert r.model_p_copy == pytest.approx(0.5)
    # the copies are the writes on the other CPU: each pays what a copy there adds
    expected = (_entry(p, 0, 0.5, forked_there=True) + 0.5 * p["reuse_ns"] + 0.5 * (copy_price_ns(p, 0) + p["cross_cpu_copy_ns"])
                + p["drain_base_ns"] + p["drain_per_folio_ns"] * (0.5 * 1 + 0.5 * MEAN_FILL))
    assert r.predicted_ns == pytest.approx(expected, rel=1e-6)


def test_uniform_position_and_ten_adds(result, p):
    rows, _ = result
    r = _row(rows, probe="workload", adds_between=10, drained_first=0, same_cpu_percent=0, target_cpus=0)
    held = (B - 1 - 10) / B
    assert r.model_p_copy == pytest.approx(held, rel=1e-9)
    expected = (_entry(p, 0, 1.0, forked_there=True) + (1 - held) * p["reuse_ns"] + held * (copy_price_ns(p, 0) + p["cross_cpu_copy_ns"])
                + held * (p["drain_base_ns"] + p["drain_per_folio_ns"] * MEAN_FILL))
    assert r.predicted_ns == pytest.approx(expected, rel=1e-6)


def test_batch_flushed_before_the_write_is_a_plain_reuse(result, p):
    rows, _ = result
    r = _row(rows, probe="workload", adds_between=B + 9, drained_first=1, same_cpu_percent=0, target_cpus=1)
    assert r.model_p_copy == 0
    assert r.predicted_ns == pytest.approx(_entry(p, 1, 1.0, forked_there=True) + p["reuse_ns"], rel=1e-6)


def test_timed_gap_uses_the_adder_measured_adds(result):
    rows, _ = result
    prov = json.loads((RUN / "provenance.json").read_text())
    meta = prov["probes"]["workload"]["meta"]["gap_adds_100000_per_s_300_us_drained_1_same_0"]
    mean_adds = float(meta.split()[0].split("=")[1])
    r = _row(rows, probe="workload", adds_per_s=100000, drained_first=1, same_cpu_percent=0)
    # position 0: still held while fewer than B-1 adds came; Poisson with the measured mean
    assert r.model_p_copy == pytest.approx(sst.poisson.cdf(B - 2, mean_adds), rel=1e-6)


def test_measured_copy_fraction_and_its_99_percent_interval(result):
    rows, _ = result
    csv = pd.read_csv(RUN / "measurements.csv")
    sel = csv[(csv.probe == "workload") & (csv.measure == "copied") & (csv.adds_between == 10)
              & (csv.same_cpu_percent == 0) & (csv.target_cpus == 0)].iloc[0]
    r = _row(rows, probe="workload", adds_between=10, drained_first=0, same_cpu_percent=0, target_cpus=0)
    low, high = _wilson(int(sel.successes), int(sel.n))
    assert r.copied == pytest.approx(sel.successes / sel.n)
    assert (r.copied_ci_low, r.copied_ci_high) == pytest.approx((low, high), rel=1e-9)
    assert r.copy_inside == (low <= r.model_p_copy <= high)


def test_agreement_counts(result):
    rows, summary = result
    priced = rows[rows.priced]
    within = ((priced.predicted_ns / priced.mean_ns - 1).abs() <= 0.15).sum()
    assert summary["cost_within"] == within and summary["priced"] == len(priced) == 31
    assert summary["copy_inside"] == int(rows.copy_inside.sum()) and summary["copy_rows"] == 43


def test_swap_in_of_an_unshared_page_maps_it_writable_so_no_fault(result):
    rows, summary = result
    for sharing, path in (("exclusive", "direct"), ("exclusive", "readahead"), ("forked", "direct")):
        for _, r in rows[(rows.sharing == sharing) & (rows.swap_path == path)].iterrows():
            assert r.p_fault == 0 and not r.priced and "no WP fault" in r.model_lacks
            assert r.faulted == 0 and r.fault_inside   # the recorded kernel agrees
    assert summary["fault_rows"] == 24 and summary["fault_inside"] == 24


def test_forked_page_through_the_swap_cache_faults_and_reuses(result, p):
    rows, _ = result
    for _, r in rows[(rows.sharing == "forked") & (rows.swap_path == "readahead")].iterrows():
        assert r.p_fault == 1 and r.model_p_copy == 0
        # the reuse frees the page's swap entry (folio_free_swap): priced by swap_free_ns
        assert r.predicted_ns == pytest.approx(_entry(p, r.target_cpus, 1 - r.same_cpu) + p["reuse_ns"]
                                               + p["swap_free_ns"], rel=1e-6)
        # priced; this recording predates swap_cow's swap_fault rows, so swap_free_ns is assumed: said so
        assert r.priced and "swap_free_ns" in r.model_lacks


def test_page_shared_with_a_live_child_copies(result, p):
    rows, _ = result
    r = _row(rows, probe="swap_cow", sharing="child_alive", swap_path="direct", same_cpu=0, target_cpus=1)
    assert r.model_p_copy == 1
    # the child holds the swap entry, not the folio: the free is tried and fails (swap_shared_copy_ns)
    assert r.predicted_ns == pytest.approx(_entry(p, 1, 1.0) + copy_price_ns(p, 1) + p["cross_cpu_copy_ns"]
                                           + p["swap_shared_copy_ns"], rel=1e-6)


def test_loop_ratio_is_the_ratio_of_means(result):
    _, summary = result
    csv = pd.read_csv(RUN / "measurements.csv")
    loop = csv[(csv.op == "swap_loop") & (csv.swap_path == "direct")].set_index(["threads", "siblings"])["mean_ns"]
    ratio = next(r for r in summary["loop_ratios"] if r["swap_path"] == "direct" and r["against"].startswith("threads=2"))
    assert ratio["ratio"] == pytest.approx(loop[(2, "looping")] / loop[(1, "none")])
    assert ratio["ratio_ci_low"] < ratio["ratio"] < ratio["ratio_ci_high"]


def test_loop_prediction_adds_two_shootdowns_per_pageout_to_the_one_thread_time(result, p):
    """Linux 6.18 sends two TLB shootdowns per pageout of a written page: a spinning sibling
    makes each pageout wait for two, a second looping thread also interrupts this CPU twice per
    iteration of its own."""
    _, summary = result
    csv = pd.read_csv(RUN / "measurements.csv")
    for path in ("direct", "readahead"):
        loop = csv[(csv.op == "swap_loop") & (csv.swap_path == path)].set_index(["threads", "siblings"])["mean_ns"]
        one = loop[(1, "none")]
        shootdown = p["shootdown_base_ns"] + p["shootdown_per_cpu_ns"]
        for threads, siblings, expected in ((1, "spinning", one + 2 * shootdown),
                                            (2, "looping", one + 2 * (shootdown + p["shootdown_receive_ns"]))):
            r = next(r for r in summary["loop_ratios"]
                     if r["swap_path"] == path and r["against"] == f"threads={threads} siblings={siblings}")
            assert r["pageout_tlb_flushes"] == 2
            assert r["predicted_ns"] == pytest.approx(expected, rel=1e-9)
            assert r["predicted_ratio"] == pytest.approx(expected / one, rel=1e-9)
            assert r["predicted_ci_low"] <= r["predicted_ns"] <= r["predicted_ci_high"]
            measured_ratio = loop[(threads, siblings)] / one
            assert r["ratio_within"] == (abs(expected / one / measured_ratio - 1) <= 0.20)


def test_default_set_is_the_one_of_the_same_cpu(monkeypatch):
    prov = json.loads((RUN / "provenance.json").read_text())
    intel = paramfile.PARAMS_DIR / "kvm-intel-xeon-2cpu-linux6.18.json"
    monkeypatch.setattr(paramfile, "committed_sets", lambda: {"params/intel": intel, "reference/amd": PARAMS})
    with pytest.raises(UserError, match="no calibrated parameter set .* family 26"):
        prediction.choose_param_set(prov)
    monkeypatch.setattr(paramfile, "committed_sets", lambda: {"params/intel": intel, "params/amd": PARAMS})
    ps, how = prediction.choose_param_set(prov)
    assert ps.provenance["cpu_family"] == 26 and "params/amd" in how


def test_a_set_fitted_on_the_predicted_probes_is_refused(tmp_path):
    doc = json.loads(PARAMS.read_text())
    cheat = dict(doc["fit"][0], name="cheat", data="workload op=wp_write: mean ns")
    doc["fit"].append(cheat)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(UserError, match="held out"):
        prediction.predict(RUN, params=bad)


def _cmd(argv):
    from costmodel.commands import predict_cmd

    parser = argparse.ArgumentParser()
    predict_cmd.add_arguments(parser)
    return predict_cmd.run(parser.parse_args(argv))


def test_command_exit_status_follows_the_targets(capsys):
    assert _cmd([str(RUN), "--params", str(PARAMS)]) == 0
    out = capsys.readouterr().out
    assert "held out" in out and "where the model lacks a concept" in out
    assert _cmd([str(RUN), "--params", str(PARAMS), "--max-error", "0.01"]) == 1
    assert "below 1" in capsys.readouterr().err
    assert _cmd([str(RUN), "--params", str(PARAMS), "--max-error", "10", "--min-share", "0.85"]) == 0


def test_command_json(capsys):
    assert _cmd([str(RUN), "--params", str(PARAMS), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["rows"]) == 43 and doc["check"]["passed"]


@pytest.mark.parametrize("argv, match", [
    (["--max-error", "abc"], "--max-error 'abc'"),
    (["--max-error", "-1"], "--max-error"),
    (["--min-share", "0.5"], "--min-share needs --max-error"),
    (["--max-error", "0.1", "--min-share", "2"], "--min-share"),
])
def test_command_bad_options(argv, match):
    with pytest.raises(UserError, match=match):
        _cmd([str(RUN), "--params", str(PARAMS), *argv])


def test_command_directory_without_the_probes(tmp_path):
    d = tmp_path / "other"
    shutil.copytree(RUN, d)
    csv = pd.read_csv(d / "measurements.csv")
    csv["probe"] = "fault_cost"
    csv.iloc[0:0].to_csv(d / "measurements.csv", index=False)
    with pytest.raises(UserError, match="no workload or swap_cow"):
        _cmd([str(d), "--params", str(PARAMS)])


def _raise_to_generation_4(doc):
    """The fixture set (generation 3) as a generation-4 file: the parameters that generation
    added, at their registry defaults, marked assumed (as a migration fills them)."""
    doc["registry_generation"] = 4
    for name, e in registry.NUMERIC.items():
        if e.kind == registry.MACHINE and getattr(e, "introduced", None) == 4 and name not in doc["parameters"]:
            doc["parameters"][name] = {"value": e.default, "unit": e.unit, "ci_low": None, "ci_high": None,
                                       "source": "assumed", "note": "test"}


def test_every_workload_write_is_cold_and_a_swap_round_one_in_16(tmp_path, result):
    """The workload probe times the first write after each trial's fork (read in workload.c): with
    a cold-path cost of 400 ns every workload prediction rises by exactly 400 ns; swap_cow times 16
    writes in a row, as fault_cost's rounds: by 400/16 ns."""
    doc = json.loads(PARAMS.read_text())
    _raise_to_generation_4(doc)
    doc["parameters"]["cold_fault_ns"] = {"value": 400.0, "unit": "ns", "ci_low": 400.0, "ci_high": 400.0,
                                          "source": "measured", "note": "test"}
    warm = tmp_path / "cold.json"
    warm.write_text(json.dumps(doc))
    rows, _ = prediction.predict(RUN, params=warm)
    base, _ = result
    both = rows.merge(base, on=["probe", "config"], suffixes=("", "_base"))
    rise = both["predicted_ns"] - both["predicted_ns_base"]
    work = both["probe"] == "workload"
    assert rise[work].to_numpy() == pytest.approx(400.0, rel=1e-9)
    priced = (both["probe"] == "swap_cow") & both["priced"]
    assert rise[priced].to_numpy() == pytest.approx(400.0 / 16, rel=1e-9)


def test_interval_is_the_root_sum_of_its_parts(result):
    rows, summary = result
    priced = rows[rows["priced"]]
    halves = priced[["params_half_ns", "drift_half_ns", "model_half_ns", "measured_half_ns"]].to_numpy()
    total = (halves ** 2).sum(axis=1) ** 0.5
    assert (priced["predicted_ci_high"] - priced["predicted_ns"]).to_numpy() == pytest.approx(total, rel=1e-9)
    # the measured mean's own noise is one part: half its bootstrap interval
    assert priced["measured_half_ns"].to_numpy() == pytest.approx(
        ((priced["mean_ci_high"] - priced["mean_ci_low"]) / 2).to_numpy(), rel=1e-9)
    holds = [lo <= m <= hi for lo, m, hi in zip(priced["predicted_ci_low"], priced["mean_ns"], priced["predicted_ci_high"])]
    assert summary["interval_holds"] == sum(holds)


def test_a_set_of_another_cpu_is_named_so(tmp_path):
    """Predicting with another CPU's set warns and does not call it the same CPU."""
    doc = json.loads(PARAMS.read_text())
    doc["provenance"]["cpu_family"] = 6
    doc["provenance"]["cpu_model_number"] = 167
    doc["provenance"]["cpu_vendor"] = "GenuineIntel"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(doc))
    rows, summary = prediction.predict(RUN, params=other)
    text = prediction.describe(rows, summary)
    assert summary["same_cpu"] is False
    assert "NOT the same CPU" in text and "warning:" in text
    assert "same CPU, held out" not in text


def test_configuration_column_is_never_cut(result):
    rows, summary = result
    text = prediction.describe(rows, summary)
    for config in rows["config"]:
        assert f" {config} " in text


def test_a_cpu_without_a_committed_set_gets_one_line_with_the_two_commands(monkeypatch, capsys):
    """eval (through the default set's hint) and predict on a CPU no committed set
    comes from say so in one line naming the commands that make one."""
    from costmodel.bench import provenance
    from costmodel.commands import common

    fake = {"cpu_vendor": "GenuineIntel", "cpu_family": 6, "cpu_model_number": 999, "cpu_model": "Test CPU",
            "dataset_id": "kvm-intel-test-2cpu-linux6.18"}
    monkeypatch.setattr(provenance, "machine_facts", lambda *a, **k: dict(fake))
    common._machine_hint(paramfile.default_params_path())
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "no calibrated parameter set" in err[0]
    assert "costmodel bench --repeat 5 --out data/measurements/kvm-intel-test-2cpu-linux6.18" in err[0]
    assert "costmodel calibrate data/measurements/kvm-intel-test-2cpu-linux6.18 -o data/params/" in err[0]
    with pytest.raises(UserError, match="costmodel calibrate data/measurements/kvm-intel-test"):
        prediction.choose_param_set(fake)


def test_a_gap_that_ran_far_past_its_length_is_priced_at_its_nominal_rate():
    """Adds in a timed gap are about Poisson (variance/mean near 1); a trial held off for a second
    makes them overdispersed, and then their mean says nothing about the gap."""
    meta = {"gap_adds_100000_per_s_300_us_drained_1_same_100": "mean=233.1 var=16745821.5 gap_ns=2431644 trials=400",
            "gap_adds_50000_per_s_200_us_drained_0_same_0": "mean=9.02 var=10.47 gap_ns=210596 trials=400"}
    odd = prediction.gap_meta(meta, 100000, 300, 1, 100)
    assert odd[0] == "overdispersed" and odd[1] == pytest.approx(16745821.5 / 233.1)
    assert prediction.gap_meta(meta, 50000, 200, 0, 0) == pytest.approx((9.02, 210596e-9))


def test_drift_part_is_the_spread_of_the_rounds_own_calibrations(tmp_path, result):
    """A set whose rounds differ only in cold_fault_ns (0, 100, 200 ns): every workload write is
    cold, so the prediction moves by exactly that between rounds; its drift half is 1.96 x 100 ns.
    A swap_cow row (one cold write in 16) moves by 1/16 of it."""
    doc = json.loads(PARAMS.read_text())
    _raise_to_generation_4(doc)
    doc["parameters"]["cold_fault_ns"] = {"value": 100.0, "unit": "ns", "ci_low": 100.0, "ci_high": 100.0,
                                          "source": "measured", "note": "test"}
    doc["fit"].append({"name": "rounds", "method": "test", "parameters": ["cold_fault_ns"], "n_points": 0,
                       "residuals": [], "values_by_round": {"cold_fault_ns": [0.0, 100.0, 200.0]}})
    path = tmp_path / "rounds.json"
    path.write_text(json.dumps(doc))
    rows, summary = prediction.predict(RUN, params=path)
    assert summary["rounds"] == 3
    work = rows[rows["probe"] == "workload"]
    assert work["drift_half_ns"].to_numpy() == pytest.approx(1.959963984540054 * 100.0, rel=1e-6)
    swap = rows[(rows["probe"] == "swap_cow") & rows["priced"]]
    assert swap["drift_half_ns"].to_numpy() == pytest.approx(1.959963984540054 * 100.0 / 16, rel=1e-6)
    base, base_summary = result
    assert base_summary["rounds"] == 0 and (base["drift_half_ns"].fillna(0) == 0).all()
