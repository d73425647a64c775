"""The outputs of the model for one policy, composed from residency, costs and the policy.

Event tree for one WP fault: exclusive folios (p_exclusive) are reused at once; of the rest,
large folios (p_large_folio) are never in a batch; a small folio is still held by a batch with
probability R (residency), by the faulting CPU's own batch with p_same_cpu. A transient other
reference (p_other_ref; a second one with p_more_refs) forces a copy under every refcount-testing
policy; the swap cache's reference (p_swapcache) is allowed for (a reuse frees the swap entry) or,
before 5.17, forces a copy; a swap entry another process still holds (p_swap_shared) is invisible
to the refcount test but forces the copy after it; refcount above 3 copies without a drain (see
:mod:`.policies`).
"""

from __future__ import annotations


from dataclasses import dataclass
from functools import lru_cache
from itertools import product

import sympy as sp

from ..registry import CATEGORICAL, S
from . import costs
from .forward import forward_hash
from .policies import (ALWAYS, COPY, DRAIN_ALL, DRAIN_REMOTE, DRAIN_REMOTE_LOCK, IF_IN_LOCAL_BATCH, IF_NOT_ON_LRU,
                       NEVER, POLICIES, REMOVE_FOLIO, SWAPCACHE_COPIES, Policy)
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
#: page's installer adds, the reuse and the swap entry a reuse frees, every step of the copy (as
#: costs.copy_step_ns names them, so a new step is a new part) and what a copy there adds, and the
#: drains (the remote drain queued or by the holder's lock)
BREAKDOWN = ("fault_entry", "cross_cpu_fault", "reuse", "swap_free", *costs.copy_step_ns("linear"),
             "cross_cpu_copy", "swap_shared", "local_drain", "remote_drain", "drain_all")

#: what one small, non-exclusive folio's WP fault can do, as indicator keys of :func:`decide`
_EVENTS = ("local", "remote", "all", "remote_lock", "copy", "copy_elsewhere", "unnecessary", "orphaned",
           "swap_free", "swap_shared")


def decide(pol: Policy, others: int, swapcache: bool, held: bool, same_cpu: bool, swap_shared: bool = False) -> dict:
    """What ``pol`` does with a small, non-exclusive folio that carries ``others`` other references
    (0, 1, or 2 for two or more), the swap cache's if ``swapcache``, and a batch's if ``held`` (in
    the writer's own batch if ``same_cpu``); ``swap_shared``: another process holds its swap entry
    (a reference the refcount does not show, which keeps the entry from being freed: a copy).
    Returns the events of :data:`_EVENTS` (booleans) and ``local_kind``: which batch the local step
    moves ("holder", "after_flush", "other", "one")."""
    d = dict.fromkeys(_EVENTS, False)
    d["local_kind"] = None
    shared = swapcache and swap_shared
    if not pol.refcount_test:  # by map and swap count: reused unless the entry is shared; then freed
        # reuse_swap_page() reads the swap count and copies without trying to free a shared entry:
        # no failed free (swap_shared_copy_ns is the refcount path's folio_free_swap() that fails)
        d.update(swap_free=swapcache and not shared, copy=shared, copy_elsewhere=shared and not same_cpu,
                 orphaned=shared and held)
        return d
    if pol.early_copy and others + held + swapcache >= 3:  # refcount > 3: copy at once, no drain
        d.update(copy=True, copy_elsewhere=not same_cpu, orphaned=held)
        return d
    # the RFC's condition: refcount == 2 + swapcache, the batch's reference the only unexplained one
    helps = (others + held == 1) if pol.only_if_sole_ref else True
    step = {NEVER: False, IF_NOT_ON_LRU: held, ALWAYS: True,
            IF_IN_LOCAL_BATCH: held and same_cpu, REMOVE_FOLIO: held and same_cpu}[pol.local_drain] and helps
    still = held
    if step:
        d["local"] = True
        if pol.local_drain == REMOVE_FOLIO:
            d["local_kind"] = "one"
        elif same_cpu:
            d["local_kind"] = "holder" if held else "after_flush"
        else:
            d["local_kind"] = "other"
        still = held and not same_cpu  # a local step frees only this CPU's batch
    if still and helps and pol.still_held != COPY:
        d[{DRAIN_REMOTE: "remote", DRAIN_ALL: "all", DRAIN_REMOTE_LOCK: "remote_lock"}[pol.still_held]] = True
        still = False
    swap_copies = swapcache and pol.swapcache == SWAPCACHE_COPIES
    copy = others >= 1 or still or swap_copies or shared
    d.update(copy=copy, copy_elsewhere=copy and not same_cpu, unnecessary=copy and still and others == 0
             and not swap_copies and not shared, orphaned=copy and still, swap_free=swapcache and not copy,
             swap_shared=shared)
    return d


def _collapse(branches: list[tuple[sp.Expr, dict]]) -> dict:
    """Sum weighted children key by key; where the children of a level agree on a key, the sum is
    that value (the level's weights sum to 1), so each expression stays as small as the rules allow."""
    out = {}
    for k, first in branches[0][1].items():
        if all(child[k] == first for _, child in branches[1:]):
            out[k] = first
        else:
            out[k] = sp.Add(*(w * child[k] for w, child in branches))
    return out


def _small_shared_sums(pol: Policy, gap_model: str, position_model: str) -> dict[str, sp.Expr]:
    """Expected indicators (and folio counts) over the small, non-exclusive folios: a sum over the
    event tree's leaves (other references, swap cache, writer's CPU, held), collapsed level by level.
    Folio counts are E[F; event]: the holder's batch while it holds the page (held_batch_fill), after
    it was moved (fill_after_flush), another CPU's at its stationary mean, or the one folio removed."""
    # placeholders while the leaves are summed, so that which leaves collapse never depends on the
    # categorical choices (the outputs stay one expression of the choice-dependent parts)
    R, held_fill, after_flush, occupancy = (sp.Dummy(n) for n in ("R", "held_fill", "after_flush", "occupancy"))
    parts = {R: residency(gap_model, position_model), held_fill: held_batch_fill(gap_model, position_model),
             after_flush: fill_after_flush(gap_model), occupancy: expected_occupancy()}
    po, pm, pc, ps = S["p_other_ref"], S["p_more_refs"], S["p_swapcache"], S["p_same_cpu"]
    pss = S["p_swap_shared"]

    def at(others, swapcache, same, shared):
        total = dict.fromkeys((*_EVENTS, "local_folios", "lock_folios"), sp.S.Zero)
        for held, w in ((True, R), (False, 1 - R)):
            d = decide(pol, others, swapcache, held, same, shared)
            for k in _EVENTS:
                if d[k]:
                    total[k] += w
            kind = d["local_kind"]
            if kind == "holder":
                total["local_folios"] += held_fill            # E[F; held], weighted already
            elif kind == "after_flush":
                total["local_folios"] += w * after_flush
            elif kind == "other":
                total["local_folios"] += w * occupancy
            elif kind == "one":
                total["local_folios"] += w
            if d["remote_lock"]:
                total["lock_folios"] += held_fill             # the holder's batch, holding the page
        return total

    def level_s(o, c, shared):
        return _collapse([(ps, at(o, c, True, shared)), (1 - ps, at(o, c, False, shared))])

    def level_c(o):
        in_cache = _collapse([(pss, level_s(o, True, True)), (1 - pss, level_s(o, True, False))])
        return _collapse([(pc, in_cache), (1 - pc, level_s(o, False, False))])

    sums = _collapse([(1 - po, level_c(0)), (po * (1 - pm), level_c(1)), (po * pm, level_c(2))])
    return {k: _smaller(e, tuple(parts)).xreplace(parts) for k, e in sums.items()}


def _smaller(e: sp.Expr, placeholders: tuple) -> sp.Expr:
    """``e`` or the same sum collected on the placeholders, whichever has fewer operations (decided
    on the placeholder form, so the same for every categorical choice)."""
    if e.is_Atom:
        return e
    collected = sp.factor_terms(sp.collect(sp.expand(e), placeholders))
    return collected if sp.count_ops(collected) < sp.count_ops(e) else e


def policy_outputs(policy: Policy | str, gap_model: str, position_model: str, shootdown_model: str) -> dict[str, sp.Expr]:
    """Every output of ``policy`` as a sympy expression, keyed as in :data:`OUTPUTS` plus
    ``breakdown_ns.<part>`` for each part of :data:`BREAKDOWN`."""
    pol = POLICIES[policy] if isinstance(policy, str) else policy
    s, o = S["p_same_cpu"], S["p_other_ref"]
    pe, pl = S["p_exclusive"], S["p_large_folio"]
    small_shared = (1 - pe) * (1 - pl)  # may sit in a batch
    e = _small_shared_sums(pol, gap_model, position_model)

    # a non-exclusive large folio is never in a batch; whether it is reused depends on the kernel
    large_copies = o + (1 - o) * (1 - S["large_folio_cow_reuse"]) if pol.refcount_test else sp.S.Zero
    p_copy = (1 - pe) * pl * large_copies + small_shared * e["copy"]
    p_copy_elsewhere = (1 - pe) * pl * large_copies * (1 - s) + small_shared * e["copy_elsewhere"]

    out = {
        "p_copy": p_copy,
        "p_unnecessary_copy": small_shared * e["unnecessary"],
        "p_local_drain": small_shared * e["local"],
        "p_remote_drain": small_shared * (e["remote"] + e["remote_lock"]),
        "p_drain_all": small_shared * e["all"],
    }
    breakdown = {"fault_entry": costs.fault_entry_ns(), "cross_cpu_fault": (1 - s) * costs.cross_cpu_fault_ns(),
                 "reuse": (1 - p_copy) * S["reuse_ns"], "swap_free": small_shared * e["swap_free"] * costs.swap_free_ns()}
    breakdown.update({part: p_copy * cost for part, cost in costs.copy_step_ns(shootdown_model).items()})
    breakdown["cross_cpu_copy"] = p_copy_elsewhere * costs.cross_cpu_copy_ns()
    breakdown["swap_shared"] = small_shared * e["swap_shared"] * costs.swap_shared_copy_ns()
    breakdown["local_drain"] = small_shared * (e["local"] * S["drain_base_ns"] + S["drain_per_folio_ns"] * e["local_folios"])
    breakdown["remote_drain"] = small_shared * (e["remote"] * costs.remote_drain_ns()
                                                + e["remote_lock"] * costs.remote_lock_overhead_ns()
                                                + S["drain_per_remote_folio_ns"] * e["lock_folios"])
    breakdown["drain_all"] = out["p_drain_all"] * costs.drain_all_ns()
    assert tuple(breakdown) == BREAKDOWN
    expected = sp.Add(*breakdown.values())
    out["expected_ns"] = expected
    out["cpu_us_per_s"] = expected * S["wp_faults_per_s"] / 1000
    out["orphaned_pages_per_fault"] = small_shared * e["orphaned"]
    out.update({f"breakdown_ns.{k}": v for k, v in breakdown.items()})
    return out



@lru_cache(maxsize=None)
def policy_parameters() -> frozenset[str]:
    """Every registry parameter some policy output depends on, under any choice of the categorical
    models, and the categorical models themselves: what a panel of a policy's outputs offers.
    (Parameters of other model quantities, such as the swap loop's, are left out.)"""
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
    return forward_hash()
