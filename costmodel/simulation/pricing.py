"""Pricing a simulated fault: the model's own cost expressions at the registry values, and each
policy applied to the fault summary from its declaration alone."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping

import numpy as np
import sympy as sp

from .. import registry
from ..model import BREAKDOWN, Policy, costs, expected_occupancy
from ..model.numeric import lambdify
from ..model.policies import (ALWAYS, COPY, DRAIN_ALL, DRAIN_REMOTE, DRAIN_REMOTE_LOCK, IF_IN_LOCAL_BATCH, IF_NOT_ON_LRU,
                              NEVER, REMOVE_FOLIO, SWAPCACHE_COPIES)
from ..model.residency import held_batch_fill, residency
from ..stats import Estimate, mean_estimate as _mean_estimate, scaled as _scaled, wilson_estimate as wilson
from .kernel import CODE_BASE, FLAG_EXCL, FLAG_LARGE, FLAG_MORE, FLAG_OTHER, FLAG_RES, FLAG_SAME, FLAG_SHARED, FLAG_SWAP

# ---- costs from the model's expressions --------------------------------------------------------


@dataclass(frozen=True)
class _Costs:
    fault_entry: float
    cross_cpu_fault: float
    reuse: float
    copy_parts: dict  # part -> ns
    cross_cpu_copy: float
    local_drain_by_fill: np.ndarray  # ns, indexed by the folios the drain moves (0..B-1)
    remove_folio: float
    remote_drain: float
    #: a drain of the holder's batch by its lock: a fixed part, and per folio of the holder's batch
    remote_lock_overhead: float
    drain_per_remote_folio: float
    #: the model's mean fill of a batch that holds the page: used only for fault counts that come
    #: without the holder's fills (a caller's own counts)
    model_held_fill: float
    drain_all: float
    swap_free: float
    swap_shared: float
    model_occupancy: float


def cost_table(values: Mapping[str, object]) -> _Costs:
    return _costs_at(tuple(float(values[n]) for n in registry.NUMERIC), values["shootdown_model"],
                     values["gap_model"], values["position_model"])


@lru_cache(maxsize=64)
def _costs_at(point: tuple, shootdown_model: str, gap_model: str = "exponential_time",
              position_model: str = "stationary") -> _Costs:
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
        raise RuntimeError("local_drain_ns() no longer contains expected_occupancy(); update simulate.cost_table")
    B = int(values["batch_size"])
    drain_fn = lambdify([*args, fill], by_fill)
    table = np.array([float(drain_fn(*point, np.float64(j))) for j in range(B)])
    with np.errstate(all="ignore"):
        # a fixed-time sum over the batch's positions runs over range(batch_size): whole numbers there
        whole = [int(x) if registry.NUMERIC[n].integer else x for n, x in zip(registry.NUMERIC, point)]
        R = float(lambdify(args, residency(gap_model, position_model))(*whole))
        held_fill = float(lambdify(args, held_batch_fill(gap_model, position_model))(*whole)) / R if R > 0 else 0.0
        return _Costs(
            fault_entry=num(costs.fault_entry_ns()),
            reuse=float(values["reuse_ns"]),
            copy_parts={part: num(expr) for part, expr in costs.copy_step_ns(shootdown_model).items()},
            cross_cpu_fault=num(costs.cross_cpu_fault_ns()),
            cross_cpu_copy=num(costs.cross_cpu_copy_ns()),
            local_drain_by_fill=table,
            remove_folio=num(costs.remove_folio_ns()),
            remote_drain=num(costs.remote_drain_ns()),
            remote_lock_overhead=num(costs.remote_lock_overhead_ns()),
            drain_per_remote_folio=num(costs.remote_drain_lock_ns(sp.S.One) - costs.remote_lock_overhead_ns()),
            model_held_fill=held_fill,
            drain_all=num(costs.drain_all_ns()),
            swap_free=num(costs.swap_free_ns()),
            swap_shared=num(costs.swap_shared_copy_ns()),
            model_occupancy=num(occ_expr),
        )


# ---- applying a policy to the fault summary ----------------------------------------------------


def _bits() -> dict[str, np.ndarray]:
    c = np.arange(CODE_BASE)
    return {name: (c & bit) != 0 for name, bit in
            (("exclusive", FLAG_EXCL), ("large", FLAG_LARGE), ("other_ref", FLAG_OTHER), ("same_cpu", FLAG_SAME), ("resident", FLAG_RES),
             ("swapcache", FLAG_SWAP), ("more_refs", FLAG_MORE), ("swap_shared", FLAG_SHARED))}


def policy_decisions(policy: Policy, large_folio_cow_reuse: bool = True) -> dict[str, np.ndarray]:
    """What ``policy`` does for each of the fault summaries (boolean arrays by summary code).
    ``large_folio_cow_reuse``: whether the kernel reuses a non-exclusive large folio that nothing
    else references (else it always copies one). The swap cache and a second other reference
    count only on a small, non-exclusive folio."""
    b = _bits()
    small_shared = ~b["exclusive"] & ~b["large"]  # takes the policy's path and may sit in a batch
    held = b["resident"] & ~b["large"]  # a large folio is never in a batch
    swap = b["swapcache"] & small_shared
    shared = b["swap_shared"] & swap  # another process holds the swap entry: not in the refcount
    none = np.zeros(CODE_BASE, dtype=bool)
    # references beyond this mapping's: others (1, or 2 with a second), the batch's, the swap cache's
    refs = b["other_ref"].astype(int) + (b["other_ref"] & b["more_refs"]) + held + swap
    early = small_shared & (refs >= 3) if policy.early_copy and policy.refcount_test else none
    on_path = small_shared & ~early
    # the RFC: any drain only when the refcount is 2 + swapcache (others + batch == 1)
    helps = (b["other_ref"].astype(int) + held == 1) if policy.only_if_sole_ref else ~none
    local = on_path & helps & {NEVER: none, IF_NOT_ON_LRU: held, ALWAYS: ~none, IF_IN_LOCAL_BATCH: held & b["same_cpu"],
                               REMOVE_FOLIO: held & b["same_cpu"]}[policy.local_drain]
    held_after_local = held & ~(local & b["same_cpu"])  # a local step frees only this CPU's batch
    escalate = on_path & helps & held_after_local if policy.still_held != COPY else none
    held_at_test = held_after_local & ~escalate
    swap_copies = swap if policy.swapcache == SWAPCACHE_COPIES else none
    if policy.refcount_test:
        copy = ~b["exclusive"] & (b["other_ref"] | held_at_test | swap_copies | early | shared
                                  | (b["large"] & (not large_folio_cow_reuse)))
    else:
        copy = shared  # the map and swap counts: a shared swap entry is another user
    return {
        "copy": copy,
        "unnecessary_copy": copy & held_at_test & ~b["other_ref"] & ~swap_copies & ~shared,
        "orphaned": copy & held_at_test,
        "local_drain": local,
        "remove_folio": local if policy.local_drain == REMOVE_FOLIO else none,
        "remote_drain": escalate if policy.still_held == DRAIN_REMOTE else none,
        "remote_drain_lock": escalate if policy.still_held == DRAIN_REMOTE_LOCK else none,
        "drain_all": escalate if policy.still_held == DRAIN_ALL else none,
        "swap_free": swap & ~copy,
        # the early copy skips the attempt to free the entry; the map and swap counts never try it
        "swap_shared": shared & copy & ~early if policy.refcount_test else none,
    }


def _widened(e: Estimate, n: float, z: float, extra_ss: float) -> Estimate:
    """``e`` (a mean_estimate over n faults) with ``extra_ss`` more squared deviation: the spread
    of a cost within a fault summary that the (summary, fill) table does not resolve."""
    if extra_ss <= 0 or not n > 0:
        return e
    n_aug = n + 2 * z * z
    half = math.sqrt(((e.high - e.low) / 2) ** 2 + z * z * extra_ss / ((n_aug - 1) * n_aug))
    return Estimate(e.value, e.value - half, e.value + half, e.method)


def policy_result(policy: Policy, counts: np.ndarray, costs: _Costs, wp_faults_per_s: float, z: float,
                   large_folio_cow_reuse: bool = True, holder_fill_sums: np.ndarray | None = None) -> dict:
    """Every output of ``policy`` from the counts by (summary, writer's fill); ``holder_fill_sums``
    (codes x 2: the sum of the holder's fills and of their squares) prices a drain of the holder's
    batch by its lock at the simulated fills (without them, at the model's mean)."""
    d = policy_decisions(policy, large_folio_cow_reuse)
    by_code = counts.sum(axis=1)
    n = float(by_code.sum())

    def prop(mask):
        return wilson(float(by_code[mask].sum()), n, z)

    out = {
        "p_copy": prop(d["copy"]),
        "p_unnecessary_copy": prop(d["unnecessary_copy"]),
        "p_local_drain": prop(d["local_drain"]),
        "p_remote_drain": prop(d["remote_drain"] | d["remote_drain_lock"]),
        "p_drain_all": prop(d["drain_all"]),
    }
    copy_total = sum(costs.copy_parts.values())
    # a local drain moves the writer's batch as simulated; a removal moves the one folio
    local_cost = np.where((d["local_drain"] & ~d["remove_folio"])[:, None], costs.local_drain_by_fill[None, :], 0.0)
    local_cost += (d["remove_folio"] * costs.remove_folio)[:, None]
    elsewhere = ~_bits()["same_cpu"]   # written on another CPU than the page's installer
    copy_elsewhere = d["copy"] & elsewhere
    # the holder's mean fill per summary, and its spread, for a drain by the holder's lock
    per = costs.drain_per_remote_folio
    with np.errstate(all="ignore"):
        if holder_fill_sums is not None:
            mean_fill = np.where(by_code > 0, holder_fill_sums[:, 0] / np.maximum(by_code, 1), 0.0)
            spread = np.where(by_code > 0, holder_fill_sums[:, 1] - holder_fill_sums[:, 0] * mean_fill, 0.0)
        else:
            mean_fill, spread = np.full(len(by_code), costs.model_held_fill), np.zeros(len(by_code))
    lock_ss = float((per * per * np.maximum(spread, 0.0))[d["remote_drain_lock"]].sum())
    lock_cost = d["remote_drain_lock"] * (costs.remote_lock_overhead + per * mean_fill)
    remote_cost = d["remote_drain"] * costs.remote_drain + lock_cost
    per_fault = (costs.fault_entry + elsewhere * costs.cross_cpu_fault + np.where(d["copy"], copy_total, costs.reuse)
                 + d["swap_free"] * costs.swap_free + copy_elsewhere * costs.cross_cpu_copy
                 + d["swap_shared"] * costs.swap_shared
                 + remote_cost + d["drain_all"] * costs.drain_all)[:, None] + local_cost
    expected = _widened(_mean_estimate(counts, per_fault, z), n, z, lock_ss)
    out["expected_ns"] = expected
    out["cpu_us_per_s"] = _scaled(expected, wp_faults_per_s / 1000)
    out["orphaned_pages_per_fault"] = prop(d["orphaned"])
    breakdown = {"fault_entry": Estimate(costs.fault_entry, costs.fault_entry, costs.fault_entry, "exact"),
                 "cross_cpu_fault": _scaled(prop(elsewhere), costs.cross_cpu_fault),
                 "reuse": _scaled(prop(~d["copy"]), costs.reuse),
                 "swap_free": _scaled(prop(d["swap_free"]), costs.swap_free)}
    for part, ns in costs.copy_parts.items():
        breakdown[part] = _scaled(out["p_copy"], ns)
    breakdown["cross_cpu_copy"] = _scaled(prop(copy_elsewhere), costs.cross_cpu_copy)
    breakdown["swap_shared"] = _scaled(prop(d["swap_shared"]), costs.swap_shared)
    breakdown["local_drain"] = _mean_estimate(counts, local_cost, z)
    if policy.still_held == DRAIN_REMOTE_LOCK:
        lock_part = _mean_estimate(counts, np.broadcast_to(lock_cost[:, None], counts.shape), z)
        breakdown["remote_drain"] = _widened(lock_part, n, z, lock_ss)
    else:
        breakdown["remote_drain"] = _scaled(out["p_remote_drain"], costs.remote_drain)
    breakdown["drain_all"] = _scaled(out["p_drain_all"], costs.drain_all)
    assert tuple(breakdown) == BREAKDOWN
    out["breakdown_ns"] = breakdown
    drains = counts[d["local_drain"] & ~d["remove_folio"]].sum(axis=0)
    out["mean_local_drain_folios"] = _mean_estimate(drains, np.arange(counts.shape[1], dtype=float), z)
    return out

