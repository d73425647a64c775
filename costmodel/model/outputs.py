"""The outputs of the model for one policy, composed from residency, costs and the policy.

Event tree for one WP fault: exclusive folios (p_exclusive) are reused at once; of the rest,
large folios (p_large_folio) are never in a batch; a small folio is still held by a batch with
probability R (residency), by the faulting CPU's own batch with p_same_cpu. A transient other
reference (p_other_ref) forces a copy under every refcount-testing policy.
"""

from __future__ import annotations


from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from ..registry import S
from . import costs
from .policies import ALWAYS, COPY, DRAIN_ALL, DRAIN_REMOTE, IF_NOT_ON_LRU, NEVER, POLICIES, Policy
from .residency import expected_occupancy, fill_after_flush, held_batch_fill, residency

@dataclass(frozen=True)
class Output:
    """One scalar output of a policy, declared once: the tables of eval, simulate and the report
    take their columns, headings, units and number formats from here."""

    name: str
    unit: str
    heading: str
    fmt: str
    #: "probability" (a share of WP faults), "cost" (ns per fault or CPU time), "count"
    kind: str
    description: str


#: every scalar output of a policy, in order (breakdown parts follow as breakdown_ns.<part>)
OUTPUT_DECLARATIONS: tuple[Output, ...] = (
    Output("p_copy", "probability", "p_copy", "{:.4f}", "probability", "the WP fault copies the page"),
    Output("p_unnecessary_copy", "probability", "p_unneeded", "{:.4f}", "probability",
           "it copies only because a batch still holds the page"),
    Output("p_local_drain", "probability", "p_drain_loc", "{:.4f}", "probability", "it calls lru_add_drain()"),
    Output("p_remote_drain", "probability", "p_drain_rem", "{:.4f}", "probability",
           "it drains the holding CPU remotely"),
    Output("p_drain_all", "probability", "p_drain_all", "{:.4f}", "probability", "it calls lru_add_drain_all()"),
    Output("expected_ns", "ns", "expected_ns", "{:.1f}", "cost", "expected cost of one WP fault"),
    Output("cpu_us_per_s", "us/s", "cpu_us_per_s", "{:.0f}", "cost", "CPU time per second at wp_faults_per_s"),
    Output("orphaned_pages_per_fault", "pages", "orphaned", "{:.4f}", "count",
           "old pages left in a batch after a copy"),
)
OUTPUT_BY_NAME = {o.name: o for o in OUTPUT_DECLARATIONS}
OUTPUTS = tuple(o.name for o in OUTPUT_DECLARATIONS)
#: the parts of expected_ns, in order: the fault entry and what a fault on another CPU than the
#: page's installer adds, the reuse, every step of the copy (as costs.copy_step_ns names them, so a
#: new step is a new part) and what a copy there adds, and the drains
BREAKDOWN = ("fault_entry", "cross_cpu_fault", "reuse", *costs.copy_step_ns("linear"), "cross_cpu_copy",
             "local_drain", "remote_drain", "drain_all")


def policy_outputs(policy: Policy | str, gap_model: str, position_model: str, shootdown_model: str) -> dict[str, sp.Expr]:
    """Every output of ``policy`` as a sympy expression, keyed as in :data:`OUTPUTS` plus
    ``breakdown_ns.<part>`` for each part of :data:`BREAKDOWN`."""
    pol = POLICIES[policy] if isinstance(policy, str) else policy
    R = residency(gap_model, position_model)
    s, o = S["p_same_cpu"], S["p_other_ref"]
    small_shared = (1 - S["p_exclusive"]) * (1 - S["p_large_folio"])  # may sit in a batch

    # the local step: lru_add_drain() releases the page only if this CPU's batch holds it
    local_call = {NEVER: sp.S.Zero, IF_NOT_ON_LRU: R, ALWAYS: sp.S.One}[pol.local_drain]
    held_after_local = R if pol.local_drain == NEVER else R * (1 - s)
    # the escalation, called while the folio is still not on an LRU
    remote_call = held_after_local if pol.still_held == DRAIN_REMOTE else sp.S.Zero
    all_call = held_after_local if pol.still_held == DRAIN_ALL else sp.S.Zero
    held_at_test = held_after_local if pol.still_held == COPY else sp.S.Zero

    # a non-exclusive large folio is never in a batch; whether it is reused depends on the kernel
    large_copies = o + (1 - o) * (1 - S["large_folio_cow_reuse"])
    # of those held at the test, the ones written on another CPU than the holder's: after a local
    # drain all of them, without one the share 1 - p_same_cpu
    held_elsewhere = held_at_test if pol.local_drain != NEVER else held_at_test * (1 - s)
    if pol.refcount_test:
        p_copy = (1 - S["p_exclusive"]) * (S["p_large_folio"] * large_copies
                                           + (1 - S["p_large_folio"]) * (o + (1 - o) * held_at_test))
        p_copy_elsewhere = (1 - S["p_exclusive"]) * (S["p_large_folio"] * large_copies * (1 - s)
                                                     + (1 - S["p_large_folio"]) * (o * (1 - s) + (1 - o) * held_elsewhere))
        p_unnecessary = small_shared * (1 - o) * held_at_test
        orphaned = small_shared * held_at_test
    else:
        p_copy = p_copy_elsewhere = p_unnecessary = orphaned = sp.S.Zero

    out = {
        "p_copy": p_copy,
        "p_unnecessary_copy": p_unnecessary,
        "p_local_drain": small_shared * local_call,
        "p_remote_drain": small_shared * remote_call,
        "p_drain_all": small_shared * all_call,
    }
    breakdown = {"fault_entry": costs.fault_entry_ns(), "cross_cpu_fault": (1 - s) * costs.cross_cpu_fault_ns(),
                 "reuse": (1 - p_copy) * S["reuse_ns"]}
    breakdown.update({part: p_copy * cost for part, cost in costs.copy_step_ns(shootdown_model).items()})
    breakdown["cross_cpu_copy"] = p_copy_elsewhere * costs.cross_cpu_copy_ns()
    # folios moved by local drains. On the CPU whose batch holds the page, a drain moves that fuller
    # batch (the page and every add since: held_batch_fill); a drain of the page's own batch after
    # it was moved (drain_local_always only) moves what came since (fill_after_flush). A drain of
    # another CPU's batch moves its stationary mean fill (exact without drain-all).
    holding = small_shared * S["p_same_cpu"]
    elsewhere = small_shared * (1 - S["p_same_cpu"])
    if pol.local_drain == IF_NOT_ON_LRU:
        folios = holding * held_batch_fill(gap_model, position_model) + elsewhere * R * expected_occupancy()
    elif pol.local_drain == ALWAYS:
        folios = (holding * (held_batch_fill(gap_model, position_model) + (1 - R) * fill_after_flush(gap_model))
                  + elsewhere * expected_occupancy())
    else:
        folios = sp.S.Zero
    breakdown["local_drain"] = out["p_local_drain"] * S["drain_base_ns"] + S["drain_per_folio_ns"] * folios
    breakdown["remote_drain"] = out["p_remote_drain"] * costs.remote_drain_ns()
    breakdown["drain_all"] = out["p_drain_all"] * costs.drain_all_ns()
    assert tuple(breakdown) == BREAKDOWN
    expected = sp.Add(*breakdown.values())
    out["expected_ns"] = expected
    out["cpu_us_per_s"] = expected * S["wp_faults_per_s"] / 1000
    out["orphaned_pages_per_fault"] = orphaned
    out.update({f"breakdown_ns.{k}": v for k, v in breakdown.items()})
    return out



@lru_cache(maxsize=None)
def policy_parameters() -> frozenset[str]:
    """Every registry parameter some policy output depends on, under any choice of the categorical
    models, and the categorical models themselves: what a panel of a policy's outputs offers.
    (Parameters of other model quantities, such as the swap loop's, are left out.)"""
    from itertools import product

    from ..registry import CATEGORICAL
    from .policies import POLICIES

    names: set[str] = set(CATEGORICAL)
    gap, pos, sd = (CATEGORICAL[n].choices for n in ("gap_model", "position_model", "shootdown_model"))
    for policy, g, p, d in product(POLICIES, gap, pos, sd):
        for expr in policy_outputs(policy, g, p, d).values():
            names |= {s.name for s in expr.free_symbols}
    return frozenset(names)


def output_names() -> tuple[str, ...]:
    return OUTPUTS + tuple(f"breakdown_ns.{b}" for b in BREAKDOWN)


def model_hash() -> str:
    """The hash a parameter set carries: of the formulas calibration rests on (the measured
    quantities in :mod:`costmodel.model.forward`), so a set stays valid while the policies'
    logic changes and is flagged when what a measured cost means changes."""
    from .forward import forward_hash

    return forward_hash()
