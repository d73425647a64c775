"""Break-even values: the costs really are equal there, and the order really flips."""

import re

import numpy as np
import pytest

from costmodel import registry
from costmodel.breakeven import breakeven, breakeven_row
from costmodel.errors import UserError
from costmodel.evaluate import evaluate_point


def cost(v, policy):
    return evaluate_point(v, [policy])[policy]["expected_ns"]


@pytest.mark.parametrize("a,b,solve_for,over", [
    ("drain_remote", "drain_local", "shootdown_per_cpu_ns", {}),  # polynomial: sympy
    ("drain_remote", "drain_local", "remote_drain_ns", {"remote_cpus": 15, "cpus": 32}),
    # residency is not polynomial in the gap: scan + brentq
    ("drain_local_always", "copy_if_referenced", "wp_gap_s", {"gap_model": "fixed_time", "p_same_cpu": 0.9}),
    ("drain_local_always", "copy_if_referenced", "wp_gap_s", {"p_same_cpu": 0.9}),
])
def test_costs_equal_at_the_break_even_and_order_flips(a, b, solve_for, over):
    v = registry.resolve(over)
    res = breakeven(v, a, b, solve_for)
    assert res.roots, res.describe()
    for x in res.roots:
        at = dict(v, **{solve_for: x})
        assert cost(at, a) == pytest.approx(cost(at, b), rel=1e-6)
        eps = max(abs(x) * 1e-3, 1e-12)
        below = dict(v, **{solve_for: x - eps})
        above = dict(v, **{solve_for: x + eps})
        d_below = cost(below, a) - cost(below, b)
        d_above = cost(above, a) - cost(above, b)
        assert np.sign(d_below) == -np.sign(d_above) != 0


def test_integer_break_even_is_the_first_integer_where_the_order_flips():
    v = registry.resolve({"cpus": 512})
    res = breakeven(v, "drain_remote", "drain_local", "remote_cpus")
    (n,) = res.roots
    n = int(n)
    assert cost(dict(v, remote_cpus=n), "drain_remote") < cost(dict(v, remote_cpus=n), "drain_local")
    assert cost(dict(v, remote_cpus=n - 1), "drain_remote") >= cost(dict(v, remote_cpus=n - 1), "drain_local")


def test_a_difference_proportional_to_residency_never_crosses_in_the_gap():
    """drain_remote - drain_local = R (1-s)(1-e)(1-L) [remote drain - copy saved]: the gap only
    scales it, so there is no break-even in wp_gap_s, and the scan must not invent one."""
    v = registry.resolve({"gap_model": "fixed_time"})
    res = breakeven(v, "drain_remote", "drain_local", "wp_gap_s")
    assert res.roots == []
    assert res.regions[0][2] == "drain_local"


def test_one_policy_cheaper_everywhere_is_said_so():
    v = registry.resolve({})
    res = breakeven(v, "mapcount", "copy_if_referenced", "alloc_ns")
    assert res.roots == []
    assert res.describe().startswith("mapcount is cheaper over the whole range alloc_ns")


# ---- one answer: integers, tolerance, the range's limits --------------------------------------


def _sign(v, a, b, rtol):
    """Independent of the module: which is cheaper at v, by direct evaluation (0: equal within rtol)."""
    ca, cb = cost(v, a), cost(v, b)
    if abs(ca - cb) <= rtol * max(abs(ca), abs(cb)):
        return "equal"
    return a if ca < cb else b


def _region_of(res, x):
    for lo, hi, who in res.regions:
        if lo <= x <= hi:
            return who
    raise AssertionError(f"{x} is in no region of {res.regions}")


def test_integer_regions_are_exact_runs_of_integers():
    """remote_cpus with cpus=64: each integer's region names the policy that is really cheaper
    there, the regions tile the integers without overlap, and each root starts a new region."""
    v = registry.resolve({"cpus": 64})
    res = breakeven(v, "drain_remote", "drain_local", "remote_cpus")
    expected = {n: _sign(dict(v, remote_cpus=n), "drain_remote", "drain_local", res.rtol) for n in range(64)}
    assert len(set(expected.values())) > 1, "the question must have an answer that changes to be a test"
    covered = []
    for lo, hi, who in res.regions:
        assert lo == int(lo) and hi == int(hi) and lo <= hi
        covered.extend(range(int(lo), int(hi) + 1))
        for n in range(int(lo), int(hi) + 1):
            assert expected[n] == who, (n, who, expected[n])
    assert covered == list(range(64))
    changes = [n for n in range(1, 64) if expected[n] != expected[n - 1]]
    assert res.roots == changes


def test_integer_break_even_and_its_continuous_crossing_agree():
    v = registry.resolve({"cpus": 64})
    res = breakeven(v, "drain_remote", "drain_local", "remote_cpus")
    (n,) = res.roots
    (x,) = res.crossings
    assert n - 1 < x <= n  # the curves meet between the last integer of one run and the first of the next
    # evaluated between the integers, as the formula allows, the costs are equal there
    assert cost(dict(v, remote_cpus=x), "drain_remote") == pytest.approx(cost(dict(v, remote_cpus=x), "drain_local"),
                                                                         rel=1e-6)
    text = res.describe()
    assert f"order changes at remote_cpus = {n} CPUs" in text
    assert f"{n - 1}: drain_local cheaper" in text and f"{n} .. 63: drain_remote cheaper" in text


def test_the_report_row_says_what_describe_says():
    v = registry.resolve({"cpus": 64})
    res = breakeven(v, "drain_remote", "drain_local", "remote_cpus")
    row = breakeven_row(v, "drain_remote", "drain_local", "remote_cpus")
    assert row["break_even"] == f"{int(res.roots[0])} CPUs"
    for part in row["verdict"].split("; "):
        assert part in res.describe()
    assert row["crossing"] and row["crossing"] in res.describe()


def test_range_cut_by_a_rule_is_said_with_how_to_widen_it():
    """At the registry's cpus=8, remote_cpus can only reach 7; the answer must say so, and the
    --set it suggests must really widen the search."""
    v = registry.resolve({})
    res = breakeven(v, "drain_remote", "drain_local", "remote_cpus")
    largest = max(n for n in range(0, 100) if registry.feasible(dict(v, remote_cpus=n)))
    assert res.high == largest
    (note,) = res.limits
    assert "cpus=8" in note and f"stops at {largest}" in note
    suggestion = re.search(r"--set (\w+)=(\d+)", note)
    assert suggestion, note
    wider = breakeven(dict(v, **{suggestion.group(1): int(suggestion.group(2))}), "drain_remote", "drain_local",
                      "remote_cpus")
    assert wider.high > res.high
    assert note in res.describe() and res.as_dict()["limits"] == [note]


def test_high_past_a_rule_names_the_value_that_reaches_it():
    v = registry.resolve({})
    res = breakeven(v, "drain_remote", "drain_local", "remote_cpus", high=100)
    (note,) = res.limits
    m = re.search(r"--set cpus=(\d+)", note)
    need = min(c for c in range(1, 4097) if registry.feasible(dict(v, cpus=c, remote_cpus=100)))
    assert m and int(m.group(1)) == need


def test_equal_means_within_the_stated_relative_tolerance():
    """drain_all and drain_remote meet at drain_all_base_ns = 0 when no other CPU needs a drain;
    at 5 ns they differ by about 2 ns in 3000, far above 1e-9: not 'equal' (an absolute
    tolerance scaled to the whole range once called 0 .. 10 ns equal)."""
    v = registry.resolve({"p_cpu_needs_drain": 0.0})
    res = breakeven(v, "drain_all", "drain_remote", "drain_all_base_ns")
    at5 = dict(v, drain_all_base_ns=5.0)
    assert cost(at5, "drain_all") != cost(at5, "drain_remote")
    assert _region_of(res, 5.0) == _sign(at5, "drain_all", "drain_remote", res.rtol) != "equal"
    assert "within 1e-09 of the larger cost" in res.describe()
    # a looser stated tolerance makes the same 5 ns point equal, and only then
    loose = breakeven(v, "drain_all", "drain_remote", "drain_all_base_ns", rtol=1e-2)
    assert _sign(at5, "drain_all", "drain_remote", 1e-2) == "equal" == _region_of(loose, 5.0)
    assert "within 0.01 of the larger cost" in loose.describe()


@pytest.mark.parametrize("a,b,solve_for,over,rtol", [
    ("drain_all", "drain_remote", "drain_all_base_ns", {"p_cpu_needs_drain": 0.0}, 1e-9),
    ("drain_all", "drain_remote", "drain_all_base_ns", {"p_cpu_needs_drain": 0.0}, 1e-3),
    ("drain_remote", "drain_local", "remote_drain_ns", {"cpus": 32, "remote_cpus": 15}, 1e-9),
    ("drain_local", "copy_if_referenced", "wp_gap_s", {}, 1e-9),
    ("drain_local", "copy_if_referenced", "batch_size", {"position_model": "fixed"}, 1e-9),
])
def test_every_region_names_what_direct_evaluation_finds(a, b, solve_for, over, rtol):
    v = registry.resolve(over)
    res = breakeven(v, a, b, solve_for, rtol=rtol)
    integer = registry.NUMERIC[solve_for].integer
    for lo, hi, who in res.regions:
        if integer:
            xs = sorted({lo, hi, float(int((lo + hi) / 2))})
        else:  # inside the region, away from its edges (the break-evens)
            xs = [lo + (hi - lo) * f for f in (1e-3, 0.25, 0.5, 0.75, 1 - 1e-3)] if hi > lo else []
            if lo > 0 and hi / lo > 1e3:
                xs += list(np.geomspace(lo, hi, 7)[1:-1])
        for x in xs:
            point = dict(v, **{solve_for: int(x) if integer else x})
            assert _sign(point, a, b, rtol) == who, (x, who)


def test_costs_equal_everywhere_are_said_so():
    """With every WP fault on the CPU holding the page, the local drain always frees it, so the
    remote step of drain_remote never runs and its cost cannot matter."""
    v = registry.resolve({"p_same_cpu": 1.0})
    res = breakeven(v, "drain_remote", "drain_local", "remote_drain_ns")
    assert [r[2] for r in res.regions] == ["equal"]
    assert res.describe().startswith("drain_remote and drain_local cost the same over the whole range")


def test_a_policy_against_itself_is_refused():
    with pytest.raises(UserError, match="both drain_local; give two different policies"):
        breakeven(registry.resolve({}), "drain_local", "drain_local", "remote_cpus")


@pytest.mark.parametrize("rtol", [-1e-9, 1.0, float("nan")])
def test_a_tolerance_outside_0_1_is_refused(rtol):
    with pytest.raises(UserError, match="--rtol"):
        breakeven(registry.resolve({}), "drain_local", "drain_remote", "remote_cpus", rtol=rtol)


def test_raise_cpus_only_with_remote_cpus(capsys):
    from costmodel.cli import main

    assert main(["breakeven", "--policy", "drain_remote", "--against", "drain_local", "--solve-for", "alloc_ns",
                 "--raise-cpus"]) == 2
    err = capsys.readouterr().err
    assert "--raise-cpus" in err and err.count("\n") == 1
