"""What the probes measure, as the model's own expressions: the forward side of calibration.

Each entry of :data:`MEASURABLES` is one measured quantity (a fault that reuses, a fault that
copies, a cold page copy, a shootdown at ``targets`` CPUs, a local drain of ``folios`` folios, a
remote drain, ``lru_add_drain_all()`` with no CPU needing a drain, the copy fraction of a
cross-CPU write after ``k`` adds), built from the same sub-expressions the policies' outputs are
built from. Calibration fits parameters to measurements through these expressions only, so a new
cost term inside, say, the copy is fitted as soon as the model has it; and which parameters a
measurement identifies only as a sum follows from the expression (:func:`linear_terms`).

:func:`forward_hash` hashes these expressions: the formulas a calibrated set depends on. A
change to a policy's escalation leaves every calibrated set valid; a change to what a measured
copy fault costs does not.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import sympy as sp

from ..registry import CATEGORICAL, S
from . import costs
from .residency import residency

#: free variables of the measured quantities (not parameters of the model)
TARGETS = sp.Symbol("targets", integer=True, nonnegative=True)
FOLIOS = sp.Symbol("folios", nonnegative=True)
K = S["adds_between"]


@dataclass(frozen=True)
class Measurable:
    name: str
    description: str
    build: Callable[[str], sp.Expr]  # shootdown_model -> expression


#: fault_cost times its faults in rounds of 16 writes after each fork: the first of each round is
#: cold (p_cold_fault), the other 15 follow a fault; its *_first_* operations time the first alone
ROUND_PAGES = 16
ROUND_COLD = sp.Rational(1, ROUND_PAGES)
#: fault_cost's writes on the other CPU follow a fork made on the installing CPU
#: (``p_forked_on_writer`` = 0)
FORKED_ON_INSTALLER = sp.S.Zero


def reuse_fault_ns(shootdown_model: str = "linear", targets: sp.Expr = sp.S.Zero,
                   cold: sp.Expr = ROUND_COLD) -> sp.Expr:
    """A WP fault that reuses the page, with ``targets`` other CPUs running the mm; ``cold`` of
    such faults come alone (by default fault_cost's rounds: one in 16)."""
    return costs.fault_entry_ns(targets, cold) + S["reuse_ns"]


def copy_fault_ns(shootdown_model: str = "linear", targets: sp.Expr = sp.S.Zero,
                  cold: sp.Expr = ROUND_COLD) -> sp.Expr:
    """A WP fault that copies, with ``targets`` other CPUs running the mm (0: no shootdown)."""
    parts = costs.copy_step_ns(shootdown_model)
    parts["shootdown"] = costs.shootdown_ns(shootdown_model, targets)
    return costs.fault_entry_ns(targets, cold) + sp.Add(*parts.values())


def page_copy_ns(shootdown_model: str = "linear") -> sp.Expr:
    """The copy step alone (a cold 4 KiB copy)."""
    return costs.copy_step_ns(shootdown_model)["copy"]


def shootdown_at_ns(shootdown_model: str = "linear") -> sp.Expr:
    """The shootdown to ``targets`` CPUs (``targets`` >= 1)."""
    return costs.shootdown_ns(shootdown_model, TARGETS)


def local_drain_at_ns(shootdown_model: str = "linear") -> sp.Expr:
    """A local ``lru_add_drain()`` that moves ``folios`` folios."""
    return costs.local_drain_ns(FOLIOS)


def drain_all_idle_base_ns(shootdown_model: str = "linear") -> sp.Expr:
    """``lru_add_drain_all()`` when no CPU needs a drain."""
    return costs.drain_all_ns().subs({S["remote_drain_ns"]: 0, S["p_holder_busy"]: 0, S["p_holder_rt"]: 0,
                                      S["p_cpu_needs_drain"]: 0})


def drain_all_one_cpu_ns(shootdown_model: str = "linear") -> sp.Expr:
    """``lru_add_drain_all()`` with exactly one other (idle) CPU needing a drain."""
    return costs.drain_all_ns().subs({S["p_holder_busy"]: 0, S["p_holder_rt"]: 0, S["p_cpu_needs_drain"]: 0})


def remote_drain_state_ns(state: str) -> sp.Expr:
    """The remote drain of the holder in ``state`` (idle, busy, rt)."""
    weights = {"idle": (0, 0), "busy": (1, 0), "rt": (0, 1)}[state]
    return costs.remote_drain_ns().subs({S["p_holder_busy"]: weights[0], S["p_holder_rt"]: weights[1]})


def cross_cpu_copy_fraction(position_model: str) -> sp.Expr:
    """P(copy) of a write on another CPU, ``adds_between`` adds after the page's install, with no
    drains, no other references and no large folios: the residency (fixed count), at position 0
    (``fixed``, right after a drain) or at the stationary position."""
    quiet = {S["explicit_drains_per_s"]: 0, S["drain_all_per_s"]: 0, S["p_large_add"]: 0, S["batch_position"]: 0}
    return residency("fixed_count", position_model).subs(quiet)


MEASURABLES: dict[str, Measurable] = {
    m.name: m
    for m in [
        Measurable("reuse_fault_ns", "WP fault that reuses the page", reuse_fault_ns),
        Measurable("copy_fault_ns", "WP fault that copies, no other CPU in the mm", copy_fault_ns),
        Measurable("reuse_fault_sibling_ns", "WP fault that reuses, one other CPU running the mm",
                   lambda sd: reuse_fault_ns(sd, sp.S.One)),
        Measurable("copy_fault_sibling_ns", "WP fault that copies, one other CPU running the mm (one shootdown)",
                   lambda sd: copy_fault_ns(sd, sp.S.One)),
        Measurable("reuse_fault_other_cpu_ns", "WP fault that reuses, on another CPU than the page's installer",
                   lambda sd: reuse_fault_ns(sd) + costs.cross_cpu_fault_ns(FORKED_ON_INSTALLER)),
        Measurable("copy_fault_other_cpu_ns", "WP fault that copies, on another CPU than the page's installer",
                   lambda sd: copy_fault_ns(sd) + costs.cross_cpu_fault_ns(FORKED_ON_INSTALLER)
                   + costs.cross_cpu_copy_ns()),
        Measurable("reuse_fault_cold_ns", "WP fault that reuses, the first after a fork (cold)",
                   lambda sd: reuse_fault_ns(sd, cold=sp.S.One)),
        Measurable("copy_fault_cold_ns", "WP fault that copies, the first after a fork (cold)",
                   lambda sd: copy_fault_ns(sd, cold=sp.S.One)),
        Measurable("copy_fault_sibling_cold_ns",
                   "WP fault that copies, the first after a fork (cold), one other CPU running the mm",
                   lambda sd: copy_fault_ns(sd, sp.S.One, cold=sp.S.One)),
        Measurable("reuse_drain_cold_ns", "WP fault that drains the one folio of the local batch and reuses, "
                   "the first after a fork (cold)",
                   lambda sd: reuse_fault_ns(sd, cold=sp.S.One) + costs.local_drain_ns(sp.S.One)),
        Measurable("reuse_fault_swapcache_ns", "WP fault that reuses a folio of the swap cache and frees its "
                   "swap entry", lambda sd: reuse_fault_ns(sd) + costs.swap_free_ns()),
        Measurable("copy_fault_swap_shared_ns", "WP fault that copies a folio of the swap cache whose swap entry "
                   "another process holds", lambda sd: copy_fault_ns(sd) + costs.swap_shared_copy_ns()),
        Measurable("page_copy_ns", "cold copy of one page", page_copy_ns),
        Measurable("shootdown_ns", "TLB shootdown to `targets` CPUs", shootdown_at_ns),
        Measurable("shootdown_receive_ns", "what a CPU running the mm loses to one shootdown IPI it receives",
                   lambda sd: costs.shootdown_received_ns()),
        Measurable("local_drain_ns", "local lru_add_drain() moving `folios` folios", local_drain_at_ns),
        Measurable("drain_all_base_ns", "lru_add_drain_all() with no CPU needing a drain", drain_all_idle_base_ns),
        Measurable("drain_all_one_cpu_ns", "lru_add_drain_all() with one idle CPU needing a drain",
                   drain_all_one_cpu_ns),
        Measurable("remote_drain_idle_ns", "remote drain of an idle holder", lambda sd: remote_drain_state_ns("idle")),
        Measurable("remote_drain_busy_ns", "remote drain of a holder running a normal task",
                   lambda sd: remote_drain_state_ns("busy")),
        Measurable("remote_drain_rt_ns", "remote drain of a holder running a real-time task",
                   lambda sd: remote_drain_state_ns("rt")),
        Measurable("lock_transfer_ns", "a lock word taken right after the other CPU wrote it, less the same "
                   "lock on one CPU: one modified line moved", lambda sd: S["cacheline_transfer_ns"]),
        Measurable("remote_refs_drain_extra_ns", "a local drain of batch_size - 1 folios whose lines the other "
                   "CPU wrote last, less the same drain with them local",
                   lambda sd: (S["drain_per_remote_folio_ns"] - S["drain_per_folio_ns"]) * (S["batch_size"] - 1)),
        Measurable("copy_fraction_after_drain", "cross-CPU copy fraction at position 0",
                   lambda sd: cross_cpu_copy_fraction("fixed")),
        Measurable("copy_fraction_unknown_position", "cross-CPU copy fraction at the stationary position",
                   lambda sd: cross_cpu_copy_fraction("stationary")),
    ]
}


def measurable(name: str, shootdown_model: str = "linear") -> sp.Expr:
    return MEASURABLES[name].build(shootdown_model)


def linear_terms(expr: sp.Expr, unknowns) -> tuple[dict, sp.Expr] | None:
    """``expr`` as ``sum(coeff_i * unknown_i) + rest`` when it is linear in ``unknowns`` with
    coefficients free of them: ({unknown: coeff}, rest); None when it is not. A measurement of
    such an expression identifies only the weighted sum of the unknowns it contains."""
    unknowns = [u for u in unknowns if u in expr.free_symbols]
    if not unknowns:
        return {}, expr
    expanded = sp.expand(expr)
    coeffs = {}
    for u in unknowns:
        c = expanded.coeff(u)
        if c.free_symbols & set(unknowns):
            return None
        coeffs[u] = c
    rest = sp.expand(expanded - sum(c * u for u, c in coeffs.items()))
    if rest.free_symbols & set(unknowns):
        return None
    return coeffs, rest


@lru_cache(maxsize=None)
def forward_hash() -> str:
    """A short hash of every measurable's expression under every shootdown shape: the formulas a
    calibrated parameter set rests on."""
    h = hashlib.sha256()
    for sd in CATEGORICAL["shootdown_model"].choices:
        for name, m in MEASURABLES.items():
            h.update(f"{name}|{sd}|{sp.srepr(m.build(sd))}\n".encode())
    return h.hexdigest()[:16]
