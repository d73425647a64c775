"""Policy outputs: known values, an independent event-tree enumeration, properties and limits."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costmodel import registry
from costmodel.evaluate import evaluate_point, residency_value
from costmodel.model import POLICIES

CATEGORICAL_COMBOS = list(itertools.product(*(c.choices for c in registry.CATEGORICAL.values())))
PROBS = ("p_copy", "p_unnecessary_copy", "p_local_drain", "p_remote_drain", "p_drain_all")


def quiet(**over):
    """A point with no exclusive, large or otherwise referenced folios and no drains."""
    base = dict(p_exclusive=0, p_large_folio=0, p_other_ref=0, explicit_drains_per_s=0, drain_all_per_s=0)
    base.update(over)
    return registry.resolve(base)


# ---- known values (issue 2) ---------------------------------------------------------------

@pytest.mark.parametrize("B", [15, 31])
def test_drain_local_cross_cpu_unnecessary_copies_follow_the_batch(B):
    for k in (0, 1, B // 2, B - 2, B - 1, B, 3 * B):
        uniform = evaluate_point(quiet(gap_model="fixed_count", adds_between=k, batch_size=B, p_same_cpu=0))
        at_zero = evaluate_point(quiet(gap_model="fixed_count", adds_between=k, batch_size=B, p_same_cpu=0,
                                       position_model="fixed", batch_position=0))
        same_cpu = evaluate_point(quiet(gap_model="fixed_count", adds_between=k, batch_size=B, p_same_cpu=1))
        assert uniform["drain_local"]["p_unnecessary_copy"] == pytest.approx(max(B - 1 - k, 0) / B, abs=1e-15)
        assert at_zero["drain_local"]["p_unnecessary_copy"] == (1.0 if k < B - 1 else 0.0)
        assert same_cpu["drain_local"]["p_unnecessary_copy"] == 0.0


# ---- an independent enumeration of the event tree -----------------------------------------

def enumerate_policy(policy, v, R):
    """Walk every leaf of the WP-fault event tree with its probability and apply the policy's
    rules literally, as written in the issue's policy table."""
    pe, pl, po, ps = v["p_exclusive"], v["p_large_folio"], v["p_other_ref"], v["p_same_cpu"]
    totals = dict.fromkeys(PROBS, 0.0)
    for exclusive, large, other, held, local in itertools.product([True, False], repeat=5):
        w = (pe if exclusive else 1 - pe) * (pl if large else 1 - pl) * (po if other else 1 - po)
        w *= (R if held else 1 - R) * (ps if local else 1 - ps)
        if w == 0:
            continue
        in_batch = held and not large
        if exclusive:
            continue  # reused at once
        if policy == "mapcount":
            continue  # reused: only the map count matters
        if policy == "copy_if_referenced":
            copy = other or in_batch
            unneeded = in_batch and not other
        else:
            drained_here = (policy == "drain_local_always" and not large) or in_batch
            if drained_here:
                totals["p_local_drain"] += w
            still = in_batch and not local
            if still and policy == "drain_remote":
                totals["p_remote_drain"] += w
                still = False
            if still and policy == "drain_all":
                totals["p_drain_all"] += w
                still = False
            copy = other or still
            unneeded = still and not other
        totals["p_copy"] += w * copy
        totals["p_unnecessary_copy"] += w * unneeded
    return totals


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pe=st.floats(0, 1), pl=st.floats(0, 1), po=st.floats(0, 1), ps=st.floats(0, 1),
       lam=st.floats(0, 1e7), t=st.floats(0, 1e-3), combo=st.sampled_from(CATEGORICAL_COMBOS))
def test_policy_probabilities_match_event_tree_enumeration(pe, pl, po, ps, lam, t, combo):
    gap, pos, shoot = combo
    v = registry.resolve(dict(p_exclusive=pe, p_large_folio=pl, p_other_ref=po, p_same_cpu=ps, batch_adds_per_s=lam,
                              wp_gap_s=t, gap_model=gap, position_model=pos, shootdown_model=shoot, adds_between=4))
    R = residency_value(v)
    out = evaluate_point(v)
    for policy in POLICIES:
        expected = enumerate_policy(policy, v, R)
        for key in PROBS:
            assert out[policy][key] == pytest.approx(expected[key], abs=1e-12), (policy, key)


def test_expected_cost_is_the_sum_of_step_costs_weighted_by_their_probabilities(point):
    """Recompute expected_ns by hand: probabilities from the event-tree enumeration, costs from
    the registry values, the batch fills from direct sums."""
    v = point(remote_cpus=5, cpus=16, shootdown_model="linear", explicit_drains_per_s=0, drain_all_per_s=0,
              p_exclusive=0.1, p_large_folio=0.05, p_other_ref=0.02)
    out = evaluate_point(v)
    B, s = v["batch_size"], v["p_same_cpu"]
    occupancy = (B - 1) / 2  # uniform fill without drains
    # the writer's own batch, when it still holds the page: position j (uniform), then m adds
    # before the WP fault wins the race (exponential gap), so j + 1 + m folios
    lam_t = v["batch_adds_per_s"] * v["wp_gap_s"]
    a, w = lam_t / (1 + lam_t), 1 / (1 + lam_t)
    held = held_fill = 0.0
    for j in range(B):
        for m in range(B - 1 - j):
            held += a**m * w / B
            held_fill += (j + 1 + m) * a**m * w / B
    shared = (1 - v["p_exclusive"]) * (1 - v["p_large_folio"])
    copy_ns = (v["alloc_ns"] + v["page_bytes"] / v["copy_bandwidth_gbps"] + v["local_flush_ns"]
               + v["shootdown_base_ns"] + 5 * v["shootdown_per_cpu_ns"] + v["free_ns"])
    for policy, o in out.items():
        p = enumerate_policy(policy, v, held)
        if policy in ("drain_local", "drain_remote", "drain_all"):  # drain only while not on an LRU
            folios = shared * s * held_fill + (p["p_local_drain"] - shared * s * held) * occupancy
        else:
            folios = p["p_local_drain"] * occupancy
        by_hand = (v["fault_entry_ns"] + (1 - p["p_copy"]) * v["reuse_ns"] + p["p_copy"] * copy_ns
                   + p["p_local_drain"] * v["drain_base_ns"] + v["drain_per_folio_ns"] * folios
                   + p["p_remote_drain"] * v["remote_drain_ns"]
                   + p["p_drain_all"] * (v["drain_all_base_ns"] + 16 * v["drain_all_per_cpu_ns"]))
        assert o["expected_ns"] == pytest.approx(by_hand, rel=1e-12)
        assert o["cpu_us_per_s"] == pytest.approx(by_hand * v["wp_faults_per_s"] / 1e3, rel=1e-12)
        assert sum(o["breakdown_ns"].values()) == pytest.approx(o["expected_ns"], rel=1e-12)


@pytest.mark.parametrize("model,expected", [("linear", 500 + 400 * 7), ("log2", 500 + 400 * 3), ("broadcast", 500)])
def test_shootdown_shapes(point, model, expected):
    v = point(shootdown_model=model, remote_cpus=7, cpus=8, p_other_ref=1, p_exclusive=0)
    assert evaluate_point(v, ["copy_if_referenced"])["copy_if_referenced"]["breakdown_ns"]["shootdown"] == pytest.approx(expected)
    v0 = point(shootdown_model=model, remote_cpus=0, p_other_ref=1, p_exclusive=0)
    assert evaluate_point(v0, ["copy_if_referenced"])["copy_if_referenced"]["breakdown_ns"]["shootdown"] == 0


# ---- properties --------------------------------------------------------------------------

def numeric_value(name, draw_unit):
    e = registry.NUMERIC[name]
    if e.log_scale and e.high > 0:
        lo = max(e.low, e.high * 1e-12)
        x = lo * (e.high / lo) ** draw_unit
    else:
        x = e.low + (e.high - e.low) * draw_unit
    return int(round(x)) if e.integer else x


@st.composite
def points(draw):
    over = {}
    for name, e in registry.NUMERIC.items():
        kind = draw(st.sampled_from(["low", "high", "default", "any"]))
        over[name] = {"low": e.low, "high": e.high, "default": e.default}.get(kind) if kind != "any" else \
            numeric_value(name, draw(st.floats(0, 1)))
    for name, c in registry.CATEGORICAL.items():
        over[name] = draw(st.sampled_from(c.choices))
    over["batch_position"] = min(over["batch_position"], over["batch_size"] - 1)
    over["remote_cpus"] = min(over["remote_cpus"], over["cpus"] - 1)
    return registry.resolve(over)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(v=points())
def test_everything_finite_and_probabilities_in_unit_interval_inside_bounds(v):
    """Limits included: lambda = 0, mu = 0, B = 1, gap 0 are all inside the bounds."""
    for policy, o in evaluate_point(v).items():
        for key in PROBS + ("orphaned_pages_per_fault",):
            assert -1e-12 <= o[key] <= 1.0 + 1e-12, (policy, key, o[key])  # rounding residue only
        # rounding residue only: relative to every cost that enters (drains move up to B folios)
        scale = (sum(v[n] for n in registry.NUMERIC if n.endswith("_ns")) * (v["batch_size"] + v["cpus"])
                 + v["page_bytes"] / v["copy_bandwidth_gbps"] + 1.0)
        for key in ("expected_ns", "cpu_us_per_s"):
            assert math.isfinite(o[key]) and o[key] >= -1e-9 * scale * max(1.0, v["wp_faults_per_s"] / 1e3), (policy, key)
        assert all(math.isfinite(x) and x >= -1e-9 * scale for x in o["breakdown_ns"].values())


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(v=points())
def test_mapcount_is_never_dearer_when_reuse_is_no_dearer_than_a_copy(v):
    copy_extra = v["alloc_ns"] + v["page_bytes"] / v["copy_bandwidth_gbps"] + v["local_flush_ns"] + v["free_ns"]
    if v["reuse_ns"] > copy_extra:
        v = dict(v, reuse_ns=copy_extra)
    out = evaluate_point(v)
    for policy, o in out.items():
        residue = 1e-9 * (abs(o["expected_ns"]) + copy_extra + 1.0)  # float rounding only
        assert out["mapcount"]["expected_ns"] <= o["expected_ns"] + residue, policy


@pytest.mark.parametrize("gap,pos", list(itertools.product(registry.CATEGORICAL["gap_model"].choices,
                                                      registry.CATEGORICAL["position_model"].choices)))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_residency_monotone(gap, pos, data):
    B = data.draw(st.integers(2, 64))
    base = dict(gap_model=gap, position_model=pos, batch_size=B, batch_position=data.draw(st.integers(0, B - 1)),
                batch_adds_per_s=data.draw(st.floats(0, 1e6)), explicit_drains_per_s=data.draw(st.floats(0, 1e4)),
                drain_all_per_s=data.draw(st.floats(0, 100)), wp_gap_s=data.draw(st.floats(0, 1e-3)),
                adds_between=data.draw(st.integers(0, 80)))
    r = residency_value(registry.resolve(base))
    tol = 1e-9
    longer = dict(base, wp_gap_s=base["wp_gap_s"] * 2 + 1e-7, adds_between=base["adds_between"] + 1)
    assert residency_value(registry.resolve(longer)) <= r + tol
    if gap != "fixed_count":  # a gap counted in adds gets shorter in time as adds speed up
        faster = dict(base, batch_adds_per_s=base["batch_adds_per_s"] * 3 + 1)
        assert residency_value(registry.resolve(faster)) <= r + tol
    bigger = dict(base, batch_size=B + 1)
    assert residency_value(registry.resolve(bigger)) >= r - tol


def contexts_for(name):
    """Categorical settings under which a parameter can matter, plus a setting where every
    probability is inside (0, 1) so no term is multiplied by zero."""
    live = dict(p_exclusive=0.2, p_large_folio=0.2, p_other_ref=0.2, p_same_cpu=0.5, remote_cpus=3, cpus=8,
                wp_gap_s=1e-5, adds_between=3, batch_position=2)
    for combo in CATEGORICAL_COMBOS:
        yield dict(live, **dict(zip(registry.CATEGORICAL, combo)))


@pytest.mark.parametrize("name", list(registry.PARAMS))
def test_every_registry_parameter_changes_some_output(name):
    entry = registry.PARAMS[name]
    for ctx in contexts_for(name):
        if name in registry.CATEGORICAL:
            candidates = entry.choices
        else:
            candidates = sorted({entry.low, entry.default, entry.high, numeric_value(name, 0.5)})
        results = []
        for value in candidates:
            over = dict(ctx, **{name: value})
            if name == "batch_size":
                over["batch_position"] = min(over["batch_position"], value - 1)
            if name == "batch_position":
                over["batch_size"] = max(over.get("batch_size", 31), value + 1)
            if name == "cpus":
                over["remote_cpus"] = min(over["remote_cpus"], value - 1)
            if name == "remote_cpus":
                over["remote_cpus"] = value = min(value, registry.NUMERIC["cpus"].high - 1)
                over["cpus"] = max(over["cpus"], value + 1)
            out = evaluate_point(registry.resolve(over))
            results.append(np.array([o[k] for o in out.values() for k in ("expected_ns", "cpu_us_per_s", "orphaned_pages_per_fault") + PROBS]))
        if any(not np.allclose(results[0], r, rtol=1e-12, atol=0) for r in results[1:]):
            return
    pytest.fail(f"{name} changes no output anywhere in its range")


@pytest.mark.parametrize("combo", CATEGORICAL_COMBOS, ids=["-".join(c) for c in CATEGORICAL_COMBOS])
def test_arrays_of_any_parameter_give_the_pointwise_values(combo):
    """A sweep over one parameter (the others scalars) equals evaluating point by point."""
    from costmodel.evaluate import evaluate_arrays

    base = registry.resolve(dict(zip(registry.CATEGORICAL, combo), batch_position=3, remote_cpus=2))
    for name, xs in {"adds_between": [0, 5, 29, 40], "wp_gap_s": [0, 1e-6, 1e-4], "batch_size": [4, 15, 31],
                     "explicit_drains_per_s": [0, 10, 1e5], "p_same_cpu": [0, 0.3, 1]}.items():
        arrays = evaluate_arrays(dict(base, **{name: np.array(xs, dtype=float)}))
        for i, x in enumerate(xs):
            point = evaluate_point(registry.resolve(dict(base, **{name: x})))
            for (policy, key), arr in arrays.items():
                want = point[policy]["breakdown_ns"][key.split(".")[1]] if key.startswith("breakdown") else point[policy][key]
                assert arr[i] == pytest.approx(want, rel=1e-12, abs=1e-15), (name, x, policy, key)
