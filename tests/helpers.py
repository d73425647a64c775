"""Helpers shared by several test modules: the prices of a fault's steps written out by hand, the
batch-fill chain solved directly, and headless Chromium through Playwright."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import numpy as np
from scipy import linalg

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


# ---- the prices of a fault's steps, written out by hand -------------------------------------------
#
# The independent oracles price a fault from here: test_outputs' by-hand expected cost,
# test_simulate's priced_by_hand, test_calibrate's synthetic measurements and the by-hand checks of
# test_prediction, test_charts and test_uncertainty. Plain arithmetic on the parameter values, step by
# step as the kernel's wp_page_copy() and the drains run, never costmodel.model: a new cost term is one
# line here (and the oracles fail until it is there, which is their job). ``v`` is a dict of values
# (registry.resolve gives one); ``targets`` defaults to v["remote_cpus"].


def _targets(v, targets):
    return v["remote_cpus"] if targets is None else targets


def shootdown_price_ns(v, targets=None) -> float:
    """The TLB shootdown after the PTE is replaced: nothing without a target CPU, else the base and
    per target CPU its shape's growth (an IPI each, a tree, a broadcast)."""
    r = _targets(v, targets)
    if r == 0:
        return 0.0
    growth = {"linear": r, "log2": math.log2(1 + r), "broadcast": 0.0}[v["shootdown_model"]]
    return v["shootdown_base_ns"] + v["shootdown_per_cpu_ns"] * growth


def entry_price_ns(v, targets=None, cold=None) -> float:
    """What every WP fault pays, reuse or copy: the entry, the cold path for the share ``cold`` (by
    default p_cold_fault) that come alone, and the sibling cost while another CPU runs the mm."""
    cold = v["p_cold_fault"] if cold is None else cold
    return (v["fault_entry_ns"] + cold * v["cold_fault_ns"]
            + (v["sibling_fault_ns"] if _targets(v, targets) >= 1 else 0.0))


def copy_parts_ns(v, targets=None) -> dict[str, float]:
    """wp_page_copy() beyond the entry, step by step (the names of the model's breakdown)."""
    return {
        "alloc": v["alloc_ns"],
        "copy": v["page_bytes"] / v["copy_bandwidth_gbps"],  # GB/s == bytes/ns
        "local_flush": v["local_flush_ns"],
        "shootdown": shootdown_price_ns(v, targets),
        "free": v["free_ns"],
    }


def copy_price_ns(v, targets=None) -> float:
    """The whole copy step beyond the entry (``targets=0``: without a shootdown)."""
    return sum(copy_parts_ns(v, targets).values())


def local_drain_price_ns(v, folios, drains=1.0) -> float:
    """``drains`` local lru_add_drain() calls moving ``folios`` folios in all: each call its base,
    each folio its move to the LRU (``drains`` and ``folios`` may be expected counts)."""
    return drains * v["drain_base_ns"] + v["drain_per_folio_ns"] * folios


def remote_drain_price_ns(v) -> float:
    """Queue the drain on the holding CPU and wait: the mean over its state (idle, busy, real-time)."""
    busy, rt = v["p_holder_busy"], v["p_holder_rt"]
    return (1 - busy - rt) * v["remote_drain_ns"] + busy * v["remote_drain_busy_ns"] + rt * v["remote_drain_rt_ns"]


def drain_all_price_ns(v) -> float:
    """lru_add_drain_all(): its base, the holder's remote drain, and each further CPU (neither this
    one nor the holder) whose batch needs a drain."""
    return (v["drain_all_base_ns"] + remote_drain_price_ns(v)
            + v["drain_all_per_cpu_ns"] * v["p_cpu_needs_drain"] * max(v["cpus"] - 2, 0))


def lock_drain_fixed_ns(v) -> float:
    """The holder's batch drained here by its lock, before any folio: a drain's base, and the lock's
    line and the batch's (a count, two flags, 8 bytes a pointer, in 64-byte lines) over and back."""
    return v["drain_base_ns"] + 2 * (1 + (8 * v["batch_size"] + 8) / 64) * v["cacheline_transfer_ns"]


def chromium_missing() -> str | None:
    """Why headless Chromium cannot be driven here (the reason to skip), or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (make test installs Debian's chromium as root)"
    try:
        importlib.import_module("playwright.sync_api")
    except ImportError:
        return "playwright is not installed (pip install 'costmodel[test]')"
    return None


def chromium():
    """Yield a launched headless Chromium, closed afterwards (the body of a browser fixture)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def holder_fill_law(v):
    """The page's own batch at the WP fault, derived directly from the batch-fill chain (no model
    function): states (fill, page still held); a small add (rate lambda (1 - p_large_add)) moves
    the fill up, and the add that fills the batch moves it to the LRU; a drain, a drain-all or a
    large add (rate mu + nu + lambda p_large_add) empties it. The page's position is the chain's
    stationary law seen by an add (balance equations; PASTA) or batch_position. Returns
    (R, E[F; held], E[F; not held], stationary mean fill)."""
    B, lam, q = v["batch_size"], v["batch_adds_per_s"], v["p_large_add"]
    small, empty = lam * (1 - q), v["explicit_drains_per_s"] + v["drain_all_per_s"] + lam * q
    H, U = (lambda f: f), (lambda f: B + f)  # state index: held with fill f, not held with fill f
    Q = np.zeros((2 * B, 2 * B))
    for f in range(B):
        for state, up in ((H(f), H(f + 1) if f + 1 < B else U(0)), (U(f), U(f + 1) if f + 1 < B else U(0))):
            Q[state, up] += small
            Q[state, U(0)] += empty
    np.fill_diagonal(Q, 0.0)
    Q -= np.diag(Q.sum(axis=1))
    # the fill law seen by an add: balance of the (not held) fill chain
    # balance pi Qf = 0, sum pi = 1: Qf scaled to unit rates first (the law does not depend on the
    # time unit), else an emptying rate far below the add rate is lost to the solver's cutoff
    Qf = Q[B:, B:] / max(np.abs(Q[B:, B:]).max(), 1e-300)
    A = np.vstack([Qf.T[:-1], np.ones(B)])  # one balance equation is redundant: normalise instead
    pi = np.linalg.solve(A, np.r_[np.zeros(B - 1), 1.0]) if B > 1 else np.ones(1)
    weights = pi if v["position_model"] == "stationary" else np.eye(B)[v["batch_position"]]
    start = np.zeros(2 * B)
    for j, w in enumerate(weights):  # the install: j folios before it, the page makes j + 1
        start[H(j + 1) if j + 1 < B else U(0)] += w
    gap, t = v["gap_model"], v["wp_gap_s"]
    if gap == "fixed_time":
        end = start @ linalg.expm(Q * t)
    elif gap == "exponential_time":  # E[exp(Q T)] for T ~ Exp(mean t): (I - t Q)^-1
        end = np.linalg.solve((np.eye(2 * B) - t * Q).T, start)
    else:  # the WP fault comes with the k-th small add; before each, an emptying event or not
        p_clean = small / (small + empty) if small + empty > 0 else 1.0
        step = np.zeros((2 * B, 2 * B))
        for x in range(2 * B):
            f, held = x % B, x < B
            for prob, (g, still) in ((p_clean, (f, held)), (1 - p_clean, (0, False))):
                step[x, (H if still else U)(g + 1) if g + 1 < B else U(0)] += prob
        end = start @ np.linalg.matrix_power(step, v["adds_between"])
    fills = np.arange(B)
    return end[:B].sum(), end[:B] @ fills, end[B:] @ fills, pi @ fills
