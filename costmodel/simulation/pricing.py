"""Pricing a simulated fault: the model's own cost expressions at the registry values, and each
policy applied to the fault summary from its declaration alone."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping

import numpy as np

from .. import registry
from ..model import BREAKDOWN, Policy
from ..model.numeric import lambdify
from ..model.policies import ALWAYS, COPY, DRAIN_ALL, DRAIN_REMOTE, IF_NOT_ON_LRU, NEVER
from ..stats import Estimate, mean_estimate as _mean_estimate, scaled as _scaled, wilson_estimate as wilson
from .kernel import _CODES, _EXCL, _LARGE, _OTHER, _RES, _SAME

# ---- costs from the model's expressions --------------------------------------------------------


@dataclass(frozen=True)
class _Costs:
    fault_entry: float
    cross_cpu_fault: float
    reuse: float
    copy_parts: dict  # part -> ns
    cross_cpu_copy: float
    local_drain_by_fill: np.ndarray  # ns, indexed by the folios the drain moves (0..B-1)
    remote_drain: float
    drain_all: float
    model_occupancy: float


def _costs(values: Mapping[str, object]) -> _Costs:
    return _costs_at(tuple(float(values[n]) for n in registry.NUMERIC), values["shootdown_model"])


@lru_cache(maxsize=64)
def _costs_at(point: tuple, shootdown_model: str) -> _Costs:
    import sympy as sp

    from ..model import costs, expected_occupancy

    S = registry.S
    args = [S[n] for n in registry.NUMERIC]
    values = dict(zip(registry.NUMERIC, point))

    point = [np.float64(x) for x in point]  # numpy floats: unused Piecewise branches give inf, not errors

    def num(expr) -> float:
        return float(lambdify(args, expr)(*point))

    fill = sp.Symbol("folios_in_batch", nonnegative=True)
    occ_expr = expected_occupancy()
    drain_expr = costs.local_drain_ns()
    by_fill = drain_expr.xreplace({occ_expr: fill})
    if fill not in by_fill.free_symbols:  # the model changed shape: fail loudly, do not guess
        raise RuntimeError("local_drain_ns() no longer contains expected_occupancy(); update simulate._costs")
    B = int(values["batch_size"])
    drain_fn = lambdify([*args, fill], by_fill)
    table = np.array([float(drain_fn(*point, np.float64(j))) for j in range(B)])
    with np.errstate(all="ignore"):
        return _Costs(
            fault_entry=num(costs.fault_entry_ns()),
            reuse=float(values["reuse_ns"]),
            copy_parts={part: num(expr) for part, expr in costs.copy_step_ns(shootdown_model).items()},
            cross_cpu_fault=num(costs.cross_cpu_fault_ns()),
            cross_cpu_copy=num(costs.cross_cpu_copy_ns()),
            local_drain_by_fill=table,
            remote_drain=num(costs.remote_drain_ns()),
            drain_all=num(costs.drain_all_ns()),
            model_occupancy=num(occ_expr),
        )


# ---- applying a policy to the fault summary ----------------------------------------------------


def _bits() -> dict[str, np.ndarray]:
    c = np.arange(_CODES)
    return {name: (c & bit) != 0 for name, bit in
            (("exclusive", _EXCL), ("large", _LARGE), ("other_ref", _OTHER), ("same_cpu", _SAME), ("resident", _RES))}


def policy_decisions(policy: Policy, large_folio_cow_reuse: bool = True) -> dict[str, np.ndarray]:
    """What ``policy`` does for each of the 32 fault summaries (boolean arrays by summary code).
    ``large_folio_cow_reuse``: whether the kernel reuses a non-exclusive large folio that nothing
    else references (else it always copies one)."""
    b = _bits()
    small_shared = ~b["exclusive"] & ~b["large"]  # takes the policy's path and may sit in a batch
    held = b["resident"] & ~b["large"]  # a large folio is never in a batch
    none = np.zeros(_CODES, dtype=bool)
    local = {NEVER: none, IF_NOT_ON_LRU: small_shared & held, ALWAYS: small_shared}[policy.local_drain]
    held_after_local = held & ~(local & b["same_cpu"])  # a local drain frees only this CPU's batch
    escalate = small_shared & held_after_local if policy.still_held != COPY else none
    held_at_test = held_after_local & ~escalate
    if policy.refcount_test:
        copy = ~b["exclusive"] & (b["other_ref"] | held_at_test | (b["large"] & (not large_folio_cow_reuse)))
    else:
        copy = none
    return {
        "copy": copy,
        "unnecessary_copy": copy & held_at_test & ~b["other_ref"],
        "orphaned": copy & held_at_test,
        "local_drain": local,
        "remote_drain": escalate if policy.still_held == DRAIN_REMOTE else none,
        "drain_all": escalate if policy.still_held == DRAIN_ALL else none,
    }


def _policy_result(policy: Policy, counts: np.ndarray, costs: _Costs, wp_faults_per_s: float, z: float,
                   large_folio_cow_reuse: bool = True) -> dict:
    d = policy_decisions(policy, large_folio_cow_reuse)
    by_code = counts.sum(axis=1)
    n = float(by_code.sum())

    def prop(mask):
        return wilson(float(by_code[mask].sum()), n, z)

    out = {
        "p_copy": prop(d["copy"]),
        "p_unnecessary_copy": prop(d["unnecessary_copy"]),
        "p_local_drain": prop(d["local_drain"]),
        "p_remote_drain": prop(d["remote_drain"]),
        "p_drain_all": prop(d["drain_all"]),
    }
    copy_total = sum(costs.copy_parts.values())
    local_cost = np.where(d["local_drain"][:, None], costs.local_drain_by_fill[None, :], 0.0)
    elsewhere = ~_bits()["same_cpu"]   # written on another CPU than the page's installer
    copy_elsewhere = d["copy"] & elsewhere
    per_fault = (costs.fault_entry + elsewhere * costs.cross_cpu_fault + np.where(d["copy"], copy_total, costs.reuse)
                 + copy_elsewhere * costs.cross_cpu_copy
                 + d["remote_drain"] * costs.remote_drain + d["drain_all"] * costs.drain_all)[:, None] + local_cost
    expected = _mean_estimate(counts, per_fault, z)
    out["expected_ns"] = expected
    out["cpu_us_per_s"] = _scaled(expected, wp_faults_per_s / 1000)
    out["orphaned_pages_per_fault"] = prop(d["orphaned"])
    breakdown = {"fault_entry": Estimate(costs.fault_entry, costs.fault_entry, costs.fault_entry, "exact"),
                 "cross_cpu_fault": _scaled(prop(elsewhere), costs.cross_cpu_fault),
                 "reuse": _scaled(prop(~d["copy"]), costs.reuse)}
    for part, ns in costs.copy_parts.items():
        breakdown[part] = _scaled(out["p_copy"], ns)
    breakdown["cross_cpu_copy"] = _scaled(prop(copy_elsewhere), costs.cross_cpu_copy)
    breakdown["local_drain"] = _mean_estimate(counts, local_cost, z)
    breakdown["remote_drain"] = _scaled(out["p_remote_drain"], costs.remote_drain)
    breakdown["drain_all"] = _scaled(out["p_drain_all"], costs.drain_all)
    assert tuple(breakdown) == BREAKDOWN
    out["breakdown_ns"] = breakdown
    drains = counts[d["local_drain"]].sum(axis=0)
    out["mean_local_drain_folios"] = _mean_estimate(drains, np.arange(counts.shape[1], dtype=float), z)
    return out

