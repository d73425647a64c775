"""Break-even values: the costs really are equal there, and the order really flips."""

import numpy as np
import pytest

from costmodel import registry
from costmodel.breakeven import breakeven
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
