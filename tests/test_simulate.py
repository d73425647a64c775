"""The event simulation against the model's closed forms, exact cases, reproducibility, Dask, CLI.

Every expected value here comes from the model (an independent derivation) or from a closed form
written out in the test, never from the simulator's own output.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import linalg, stats

from costmodel import registry
from costmodel.cli import main
from costmodel.errors import UserError
from costmodel.evaluate import evaluate_point, residency_value
from costmodel.model import BREAKDOWN, OUTPUTS, POLICIES, Policy
from costmodel.model.policies import ALWAYS, DRAIN_ALL, NEVER
from costmodel.simulate import (MMPP, BatchPoisson, GapHistogram, Periodic, arrival_process, simulate)

PROBABILITIES = ("p_copy", "p_unnecessary_copy", "p_local_drain", "p_remote_drain", "p_drain_all",
                 "orphaned_pages_per_fault")
COSTS = ("expected_ns", "cpu_us_per_s")


def inside(estimate, model_value: float) -> bool:
    slack = 1e-9 * max(1.0, abs(model_value))  # exactly-known values: float rounding only
    return estimate.low - slack <= model_value <= estimate.high + slack


def disagreements(result, model: dict, residency: float, outputs=PROBABILITIES + COSTS) -> list[str]:
    bad = []
    if not inside(result.residency, residency):
        bad.append(f"residency: model {residency:.6g}, sim {result.residency}")
    check_breakdown = any(k in COSTS for k in outputs)
    for pol, sim in result.policies.items():
        for key in outputs:
            if not inside(sim[key], model[pol][key]):
                bad.append(f"{pol}.{key}: model {model[pol][key]:.6g}, sim {sim[key]}")
        for part in BREAKDOWN if check_breakdown else ():
            if not inside(sim["breakdown_ns"][part], model[pol]["breakdown_ns"][part]):
                bad.append(f"{pol}.breakdown_ns.{part}: model {model[pol]['breakdown_ns'][part]:.6g},"
                           f" sim {sim['breakdown_ns'][part]}")
    return bad


# ---- (a) agreement with every closed form --------------------------------------------------------


@st.composite
def points(draw):
    B = draw(st.integers(1, 40))
    lam = draw(st.one_of(st.just(0.0), st.floats(3, 7).map(lambda x: 10.0**x)))
    scale = lam or 1e4
    mu = draw(st.one_of(st.just(0.0), st.floats(-3, 0).map(lambda x: scale * 10.0**x)))
    nu = draw(st.one_of(st.just(0.0), st.floats(-3, -0.5).map(lambda x: min(1e5, scale * 10.0**x))))
    prob = st.one_of(st.just(0.0), st.floats(0.0, 0.5))
    cpus = draw(st.integers(2, 64))
    return registry.resolve(dict(
        batch_size=B, batch_adds_per_s=lam, explicit_drains_per_s=mu, drain_all_per_s=nu,
        gap_model=draw(st.sampled_from(registry.CATEGORICAL["gap_model"].choices)),
        adds_between=draw(st.integers(0, B + 2)),
        wp_gap_s=draw(st.floats(0.0, 2.0 * B)) / scale,
        position_model=draw(st.sampled_from(registry.CATEGORICAL["position_model"].choices)),
        batch_position=draw(st.integers(0, B - 1)),
        p_same_cpu=draw(st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0))),
        p_exclusive=draw(prob), p_other_ref=draw(prob), p_large_folio=draw(prob),
        cpus=cpus, remote_cpus=draw(st.integers(0, cpus - 1)),
        shootdown_model=draw(st.sampled_from(registry.CATEGORICAL["shootdown_model"].choices)),
        remote_drain_ns=draw(st.floats(0, 2e4)), drain_all_base_ns=draw(st.floats(0, 5e4)),
        drain_base_ns=draw(st.floats(0, 2e3)),
        # The per-folio term of the local drain is exact in the model when no drains run (the
        # held batch's fill, and the uniform fill of any other); with drains, two documented
        # approximations remain (drain-all correlation, drain_local_always after a drain), so
        # it is left out there. test_local_drain_fill_* below cover the drained cases.
        drain_per_folio_ns=draw(st.floats(0, 200)) if mu == 0 and nu == 0 else 0.0,
    ))


@settings(max_examples=100, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=points())
def test_every_closed_form_inside_the_simulated_interval(values):
    result = simulate(values, faults=400_000, seed=20260101)
    model = evaluate_point(values)
    bad = disagreements(result, model, residency_value(values))
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("position_model", ["stationary", "fixed"])
@pytest.mark.parametrize("gap_model", ["fixed_count", "fixed_time", "exponential_time"])
def test_each_gap_and_position_model_with_both_kinds_of_drain(gap_model, position_model):
    values = registry.resolve({"gap_model": gap_model, "position_model": position_model, "batch_size": 15,
                               "batch_position": 4, "adds_between": 6, "wp_gap_s": 3e-5,
                               "explicit_drains_per_s": 8e3, "drain_all_per_s": 3e3, "p_large_folio": 0.1,
                               "p_exclusive": 0.1, "p_other_ref": 0.05, "drain_per_folio_ns": 0})
    result = simulate(values, faults=400_000, seed=17)
    bad = disagreements(result, evaluate_point(values), residency_value(values))
    assert not bad, "\n".join(bad)
    assert 0.05 < result.residency.value < 0.95  # a point where residency is neither 0 nor 1


def test_defaults_agree_with_the_model_with_drains_of_both_kinds():
    values = registry.resolve({"drain_all_per_s": 2e3, "explicit_drains_per_s": 5e3, "drain_per_folio_ns": 0})
    result = simulate(values, faults=1_000_000, seed=3)
    assert not disagreements(result, evaluate_point(values), residency_value(values))


@pytest.mark.parametrize("gap_model", ["fixed_time", "exponential_time", "fixed_count"])
def test_local_drain_fill_on_another_cpu_matches_the_model(gap_model):
    """A writer on another CPU, with only local drains, drains a batch that knows nothing of the
    page: the model's stationary mean fill is then exact, per-folio cost included."""
    values = registry.resolve({"p_same_cpu": 0.0, "drain_per_folio_ns": 80.0, "gap_model": gap_model,
                               "adds_between": 4, "batch_size": 15, "explicit_drains_per_s": 3e4,
                               "drain_all_per_s": 0.0})
    result = simulate(values, ["drain_local", "drain_local_always"], faults=1_000_000, seed=11)
    model = evaluate_point(values, ["drain_local", "drain_local_always"])
    assert not disagreements(result, model, residency_value(values))
    fill = result.policies["drain_local_always"]["mean_local_drain_folios"]
    assert inside(fill, result.model_occupancy)


def model_folios_per_local_drain(values, policy):
    unit = evaluate_point(dict(values, drain_base_ns=0.0, drain_per_folio_ns=1.0), [policy])[policy]
    return unit["breakdown_ns"]["local_drain"] / unit["p_local_drain"]


def test_local_drain_fill_on_the_holding_cpu_matches_the_model():
    """The writer's own batch still holds the page and every add since: fuller than average
    (the simulation found this; the model now prices it, see held_batch_fill)."""
    values = registry.resolve({"p_same_cpu": 1.0})
    result = simulate(values, ["drain_local"], faults=1_000_000, seed=5)
    model = evaluate_point(values, ["drain_local"])
    fill = result.policies["drain_local"]["mean_local_drain_folios"]
    assert inside(fill, model_folios_per_local_drain(values, "drain_local"))
    assert not inside(fill, result.model_occupancy)  # the stationary mean would be wrong here
    assert inside(result.policies["drain_local"]["expected_ns"], model["drain_local"]["expected_ns"])


@pytest.mark.xfail(strict=True, reason=(
    "known approximation of the model: a drain-all empties every batch at once, so a page still held"
    " (no drain-all in the gap) means the writer's batch on another CPU has not been emptied for at"
    " least the gap either; the model prices that drain at the unconditional stationary fill"
    " (p_same_cpu=0, drain_all_per_s=2e4, no local drains, B=15, wp_gap_s=3e-5: 6.28 folios per"
    " drain, not 5.28; about 1% of expected_ns)"))
def test_local_drain_fill_on_another_cpu_after_drain_all_matches_the_model():
    values = registry.resolve({"p_same_cpu": 0.0, "explicit_drains_per_s": 0.0, "drain_all_per_s": 2e4,
                               "batch_size": 15, "wp_gap_s": 3e-5})
    result = simulate(values, ["drain_local"], faults=1_000_000, seed=2)
    model = evaluate_point(values, ["drain_local"])
    assert inside(result.policies["drain_local"]["mean_local_drain_folios"], result.model_occupancy)
    assert inside(result.policies["drain_local"]["expected_ns"], model["drain_local"]["expected_ns"])


def test_local_drain_fill_on_another_cpu_after_drain_all_against_quadrature():
    """What that xfail expects instead, derived without the simulator: drain-all only (rate nu),
    Poisson adds, exponential gap g. X, the time from the install back to the last drain-all, is
    Exp(nu) and independent of g; the page is held iff no drain-all came in the gap and
    (N_h(X) mod B) + N_h(g) < B - 1; the writer's batch then holds N_w(g + X) mod B."""
    lam, nu, B, t = 2e5, 2e4, 15, 3e-5
    nodes, weights = np.polynomial.laguerre.laggauss(40)  # integrals against e^-u
    ks, js = np.arange(0, 3000), np.arange(B)

    def mod_law(mean):  # P(Poisson(mean) mod B = j)
        return np.bincount(ks % B, weights=stats.poisson.pmf(ks, mean), minlength=B)

    held = fill = 0.0
    for u, wu in zip(nodes, weights):
        g = t * u
        few_adds = stats.poisson.cdf(B - 2 - js, lam * g)
        for v, wv in zip(nodes, weights):
            p_held = math.exp(-nu * g) * np.dot(mod_law(lam * v / nu), few_adds)
            held += wu * wv * p_held
            fill += wu * wv * p_held * np.dot(js, mod_law(lam * (g + v / nu)))
    values = registry.resolve({"p_same_cpu": 0.0, "explicit_drains_per_s": 0.0, "drain_all_per_s": nu,
                               "batch_size": B, "wp_gap_s": t, "batch_adds_per_s": lam})
    result = simulate(values, ["drain_local"], faults=1_000_000, seed=12)
    assert inside(result.residency, held)
    assert inside(result.policies["drain_local"]["mean_local_drain_folios"], fill / held)


def test_local_drain_fill_on_the_holding_cpu_against_the_race():
    """What the xfail above expects instead, derived without the simulator: with Poisson adds and
    drains and an exponential gap, adds, drains and the WP fault race; the page at position j is
    still held after m adds iff no drain came first and j + m < B - 1, and the batch then holds
    j + 1 + m folios. The stationary law of j is the model's (checked against its balance
    equations in test_residency)."""
    values = registry.resolve({"p_same_cpu": 1.0, "batch_size": 15, "explicit_drains_per_s": 2e4})
    lam, t, B = values["batch_adds_per_s"], values["wp_gap_s"], values["batch_size"]
    delta = values["explicit_drains_per_s"] + values["drain_all_per_s"]
    p = lam / (lam + delta)
    position = p ** np.arange(B) / np.sum(p ** np.arange(B))
    a, wp_first = lam / (lam + delta + 1 / t), (1 / t) / (lam + delta + 1 / t)
    weight = fill = 0.0
    for j in range(B):
        for m in range(B - 1 - j):
            w = position[j] * a**m * wp_first
            weight, fill = weight + w, fill + w * (j + 1 + m)
    result = simulate(values, ["drain_local"], faults=1_000_000, seed=6)
    assert inside(result.residency, weight)
    assert inside(result.policies["drain_local"]["mean_local_drain_folios"], fill / weight)


def test_gap_histogram_agrees_with_the_fixed_time_model_mixed_over_it():
    gaps, weights = np.array([0.0, 2e-5, 1e-4, 4e-4]), np.array([3.0, 4.0, 2.0, 1.0])
    base = registry.resolve({"gap_model": "fixed_time", "drain_per_folio_ns": 0, "explicit_drains_per_s": 2e3,
                             "batch_size": 15})
    result = simulate(base, faults=1_000_000, seed=9, gap_histogram=GapHistogram(gaps, weights))
    w = weights / weights.sum()
    per_gap = [evaluate_point(dict(base, wp_gap_s=g)) for g in gaps]
    # every output is affine in the residency at a fixed gap, so it mixes linearly over the gaps
    model = {p: {k: sum(wi * m[p][k] for wi, m in zip(w, per_gap)) for k in OUTPUTS} for p in POLICIES}
    for p in POLICIES:
        model[p]["breakdown_ns"] = {b: sum(wi * m[p]["breakdown_ns"][b] for wi, m in zip(w, per_gap)) for b in BREAKDOWN}
    residency = sum(wi * residency_value(dict(base, wp_gap_s=g)) for wi, g in zip(w, gaps))
    assert not disagreements(result, model, residency)


def test_a_new_policy_needs_no_change_in_the_simulator(monkeypatch):
    extra = Policy("always_then_all", True, ALWAYS, DRAIN_ALL, "test-only policy")
    odd = Policy("never_then_all", True, NEVER, DRAIN_ALL, "test-only policy")
    monkeypatch.setitem(POLICIES, extra.name, extra)
    monkeypatch.setitem(POLICIES, odd.name, odd)
    values = registry.resolve({"drain_per_folio_ns": 0, "p_large_folio": 0.2, "p_exclusive": 0.1})
    names = [extra.name, odd.name]
    result = simulate(values, names, faults=500_000, seed=4)
    assert not disagreements(result, evaluate_point(values, names), residency_value(values))


# ---- arrival processes beyond the model, each against its own closed form -----------------------


def _no_drains(**kw):
    return registry.resolve(dict(explicit_drains_per_s=0, drain_all_per_s=0, **kw))


def test_mmpp_with_equal_rates_is_the_poisson_model():
    values = registry.resolve({"drain_per_folio_ns": 0, "explicit_drains_per_s": 5e3})
    result = simulate(values, faults=500_000, seed=2, arrivals=MMPP(burst_ratio=1.0, p_burst=0.3, mean_burst_s=2e-5))
    assert not disagreements(result, evaluate_point(values), residency_value(values))


def test_mmpp_residency_against_its_matrix_exponential():
    """Fixed position j, fixed gap g, no drains: resident iff fewer than n = B-1-j adds in (0, g],
    starting from the phase law seen by an add. P(N(g) < n) from the generator of (count, phase)."""
    B, j, lam, g = 8, 2, 2e5, 2e-5
    proc = MMPP(burst_ratio=20.0, p_burst=0.1, mean_burst_s=2e-5)
    values = _no_drains(batch_size=B, batch_position=j, position_model="fixed", gap_model="fixed_time",
                        batch_adds_per_s=lam, wp_gap_s=g)
    f, r = proc.p_burst, proc.burst_ratio
    rates = np.array([lam / (f * r + 1 - f), r * lam / (f * r + 1 - f)])
    leave = np.array([f / (1 - f), 1.0]) / proc.mean_burst_s
    n = B - 1 - j
    G = np.zeros((2 * n, 2 * n))
    for c in range(n):
        for s in range(2):
            i = 2 * c + s
            G[i, 2 * c + 1 - s] = leave[s]
            if c + 1 < n:
                G[i, 2 * (c + 1) + s] = rates[s]
            G[i, i] = -(leave[s] + rates[s])
    start = np.zeros(2 * n)
    start[:2] = [(1 - f) * rates[0], f * rates[1]]
    start /= start.sum()
    expected = float(start @ linalg.expm(G * g) @ np.ones(2 * n))
    result = simulate(values, ["drain_local"], faults=1_000_000, seed=8, arrivals=proc)
    assert inside(result.residency, expected)
    assert not inside(result.residency, residency_value(values)), "bursts should break the Poisson form here"


def test_batch_poisson_residency_against_its_compound_law():
    """Fixed position, fixed gap, no drains: the page's own burst-mates after it (geometric) plus
    k later bursts of geometric size, k ~ Poisson(burst rate x g), must stay below n."""
    B, j, lam, g, mean_batch = 31, 10, 2e5, 3e-5, 4.0
    values = _no_drains(batch_size=B, batch_position=j, position_model="fixed", gap_model="fixed_time",
                        batch_adds_per_s=lam, wp_gap_s=g)
    n, q, rho = B - 1 - j, 1 / mean_batch, lam / mean_batch * g
    ks = np.arange(0, n)
    expected = float(np.sum(stats.poisson.pmf(ks, rho) * stats.nbinom.cdf(n - 1 - ks, ks + 1, q)))
    result = simulate(values, ["drain_local"], faults=1_000_000, seed=8, arrivals=BatchPoisson(mean_batch))
    assert inside(result.residency, expected)


def test_periodic_adds_without_drains_give_the_uniform_line_and_the_step():
    B, k = 15, 4
    stationary = simulate(_no_drains(batch_size=B, gap_model="fixed_count", adds_between=k),
                          ["drain_local"], faults=300_000, seed=1, arrivals="periodic")
    assert inside(stationary.residency, (B - 1 - k) / B)
    # fixed position 3, fixed gap: floor(lam g) adds, nothing random about residency
    for g, expected in [(10.5 / 2e5, 1.0), (11.5 / 2e5, 0.0)]:
        fixed = simulate(_no_drains(batch_size=B, position_model="fixed", batch_position=3, gap_model="fixed_time",
                                    wp_gap_s=g), ["drain_local"], faults=50_000, seed=1, arrivals=Periodic())
        assert fixed.residency.value == expected


def test_arrival_parameters_are_checked():
    assert arrival_process("mmpp", {"burst_ratio": "5"}).burst_ratio == 5.0
    for name, params, needle in [("mmpp", {"p_burst": "1"}, "p_burst"),
                                 ("mmpp", {"mean_burst_s": "nan"}, "mean_burst_s"),
                                 ("batch_poisson", {"mean_batch": "0.5"}, "mean_batch"),
                                 ("batch_poisson", {"mean_batch": "__import__('os')"}, "not a number"),
                                 ("periodic", {"x": "1"}, "unknown parameter"),
                                 ("bursty", {}, "not known")]:
        with pytest.raises(UserError, match=needle):
            arrival_process(name, params)


def test_gap_histogram_csv(tmp_path):
    good = tmp_path / "gaps.csv"
    good.write_text("gap_lo_s,gap_hi_s,count\n0,1e-5,3\n1e-5,3e-5,1\n")
    h = GapHistogram.from_csv(good)
    assert h.mean_s == pytest.approx((3 * 0.5e-5 + 1 * 2e-5) / 4)
    sample = h.sample(np.random.default_rng(0), 10_000)
    assert sample.min() >= 0 and sample.max() <= 3e-5
    for text, needle in [("gap,count\n1,2\n", "header"), ("gap_s,count\n1,x\n", "not a number"),
                         ("gap_s,count\n-1,2\n", ">= 0"), ("gap_s,count\n1,0\n", "not all 0"),
                         ("gap_s,count\n", "no rows")]:
        bad = tmp_path / "bad.csv"
        bad.write_text(text)
        with pytest.raises(UserError, match=needle):
            GapHistogram.from_csv(bad)


# ---- (b) cases with exact answers ----------------------------------------------------------------


@pytest.mark.parametrize("k", [0, 5, 13, 14, 20])
def test_fixed_count_position_zero_is_a_step(k):
    B = 15
    values = _no_drains(batch_size=B, gap_model="fixed_count", adds_between=k, position_model="fixed",
                        batch_position=0)
    result = simulate(values, ["drain_local"], faults=20_000, seed=k)
    assert result.residency.value == (1.0 if k < B - 1 else 0.0)
    assert result.residency.value == residency_value(values)


@pytest.mark.parametrize("k", [0, 3, 10, 13, 14])
def test_fixed_count_uniform_position_is_the_line(k):
    B = 15
    values = _no_drains(batch_size=B, gap_model="fixed_count", adds_between=k, p_same_cpu=0.0)
    result = simulate(values, ["drain_local"], faults=300_000, seed=k)
    line = max(B - 1 - k, 0) / B
    assert inside(result.residency, line)
    assert inside(result.policies["drain_local"]["p_unnecessary_copy"], (1 - values["p_other_ref"]) * line)


def test_same_cpu_gives_no_unnecessary_copy_under_drain_local():
    values = registry.resolve({"p_same_cpu": 1.0})
    result = simulate(values, ["drain_local"], faults=300_000, seed=1)
    assert result.residency.value > 0.5
    assert result.policies["drain_local"]["p_unnecessary_copy"].value == 0.0
    assert result.policies["drain_local"]["p_local_drain"].value > 0.5


# ---- (c) reproducibility, Dask --------------------------------------------------------------------


def test_same_seed_same_result_however_the_chunks_run():
    values = registry.resolve({"gap_model": "fixed_time"})
    a = simulate(values, faults=400_000, seed=42, workers=1)
    b = simulate(values, faults=400_000, seed=42, workers=2)
    c = simulate(values, faults=400_000, seed=43, workers=2)
    assert np.array_equal(a.counts, b.counts) and a.to_dict() == b.to_dict()
    assert not np.array_equal(a.counts, c.counts)
    assert a.counts.sum() == 400_000


def test_dask_local_cluster_gives_the_in_process_numbers():
    distributed = pytest.importorskip("distributed")
    values = registry.resolve({"gap_model": "exponential_time", "position_model": "stationary"})
    local = simulate(values, faults=300_000, seed=7, arrivals="mmpp")
    with distributed.LocalCluster(processes=False, n_workers=2, threads_per_worker=1,
                                  dashboard_address=None) as cluster:
        remote = simulate(values, faults=300_000, seed=7, arrivals="mmpp", scheduler=cluster.scheduler_address)
    assert np.array_equal(local.counts, remote.counts)
    assert local.to_dict() == remote.to_dict()


# ---- (d) CLI --------------------------------------------------------------------------------------


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_json_shape(capsys):
    code, out, err = run(capsys, "simulate", "--json", "--faults", "20000", "--seed", "3",
                         "--policy", "drain_local", "--policy", "mapcount", "--set", "batch_size=15")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["params"]["batch_size"] == 15 and doc["faults"] == 20000 and doc["seed"] == 3
    assert set(doc["policies"]) == {"drain_local", "mapcount"}
    row_keys = {"model", "sim", "low", "high", "inside"}
    assert set(doc["residency"]) == row_keys
    for rows in doc["policies"].values():
        assert set(rows) == set(OUTPUTS) | {"breakdown_ns", "mean_local_drain_folios"}
        assert set(rows["breakdown_ns"]) == set(BREAKDOWN)
        for key in OUTPUTS:
            assert set(rows[key]) == row_keys
    assert doc["policies"]["mapcount"]["p_copy"]["sim"] == 0.0
    assert doc["policies"]["mapcount"]["mean_local_drain_folios"]["sim"] is None  # never drains


def test_cli_table(capsys):
    code, out, _ = run(capsys, "simulate", "--faults", "20000", "--arrivals", "batch_poisson",
                       "--arrival-param", "mean_batch=3")
    assert code == 0
    assert "residency" in out and "batch_poisson" in out and "model: Poisson adds" in out
    for p in POLICIES:
        assert p in out


@pytest.mark.parametrize("argv,needle", [
    (["--set", "batch_sizes=3"], "unknown parameter 'batch_sizes'"),
    (["--set", "wp_gap_s=nan"], "wp_gap_s: 'nan' is not a finite number"),
    (["--set", "wp_gap_s=__import__('os')"], "wp_gap_s: \"__import__('os')\" is not a number"),
    (["--faults", "__import__('os')"], "--faults"),
    (["--faults", "0"], "--faults '0'"),
    (["--faults", "nan"], "--faults 'nan'"),
    (["--seed", "1.5"], "--seed '1.5'"),
    (["--policy", "drain_most"], "unknown policy 'drain_most'"),
    (["--arrivals", "bursty"], "arrivals: 'bursty' is not known"),
    (["--arrivals", "mmpp", "--arrival-param", "p_burst=nan"], "p_burst"),
    (["--arrival-param", "mean_batch"], "expected NAME=VALUE"),
    (["--gap-histogram", "/nonexistent/gaps.csv"], "cannot read"),
    (["--set", "cpus=1", "--set", "remote_cpus=0"], "p_same_cpu=0.5 needs another CPU"),
])
def test_cli_bad_input_is_one_line_and_exit_2(capsys, argv, needle):
    code, out, err = run(capsys, "simulate", "--faults", "1000", *argv) if argv[0] != "--faults" else \
        run(capsys, "simulate", *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("costmodel simulate: error: ")
    assert needle in err
