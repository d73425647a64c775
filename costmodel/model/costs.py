"""What each step of a write-protect fault costs, in ns, as sympy expressions of the registry."""

from __future__ import annotations

import sympy as sp

from ..registry import S
from .residency import expected_occupancy

SHOOTDOWN_MODELS = ("linear", "log2", "broadcast")


def shootdown_ns(shootdown_model: str, targets: sp.Expr = S["remote_cpus"]) -> sp.Expr:
    """TLB shootdown after replacing the PTE; nothing when no other CPU runs the mm."""
    base, per = S["shootdown_base_ns"], S["shootdown_per_cpu_ns"]
    growth = {
        "linear": base + per * targets,
        "log2": base + per * sp.log(1 + targets, 2),
        "broadcast": base,
    }
    if shootdown_model not in growth:
        raise ValueError(f"unknown shootdown_model {shootdown_model!r}")
    return sp.Piecewise((sp.S.Zero, sp.Eq(targets, 0)), (growth[shootdown_model], True))


def fault_entry_ns(targets: sp.Expr = S["remote_cpus"], cold: sp.Expr = S["p_cold_fault"]) -> sp.Expr:
    """What every WP fault pays, reuse or copy: the entry, the cold-path cost for the share ``cold``
    of faults that come alone (first after a fork, a migration or other work), and the sibling cost
    while ``targets`` other CPUs run the mm."""
    return (S["fault_entry_ns"] + cold * S["cold_fault_ns"]
            + sp.Piecewise((sp.S.Zero, sp.Eq(targets, 0)), (S["sibling_fault_ns"], True)))


def shootdown_received_ns(ipis: sp.Expr = sp.S.One) -> sp.Expr:
    """What a CPU running the mm loses to ``ipis`` shootdown IPIs it receives (the sender's wait
    is :func:`shootdown_ns`)."""
    return S["shootdown_receive_ns"] * ipis


def swap_loop_ns(shootdown_model: str, targets: sp.Expr = S["remote_cpus"]) -> sp.Expr:
    """One iteration of a swap-out / swap-in / write loop of one page, with ``targets`` other CPUs
    running the mm and ``loop_peers`` of them running the same loop: the loop's own time, and for
    each shootdown of a pageout, the wait for the targets and what the peers' pageouts cost this
    CPU (each peer sends as many as it receives)."""
    per_flush = shootdown_ns(shootdown_model, targets) + shootdown_received_ns(S["loop_peers"])
    return S["swap_loop_base_ns"] + S["pageout_tlb_flushes"] * per_flush


def cross_cpu_fault_ns(forked_on_writer: sp.Expr = S["p_forked_on_writer"]) -> sp.Expr:
    """What a WP fault on another CPU than the page's installer adds, reuse or copy: its PTE and
    struct page lines come from the installer's cache, unless (the share ``forked_on_writer``) a
    fork on the writing CPU last touched them."""
    return S["cross_cpu_fault_ns"] * (1 - forked_on_writer)


def cross_cpu_copy_ns() -> sp.Expr:
    """What a copy on another CPU than the page's installer adds beyond that (its source lines)."""
    return S["cross_cpu_copy_ns"]


def copy_step_ns(shootdown_model: str) -> dict[str, sp.Expr]:
    """The parts of ``wp_page_copy()`` beyond the common fault entry, by name."""
    return {
        "alloc": S["alloc_ns"],
        "copy": S["page_bytes"] / S["copy_bandwidth_gbps"],  # GB/s == bytes/ns
        "local_flush": S["local_flush_ns"],
        "shootdown": shootdown_ns(shootdown_model),
        "free": S["free_ns"],
    }


def local_drain_ns(folios: sp.Expr = None) -> sp.Expr:
    """``lru_add_drain()`` on this CPU: a base cost plus each folio it moves (by default the
    stationary mean fill of a batch)."""
    return S["drain_base_ns"] + S["drain_per_folio_ns"] * (expected_occupancy() if folios is None else folios)


def remote_drain_ns() -> sp.Expr:
    """Drain the one other CPU that holds the page and wait: the mean over that CPU's state (idle,
    running a normal task, running a real-time task)."""
    busy, rt = S["p_holder_busy"], S["p_holder_rt"]
    return (1 - busy - rt) * S["remote_drain_ns"] + busy * S["remote_drain_busy_ns"] + rt * S["remote_drain_rt_ns"]


def batch_lines() -> sp.Expr:
    """Cache lines of one per-CPU add batch (``struct folio_batch``: a count byte, two flags and
    ``batch_size`` folio pointers, 8 bytes each), as a mean (no rounding up)."""
    return (8 * S["batch_size"] + 8) / sp.S(64)


def remote_lock_overhead_ns() -> sp.Expr:
    """What taking another CPU's batch lock and draining its batch here adds to a drain's base
    (PW locks): the lock's line and the batch's lines come over from that CPU, and go back when it
    next adds a folio (both sides priced). Derived from the measured line transfer; no Linux
    release has the path."""
    return S["drain_base_ns"] + 2 * (1 + batch_lines()) * S["cacheline_transfer_ns"]


def remote_drain_lock_ns(folios: sp.Expr) -> sp.Expr:
    """Drain the holding CPU's batch from this CPU by its lock, moving ``folios`` folios whose
    lines sit in the holder's cache: the same whatever the holder is doing."""
    return remote_lock_overhead_ns() + S["drain_per_remote_folio_ns"] * folios


def remove_folio_ns() -> sp.Expr:
    """Take one folio out of the local batch and onto the LRU (the proposal's lru_add_drain_folio()
    variant): priced as a local drain that moves one folio (the lruvec lock and one folio's move;
    the scan of at most batch_size local pointers left out). Derived; no Linux release has it."""
    return local_drain_ns(sp.S.One)


def swap_free_ns() -> sp.Expr:
    """A reuse of a swap-cache folio frees its swap entry (folio_free_swap)."""
    return S["swap_free_ns"]


def swap_shared_copy_ns() -> sp.Expr:
    """What a copy adds when another process holds the folio's swap entry: the failed attempts to
    free the entry (folio_free_swap, before and after the copy), the old folio left in the cache."""
    return S["swap_shared_copy_ns"]


def cpus_needing_drain() -> sp.Expr:
    """CPUs besides the holder that lru_add_drain_all() queues work on: those of the other
    cpus - 2 (neither the faulting CPU, just drained, nor the holder) whose batches are non-empty."""
    return S["p_cpu_needs_drain"] * sp.Max(S["cpus"] - 2, 0)


def drain_all_ns() -> sp.Expr:
    """``lru_add_drain_all()`` when the page sits in another CPU's batch: its base (mutex, drain
    generation, scan of the CPUs, the local drain of the already empty batch), the remote drain of
    the holder, and each further CPU that needs a drain (their works overlap: per_cpu at most a
    remote drain each). The same mechanism as :func:`remote_drain_ns`, so it can never be cheaper."""
    return S["drain_all_base_ns"] + remote_drain_ns() + S["drain_all_per_cpu_ns"] * cpus_needing_drain()
