"""The verdict's uncertainty: intervals from their sources, the Monte Carlo against analytic
variances, P(cheapest) at its limits and in the right direction, flip values against
break-evens, elasticities against hand derivations, and seeds that do not depend on chunking."""

from __future__ import annotations

import argparse
import math

import numpy as np
import pytest

from costmodel import registry, uncertainty as U
from costmodel.breakeven import breakeven
from costmodel.errors import UserError
from costmodel.evaluate import evaluate_point
from costmodel.model import CANDIDATES, POLICIES
from costmodel.paramfile import ParamSet, numeric_entry
from costmodel.stats import Z95
from helpers import copy_price_ns, entry_price_ns


def _normal(name, value, half_width, origin="measured"):
    """A symmetric 95% interval of +- half_width around value (drawn as a normal)."""
    return U.UncertainParameter(name, float(value), float(value - half_width), float(value + half_width), origin, "test")


# ---- propagation against the delta method ------------------------------------------------------


def test_linear_output_matches_its_analytic_variance():
    """mapcount never copies (no refcount test), so by hand its expected cost is
    fault_entry_ns + reuse_ns: the variance of a sum of independent normals."""
    v = registry.resolve()
    sd_entry, sd_reuse = 100 / Z95, 20 / Z95
    params = [_normal("fault_entry_ns", 500, 100), _normal("reuse_ns", 100, 20)]
    n = 40_000
    prop = U.propagate(v, params, draws=n, seed=3, policies=["mapcount"])
    e = prop.outputs["mapcount"]["expected_ns"]
    sd = math.sqrt(sd_entry ** 2 + sd_reuse ** 2)
    # quantiles of a normal, with the Monte Carlo error of a quantile estimate (about 3 sd / sqrt(n) here)
    mc = 4 * sd / math.sqrt(n) * 3
    assert e["median"] == pytest.approx(600, abs=mc)
    assert e["low"] == pytest.approx(600 - Z95 * sd, abs=mc)
    assert e["high"] == pytest.approx(600 + Z95 * sd, abs=mc)
    samples = prop.samples["mapcount"]
    assert samples.std() == pytest.approx(sd, rel=4 / math.sqrt(2 * n))


def test_weighted_linear_output_matches_the_delta_method():
    """With a transient reference on every fault (p_other_ref = 1) and no exclusive folios,
    copy_if_referenced copies always (p_copy = 1), so its cost is entry + alloc + bytes/bandwidth +
    local flush + shootdown(r) + free: linear, with weight r in shootdown_per_cpu_ns (linear shape)."""
    r = 5
    v = registry.resolve({"p_other_ref": 1.0, "p_exclusive": 0.0, "remote_cpus": r, "cpus": 16,
                          "shootdown_model": "linear"})
    widths = {"alloc_ns": 60.0, "free_ns": 30.0, "shootdown_per_cpu_ns": 80.0}
    params = [_normal(k, v[k], w) for k, w in widths.items()]
    n = 40_000
    prop = U.propagate(v, params, draws=n, seed=11, policies=["copy_if_referenced"])
    var = (widths["alloc_ns"] / Z95) ** 2 + (widths["free_ns"] / Z95) ** 2 + (r * widths["shootdown_per_cpu_ns"] / Z95) ** 2
    nominal = entry_price_ns(v) + copy_price_ns(v)  # by hand, the shootdown at r targets (linear)
    s = prop.samples["copy_if_referenced"]
    assert prop.outputs["copy_if_referenced"]["expected_ns"]["value"] == pytest.approx(nominal, rel=1e-12)
    assert s.mean() == pytest.approx(nominal, abs=4 * math.sqrt(var / n))
    assert s.var() == pytest.approx(var, rel=4 * math.sqrt(2 / n))


# ---- P(cheapest) ------------------------------------------------------------------------------


def test_zero_width_intervals_give_certainty():
    v = registry.resolve({"remote_cpus": 15, "cpus": 32})
    fixed = [U.UncertainParameter(n, float(v[n]), float(v[n]), float(v[n]), "measured", "exact")
             for n in ("alloc_ns", "remote_drain_ns", "shootdown_per_cpu_ns")]
    prop = U.propagate(v, fixed, draws=500, seed=0)
    assert set(prop.p_cheapest.values()) <= {0.0, 1.0}
    direct = evaluate_point(v, CANDIDATES)
    best = min(direct, key=lambda p: direct[p]["expected_ns"])
    assert prop.p_cheapest[best] == 1.0 and prop.cheapest == best
    e = prop.outputs[best]["expected_ns"]
    assert e["low"] == e["high"] == pytest.approx(direct[best]["expected_ns"], rel=1e-12)


def test_probabilities_sum_to_one_and_ties_split():
    v = registry.resolve()
    prop = U.propagate(v, draws=2000, seed=1)  # every default interval of the registry point
    assert set(prop.p_cheapest) == set(CANDIDATES)
    assert sum(prop.p_cheapest.values()) == pytest.approx(1.0, abs=1e-12)
    # two identical costs: each gets half
    shares = U.cheapest_shares(np.array([[1.0, 2.0], [1.0, 3.0], [5.0, 1.0]]))
    assert shares[:, 0].tolist() == [0.5, 0.5, 0.0] and shares[:, 1].tolist() == [0.0, 0.0, 1.0]


#: a point where the queued remote drain is the cheapest candidate: 20 CPUs in the mm, and the
#: lock-based remote drain priced out (each line transfer at its bound), so the remote drain's
#: own cost decides between it and the cheapest policy that copies instead
QUEUED_WINS = {"remote_cpus": 20, "cpus": 32, "cacheline_transfer_ns": 1e5}


def _runner_up(v):
    """The cheapest candidate at ``v`` whose cost does not move with remote_drain_ns (so the
    break-even on remote_drain_ns against drain_remote exists): found by pricing each at twice the
    remote drain, so that a policy added later that also drains the holder by queued work is left out."""
    out = evaluate_point(v, CANDIDATES)
    dearer = evaluate_point(registry.resolve(dict(v, remote_drain_ns=2 * v["remote_drain_ns"])), CANDIDATES)
    fixed = [p for p in out if p != "drain_remote"
             and dearer[p]["expected_ns"] == pytest.approx(out[p]["expected_ns"], rel=1e-12)]
    return min(fixed, key=lambda p: out[p]["expected_ns"])


def test_widening_an_assumed_range_across_the_break_even_lowers_the_winner():
    v = registry.resolve(QUEUED_WINS)
    direct = evaluate_point(v, CANDIDATES)
    assert min(direct, key=lambda p: direct[p]["expected_ns"]) == "drain_remote"
    runner = _runner_up(v)
    be = breakeven(v, "drain_remote", runner, "remote_drain_ns")
    (root,) = be.roots
    x = v["remote_drain_ns"]
    assert root > 1.5 * x
    p = {}
    for label, lo, hi in (("below", x - 100, x + 100), ("across", x / 1.5, 3 * root), ("far", x / 1.5, 30 * root)):
        # "below": a 95% interval whose upper end is 30 of its standard deviations short of the break-even
        rng = U.UncertainParameter("remote_drain_ns", x, lo, hi, "assumed", "test")
        prop = U.propagate(v, [rng], draws=4000, seed=5)
        p[label] = (prop.p_cheapest["drain_remote"], prop.p_cheapest[runner])
    # the range below the break-even cannot flip it; across it, some draws do; further, more do
    assert p["below"][0] == 1.0
    assert p["below"][0] > p["across"][0] > p["far"][0]
    assert p["below"][1] < p["across"][1] < p["far"][1]
    # the share flipped equals the probability mass above the break-even (one parameter, monotone)
    far = U.UncertainParameter("remote_drain_ns", x, x / 1.5, 30 * root, "assumed", "test")
    assert 1 - p["far"][0] == pytest.approx(1 - float(far.truncated_cdf(root)), abs=4 * math.sqrt(0.25 / 4000))


# ---- flips against break-even, elasticities against hand derivations ---------------------------


def test_flip_values_equal_breakeven():
    v = registry.resolve({"remote_cpus": 15, "cpus": 32})
    names = ["remote_drain_ns", "shootdown_per_cpu_ns", "alloc_ns", "p_same_cpu", "remote_cpus"]
    flips = U.flip_values(v, names)
    found = 0
    for fl in flips:
        integer = registry.NUMERIC[fl.parameter].integer
        for side, x, to in (("below", fl.below, fl.below_to), ("above", fl.above, fl.above_to)):
            if x is None:
                continue
            found += 1
            roots = breakeven(v, fl.cheapest, to, fl.parameter).roots
            target = x + 1 if (integer and side == "below") else x
            assert any(math.isclose(target, r, rel_tol=1e-9, abs_tol=1e-12) for r in roots), (fl, roots)
            # just past it, the named candidate is cheaper than the point's cheapest
            step = 1 if integer else max(abs(x) * 1e-6, 1e-9)
            past = x + step if side == "above" else x
            if not integer and side == "below":
                past = x - step
            point = registry.resolve(dict(v, **{fl.parameter: int(past) if integer else past}))
            costs = evaluate_point(point, (fl.cheapest, to))
            assert costs[to]["expected_ns"] < costs[fl.cheapest]["expected_ns"]
    assert found >= 2


def test_elasticities_against_hand_derivations():
    v = registry.resolve()
    el = U.elasticities(v, ["fault_entry_ns", "reuse_ns", "remote_drain_ns"], ["mapcount", "drain_local"])
    get = lambda n, p: el[(el["parameter"] == n) & (el["policy"] == p)].iloc[0]
    total = v["fault_entry_ns"] + v["reuse_ns"]  # mapcount's cost, by hand
    assert get("fault_entry_ns", "mapcount")["elasticity"] == pytest.approx(v["fault_entry_ns"] / total, rel=1e-12)
    assert get("reuse_ns", "mapcount")["elasticity"] == pytest.approx(v["reuse_ns"] / total, rel=1e-12)
    assert get("remote_drain_ns", "drain_local")["elasticity"] == 0.0  # drain_local never drains remotely
    assert (el["method"] == "sympy").all()


def test_elasticity_agrees_with_a_difference_of_the_model():
    v = registry.resolve({"gap_model": "exponential_time"})
    names = ["wp_gap_s", "batch_adds_per_s", "p_same_cpu", "shootdown_per_cpu_ns"]
    el = U.elasticities(v, names, ["drain_remote"])
    for n in names:
        h = v[n] * 1e-5
        up = evaluate_point(registry.resolve(dict(v, **{n: v[n] + h})), ["drain_remote"])["drain_remote"]["expected_ns"]
        dn = evaluate_point(registry.resolve(dict(v, **{n: v[n] - h})), ["drain_remote"])["drain_remote"]["expected_ns"]
        f = evaluate_point(v, ["drain_remote"])["drain_remote"]["expected_ns"]
        want = (up - dn) / (2 * h) * v[n] / f
        got = el[el["parameter"] == n]["elasticity"].iloc[0]
        assert got == pytest.approx(want, rel=1e-5, abs=1e-9), n


def test_ranking_puts_the_decisive_assumption_first():
    v = registry.resolve(QUEUED_WINS)
    x = v["remote_drain_ns"]
    runner = _runner_up(v)
    root = breakeven(v, "drain_remote", runner, "remote_drain_ns").roots[0]
    params = [U.UncertainParameter("remote_drain_ns", x, x / 2, 4 * root, "assumed", "test"),
              _normal("alloc_ns", v["alloc_ns"], 1.0), _normal("free_ns", v["free_ns"], 1.0)]
    sens = U.sensitivity(v, params, draws=3000, gain_draws=1500, flips_for=1)
    top = sens.table.iloc[0]
    assert top["parameter"] == "remote_drain_ns" and top["gain"] > 0
    assert top["flip_above"] == pytest.approx(root, rel=1e-9) and top["flips_to_above"] == runner
    # a parameter the verdict cannot hang on gains exactly nothing (same draws with and without it)
    assert (sens.table.set_index("parameter").loc[["alloc_ns", "free_ns"], "gain"].abs() < 0.01).all()


# ---- intervals from their sources -------------------------------------------------------------


def _paramset(**entries):
    return ParamSet("t", "test", dict(entries))


def test_intervals_come_from_the_file_the_registry_or_nowhere():
    v = registry.resolve({"alloc_ns": 350.0, "page_bytes": 4096, "drain_base_ns": 250.0})
    ps = _paramset(alloc_ns=numeric_entry("alloc_ns", 350.0, "measured", "fit", 340.0, 361.0),
                   page_bytes=numeric_entry("page_bytes", 4096, "measured", "from the machine"),
                   drain_base_ns=numeric_entry("drain_base_ns", 300.0, "measured", "fit", 290.0, 310.0),
                   free_ns=numeric_entry("free_ns", v["free_ns"], "assumed", "a guess"))
    got = {p.name: p for p in U.uncertain_parameters(v, ps, include_fixed=True)}
    assert (got["alloc_ns"].low, got["alloc_ns"].high, got["alloc_ns"].origin) == (340.0, 361.0, "measured")
    assert not got["page_bytes"].varies  # measured without an interval: exact
    # the point holds another value than the file's: the file's interval does not describe it
    lo, hi, _ = registry.default_interval("drain_base_ns", 250.0)
    assert (got["drain_base_ns"].low, got["drain_base_ns"].high) == (lo, hi)
    lo, hi, _ = registry.default_interval("free_ns", v["free_ns"])
    assert (got["free_ns"].low, got["free_ns"].high, got["free_ns"].origin) == (lo, hi, "assumed")
    for name, spec in registry.NUMERIC.items():
        if spec.kind == registry.WORKLOAD and registry.default_interval(name, v[name]) is None:
            assert not got[name].varies, name  # the scenario stays put
    widened = {p.name: p for p in U.uncertain_parameters(v, ps, vary={"p_same_cpu": (0.2, 0.8)})}
    assert widened["p_same_cpu"].distribution == U.UNIFORM and widened["p_same_cpu"].origin == U.VARIED


def test_draws_stay_in_bounds_and_keep_the_rules():
    v = registry.resolve({"remote_cpus": 3, "cpus": 8})
    params = [U.UncertainParameter("remote_cpus", 3, 0, 50, U.VARIED, "test"),
              U.UncertainParameter("drain_all_per_cpu_ns", 500.0, 0.0, 20000.0, "assumed", "test")]
    sample, redrawn = U.draw(params, v, 5000, seed=2)
    assert (sample["remote_cpus"] <= v["cpus"] - 1).all() and (sample["remote_cpus"] >= 0).all()
    assert np.array_equal(sample["remote_cpus"], np.round(sample["remote_cpus"]))
    assert redrawn > 0  # 0..50 against 8 CPUs: most first draws broke remote_cpus <= cpus - 1
    assert (sample["drain_all_per_cpu_ns"] >= 0).all()
    # kept draws are uniform over what the rule allows: 0..7, each about 1/8
    counts = np.bincount(sample["remote_cpus"].astype(int), minlength=8)
    assert counts.size == 8 and (np.abs(counts / 5000 - 1 / 8) < 0.03).all()
    with pytest.raises(UserError, match="keep the rule"):
        U.draw([U.UncertainParameter("remote_cpus", 3, 0, 4096, U.VARIED, "test")], v, 100, seed=0)


def test_sum_groups_move_together_or_against_each_other():
    v = registry.resolve()
    ps = _paramset(fault_entry_ns=numeric_entry("fault_entry_ns", v["fault_entry_ns"], "measured", "", 480, 520),
                   reuse_ns=numeric_entry("reuse_ns", v["reuse_ns"], "measured", "", 96, 104),
                   shootdown_base_ns=numeric_entry("shootdown_base_ns", v["shootdown_base_ns"], "measured", "", 400, 900),
                   shootdown_per_cpu_ns=numeric_entry("shootdown_per_cpu_ns", v["shootdown_per_cpu_ns"], "measured", "",
                                                      0, 500))
    ps.fit = [{"name": "a", "parameters": ["fault_entry_ns", "reuse_ns"], "identifiable": "fault_entry_ns + reuse_ns"},
              {"name": "b", "parameters": ["shootdown_base_ns", "shootdown_per_cpu_ns"],
               "identifiable": "sum only (one target count)"}]
    params = U.uncertain_parameters(v, ps)
    sample, _ = U.draw(params, v, 3000, seed=4)
    rank = lambda a: np.argsort(np.argsort(a))
    assert np.array_equal(rank(sample["fault_entry_ns"]), rank(sample["reuse_ns"]))  # split in a fixed ratio
    assert np.corrcoef(rank(sample["shootdown_base_ns"]), rank(sample["shootdown_per_cpu_ns"]))[0, 1] < -0.99


# ---- seeds and chunks --------------------------------------------------------------------------


def test_same_seed_same_numbers_whatever_the_chunking(monkeypatch):
    v = registry.resolve()
    params = U.uncertain_parameters(v)
    axes = {"remote_cpus": np.arange(1, 8, dtype=float), "wp_gap_s": np.geomspace(1e-6, 1e-2, 7)}
    a = U.propagate_grid(v, axes, params, draws=700, seed=9, policies=CANDIDATES)
    monkeypatch.setattr(U.grid, "CHUNK_ELEMENTS", 700 * 2)  # the module that cuts the chunks
    b = U.propagate_grid(v, axes, params, draws=700, seed=9, policies=CANDIDATES)
    assert np.array_equal(a.p_cheapest, b.p_cheapest)
    assert np.array_equal(a.intervals[("drain_local", "expected_ns")][0], b.intervals[("drain_local", "expected_ns")][0])
    c = U.propagate_grid(v, axes, params, draws=700, seed=10, policies=CANDIDATES)
    assert not np.array_equal(a.intervals[("drain_local", "expected_ns")][0], c.intervals[("drain_local", "expected_ns")][0])
    # the first n draws of a seed do not depend on n
    s1, _ = U.draw(params, v, 5000, seed=9)
    s2, _ = U.draw(params, v, 9000, seed=9)
    assert all(np.array_equal(s1[k], s2[k][:5000]) for k in s1)


def test_grid_point_equals_the_single_point_propagation():
    v = registry.resolve({"remote_cpus": 7, "cpus": 16})
    params = U.uncertain_parameters(v)
    grid = U.propagate_grid(v, {"remote_cpus": np.array([7.0])}, params, draws=3000, seed=2, policies=POLICIES)
    one = U.propagate(v, params, draws=3000, seed=2)
    for i, c in enumerate(grid.candidates):
        assert grid.p_cheapest[i, 0] == pytest.approx(one.p_cheapest[c], abs=1e-12)


def test_dask_cluster_gives_the_same_map():
    distributed = pytest.importorskip("distributed")
    v = registry.resolve()
    params = U.uncertain_parameters(v)
    axes = {"remote_cpus": np.arange(1, 41, dtype=float), "wp_gap_s": np.full(40, 2e-5)}
    here = U.propagate_grid(v, axes, params, draws=300, seed=6, policies=CANDIDATES, keys=())
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as lc, \
            distributed.Client(lc) as client:
        there = U.propagate_grid(v, axes, params, draws=300, seed=6, policies=CANDIDATES, keys=(), scheduler=client)
    assert np.array_equal(here.p_cheapest, there.p_cheapest, equal_nan=True)
    assert np.isfinite(here.p_cheapest[:, :7]).all()  # remote_cpus 1..7 keep the rules at 8 CPUs


# ---- commands ---------------------------------------------------------------------------------


def _run(capsys, module, *argv):
    import importlib

    mod = importlib.import_module(f"costmodel.commands.{module}")
    parser = argparse.ArgumentParser()
    mod.add_arguments(parser)
    args = parser.parse_args(list(argv))
    try:
        code = mod.run(args)
    except UserError as exc:
        return 2, "", str(exc)
    out, err = capsys.readouterr()
    return code, out, err


def test_eval_json_carries_intervals_draws_and_seed(capsys):
    import json

    code, out, _ = _run(capsys, "eval_cmd", "--params", "none", "--json", "--uncertainty", "--draws", "800", "--seed", "4")
    assert code == 0
    doc = json.loads(out)
    u = doc["uncertainty"]
    assert u["draws"] == 800 and u["seed"] == 4
    assert sum(u["p_cheapest"].values()) == pytest.approx(1.0)
    for p in POLICIES:
        e = u["outputs"][p]["expected_ns"]
        assert e["low"] <= e["median"] <= e["high"]
    code, out, _ = _run(capsys, "eval_cmd")
    assert "--uncertainty" in out  # the plain table says its costs rest on intervals


@pytest.mark.parametrize("argv,needle", [
    (["--vary-range", "remote_cpus"], "expected NAME=LO:HI"),
    (["--vary-range", "remote_cpu=1:3"], "did you mean remote_cpus"),
    (["--vary-range", "gap_model=1:2"], "categorical"),
    (["--vary-range", "p_same_cpu=0.8:0.2"], "LO 0.8 is above HI 0.2"),
    (["--vary-range", "p_same_cpu=0:__import__('os')"], "p_same_cpu"),
    (["--draws", "0"], "--draws"),
    (["--seed", "-1"], "--seed"),
])
def test_bad_uncertainty_options_are_one_line(capsys, argv, needle):
    code, _, err = _run(capsys, "eval_cmd", *argv)
    assert code == 2 and needle in err and "\n" not in err.strip()


def test_sensitivity_command_prints_ranking_and_tornado(capsys, tmp_path):
    chart = tmp_path / "t.vl.json"
    code, out, _ = _run(capsys, "sensitivity_cmd", "--params", "none", "--set", "remote_cpus=15", "--set", "cpus=32",
                        "--set", "cacheline_transfer_ns=100000", "--draws", "1500", "--chart", str(chart))
    assert code == 0
    assert "verdict: drain_remote" in out and "tornado" in out and "gain" in out
    assert chart.exists() and '"mark"' in chart.read_text()
    code, _, err = _run(capsys, "sensitivity_cmd", "--params", "none", "--draws", "200", "--chart", str(chart))
    assert code == 2 and "--force" in err  # never overwritten without --force


def test_sweep_uncertainty_columns(capsys, tmp_path):
    import pandas as pd

    out = tmp_path / "s.csv"
    code, msg, _ = _run(capsys, "sweep_cmd", "--params", "none", "--vary", "remote_cpus=1,4",
                        "--vary", "shootdown_model=linear,log2", "--uncertainty", "--draws", "300", "-o", str(out))
    assert code == 0 and "300 draws" in msg
    df = pd.read_csv(out)
    assert {"expected_ns_low", "expected_ns_high", "p_cheapest", "draws", "seed"} <= set(df.columns)
    assert (df["expected_ns_low"] <= df["expected_ns_high"]).all()
    sums = df[df["policy"].isin(CANDIDATES)].groupby(["remote_cpus", "shootdown_model"])["p_cheapest"].sum()
    assert np.allclose(sums, 1.0)
    # each row's interval is that point's own propagation
    row = df[(df["remote_cpus"] == 4) & (df["shootdown_model"] == "log2") & (df["policy"] == "drain_local")].iloc[0]
    v = registry.resolve({"remote_cpus": 4, "shootdown_model": "log2"})
    one = U.propagate(v, draws=300, seed=0)
    assert row["p_cheapest"] == pytest.approx(one.p_cheapest["drain_local"], abs=1e-12)
    assert row["expected_ns_high"] == pytest.approx(one.outputs["drain_local"]["expected_ns"]["high"], rel=1e-9)


def test_measured_targets_from_fit_records_and_provenance():
    ps = ParamSet("m", "test", {}, fit=[{"name": "shootdown", "residuals": [{"target_cpus": 1}, {"target_cpus": 31}]}])
    assert U.measured_targets(ps)[0] == 31
    ps = ParamSet("m", "test", {}, fit=[{"name": "x", "measured_targets_max": 7}])
    assert U.measured_targets(ps)[0] == 7
    ps = ParamSet("m", "test", {}, provenance={"online_cpus": 4})
    assert U.measured_targets(ps)[0] == 3
    assert U.measured_targets(ParamSet("m", "test", {}))[0] is None
    assert U.measured_targets(None)[0] is None



def test_a_vary_range_must_hold_the_point_and_keep_the_rules(capsys):
    """--vary-range that leaves out the point's own value, or reaches past a rule between parameters
    (remote_cpus <= cpus - 1) while the partner stays put, is refused with one line."""
    from costmodel.cli import main

    assert main(["eval", "--draws", "200", "--params", "none", "--set", "remote_drain_ns=5000",
                 "--vary-range", "remote_drain_ns=1000:2000"]) == 2
    err = capsys.readouterr().err.strip()
    assert "leaves out the point's own value" in err and "\n" not in err
    assert main(["eval", "--draws", "200", "--params", "none", "--set", "cpus=8",
                 "--vary-range", "remote_cpus=1:10"]) == 2
    err = capsys.readouterr().err.strip()
    assert "goes beyond" in err and "cpus" in err and "\n" not in err
    assert main(["eval", "--draws", "200", "--params", "none", "--set", "cpus=8", "--vary-range", "remote_cpus=1:7"]) == 0


# ---- what would flip the verdict: every parameter searched, the bar against who can overtake -----


@pytest.fixture(scope="module")
def shipped_sensitivity():
    """The sensitivity the report and the explorer notebook show for the shipped default set."""
    from costmodel import presets

    values, paramset, _ = presets.default_values()
    params = U.uncertain_parameters(values, paramset)
    return values, U.sensitivity(values, params, draws=2000, gain_draws=500, seed=0)


def _cheapest_over(values, name, xs):
    """The cheapest candidate at each value of ``name``, by evaluating every candidate point by point."""
    out = []
    for x in xs:
        x = int(round(x)) if registry.NUMERIC[name].integer else float(x)
        at = evaluate_point(registry.resolve(dict(values, **{name: x})), CANDIDATES)
        out.append(min(CANDIDATES, key=lambda p: at[p]["expected_ns"]))
    return out


def test_every_parameter_is_searched_and_no_flip_means_none(shipped_sensitivity):
    """the explorer searched only the first four parameters and called the rest
    "no flip". Every row is searched by default, and a row that says "no flip" holds up under an
    independent scan of the parameter's whole registry range, point by point."""
    from costmodel.chartdata import flip_words, tornado_data
    from costmodel.textfmt import format_value

    values, sens = shipped_sensitivity
    assert len(sens.table) > 4 and sens.table["flip_searched"].all()
    assert "not searched" not in set(tornado_data(sens, n=None)["flip"])
    best = sens.cheapest
    for r in sens.table.to_dict("records"):
        spec = registry.NUMERIC[r["parameter"]]
        lo, hi = spec.low, min(spec.high, 1e9)
        xs = np.unique(np.concatenate([np.linspace(lo, hi, 400), np.geomspace(max(lo, 1e-3), hi, 400),
                                       [r["value"]]]))
        winners = set(_cheapest_over(values, r["parameter"], xs))
        if r["flip_below"] is None and r["flip_above"] is None:
            assert winners == {best}, (r["parameter"], winners)
            assert "no flip" in flip_words(r, format_value)
        else:
            assert winners != {best}, r["parameter"]
            # the nearest flip is where the scan first sees another candidate cheapest
            x = r["flip_above"] if r["flip_above"] is not None else r["flip_below"]
            who = r["flips_to_above"] if r["flip_above"] is not None else r["flips_to_below"]
            step = 1.0 if spec.integer else 1e-6 * max(abs(x), 1.0)
            beyond = x + step if r["flip_above"] is not None else x - step
            assert _cheapest_over(values, r["parameter"], [beyond]) == [who], r["parameter"]
    # the one the CLI found and the notebook missed (alloc_ns, to drain_remote): with the lock-based
    # drain priced out, as before the 2026 proposals were declared
    out_values = registry.resolve(dict(values, cacheline_transfer_ns=1e5))
    out_params = U.uncertain_parameters(out_values, None)
    out_sens = U.sensitivity(out_values, [p for p in out_params if p.name == "alloc_ns"], draws=500, gain_draws=200)
    alloc = out_sens.table.set_index("parameter").loc["alloc_ns"]
    assert alloc["flip_above"] is not None and alloc["flips_to_above"] == "drain_remote", dict(alloc)
    beyond = alloc["flip_above"] * (1 + 1e-6)
    assert _cheapest_over(out_values, "alloc_ns", [beyond]) == ["drain_remote"]


def test_a_row_not_searched_says_so():
    v = registry.resolve({"remote_cpus": 15, "cpus": 32})
    params = [_normal("alloc_ns", v["alloc_ns"], 100.0), _normal("free_ns", v["free_ns"], 50.0)]
    sens = U.sensitivity(v, params, draws=500, gain_draws=200, flips_for=1)
    assert list(sens.table["flip_searched"]) == [True, False]
    from costmodel.chartdata import tornado_data

    assert tornado_data(sens)["flip"].iloc[1] == "not searched"


def test_tornado_margin_is_against_the_candidate_that_can_overtake(shipped_sensitivity):
    """drain_local_always costs drain_local's plus a constant (the local drain), so measuring the
    margin against it gave every bar one dot at the same value. Each bar is against the
    candidate that can overtake: its margin, recomputed here from the costs, moves with the
    parameter wherever any candidate's does, and it crosses zero exactly where a flip lies in
    the interval."""
    values, sens = shipped_sensitivity
    best = sens.cheapest
    for r in sens.table.to_dict("records"):
        name, rival = r["parameter"], r["rival"]
        assert rival in CANDIDATES and rival != best
        ends = [float(r["low"]), float(r["high"])]
        costs = [evaluate_point(registry.resolve(dict(values, **{name: int(x) if registry.NUMERIC[name].integer
                                                                  else x})), CANDIDATES) for x in ends]
        margin = [c[rival]["expected_ns"] - c[best]["expected_ns"] for c in costs]
        assert r["margin_at_low"] == pytest.approx(margin[0], rel=1e-9, abs=1e-6)
        assert r["margin_at_high"] == pytest.approx(margin[1], rel=1e-9, abs=1e-6)
        any_moves = any(abs((c1[p]["expected_ns"] - c1[best]["expected_ns"])
                            - (c0[p]["expected_ns"] - c0[best]["expected_ns"])) > 1e-6
                        for p in CANDIDATES if p != best for c0, c1 in [costs])
        if any_moves:
            assert r["rival_moves"] and margin[0] != pytest.approx(margin[1], rel=1e-12), name
        assert (r["margin_min"] < 0) == bool(r["flip_in_interval"]), name
    # not one dot at the same value for all: the bars differ
    assert sens.table["margin_at_value"].round(3).nunique() > 2
    assert set(sens.table["rival"]) - {"drain_local_always"}


def test_flip_inside_the_interval_crosses_zero():
    # the lock-based remote drain priced out, so the queued one's cost decides the verdict
    v = registry.resolve({"remote_cpus": 15, "cpus": 32, "cacheline_transfer_ns": 1e5})
    rival = _runner_up(v)
    root = breakeven(v, "drain_remote", rival, "remote_drain_ns").roots[0]
    x = v["remote_drain_ns"]
    params = [U.UncertainParameter("remote_drain_ns", x, x / 2, 4 * root, "assumed", "test")]
    r = U.sensitivity(v, params, draws=500, gain_draws=200).table.iloc[0]
    assert r["flip_in_interval"] and r["margin_min"] < 0 < r["margin_max"]
    # the margin against the cheapest other candidate, by hand at the top of the interval
    at = evaluate_point(registry.resolve(dict(v, remote_drain_ns=4 * root)), CANDIDATES)
    top_rival = min((p for p in at if p != "drain_remote"), key=lambda p: at[p]["expected_ns"])
    assert r["rival"] == top_rival
    assert r["margin_at_high"] == pytest.approx(at[top_rival]["expected_ns"] - at["drain_remote"]["expected_ns"],
                                                rel=1e-9)
