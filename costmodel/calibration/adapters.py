"""From a measurement directory to a parameter set: selecting the probes' rows, the statistic
each recipe takes (means where the set has them), the order of the fits, and the
posterior-predictive check of a calibrated set against the measurements it came from."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import pandas as pd
import sympy as sp

from .. import registry
from ..atomic import refuse_overwrite
from ..bench import read_measurements as bench_reader  # the bench owns its format
from ..bench.catalog import probe_spec
from ..bench.parse import read_probe_file
from ..bench.runner import RAW_DIR, raw_files
from ..bench.summary import summarize, tidy_frame
from ..bench.willitscale import read_tlb_flush2
from ..errors import UserError
from ..model.forward import TARGETS, measurable
from ..paramfile import ParamSet, save
from ..textfmt import format_ns
from .fitting import N_BOOT, SEED, Estimate, FitOutcome, Z95_FIT, assumed
from .recipes import (COLD_PARAMS, fit_cold, CROSS_CPU_PARAMS, DRAIN_PARAMS, LOCK_PARAMS, fit_lock_transfer, fit_cross_cpu, fit_receive, fit_sibling, FAULT_AND_COPY_PARAMS, REMOTE_PARAMS, REMOTE_STATES, SHOOTDOWN_PARAMS, Obs,
                      evaluate_measurable, finite_or_error, fit_batch_size, fit_drain,
                      fit_fault_and_copy, fit_fault_drain, FAULT_DRAIN_PARAMS, fit_remote_drain, fit_shootdown, fit_swap_cache, SWAP_CACHE_PARAMS)

# ---- from a measurement table to the fits --------------------------------------------------

_TRUE = {"1", "true", "yes", "1.0"}
_FALSE = {"0", "false", "no", "0.0"}


def _match(col: pd.Series, want) -> pd.Series:
    text = col.astype(str).str.strip().str.lower()
    if isinstance(want, bool):
        return text.isin(_TRUE if want else _FALSE)
    if isinstance(want, (int, float)):
        return pd.to_numeric(col, errors="coerce") == want
    if isinstance(want, (list, tuple, set)):
        return text.isin({str(w).lower() for w in want})
    return text == str(want).lower()


def select(df: pd.DataFrame, probe: str, **config) -> pd.DataFrame:
    """Rows of ``probe`` whose configuration columns match; a column that is absent matches
    nothing unless its wanted value is None."""
    if "probe" not in df.columns:
        raise UserError("measurement table has no 'probe' column; is this a costmodel bench directory?")
    rows = df[df["probe"].astype(str) == probe]
    for key, want in config.items():
        if want is None:
            continue
        if key not in rows.columns:
            return rows.iloc[0:0]
        rows = rows[_match(rows[key], want)]
    return rows


def _value_column(rows: pd.DataFrame, name: str, what: str) -> np.ndarray:
    if name not in rows.columns:
        raise UserError(f"{what}: column {name!r} is missing from the measurement table")
    return pd.to_numeric(rows[name], errors="coerce").to_numpy(float)


def standard_errors(rows: pd.DataFrame, what: str, value: str = "median_ns") -> np.ndarray:
    """Standard error of each row's summary value: from its 95 % interval where there is one,
    else from p10/p90 and n (normal approximation of the median's error), never below 0.1 % of
    the value (a median reported in timer steps is not infinitely precise)."""
    v = _value_column(rows, value, what)
    se = np.full(v.shape, np.nan)
    if {"ci_low", "ci_high"} <= set(rows.columns):
        lo = pd.to_numeric(rows["ci_low"], errors="coerce").to_numpy(float)
        hi = pd.to_numeric(rows["ci_high"], errors="coerce").to_numpy(float)
        se = (hi - lo) / (2 * Z95_FIT)
    if {"p10", "p90", "n"} <= set(rows.columns):
        p10 = pd.to_numeric(rows["p10"], errors="coerce").to_numpy(float)
        p90 = pd.to_numeric(rows["p90"], errors="coerce").to_numpy(float)
        n = pd.to_numeric(rows["n"], errors="coerce").to_numpy(float)
        alt = 1.2533 * (p90 - p10) / 2.5631 / np.sqrt(np.maximum(n, 1))
        se = np.where(np.isfinite(se) & (se > 0), se, alt)
    if not np.all(np.isfinite(se)):
        raise UserError(f"{what}: no usable spread (ci_low/ci_high or p10/p90 and n) for some rows")
    return np.maximum(se, np.maximum(np.abs(v) * 1e-3, 1e-9))


def _skip_reason(df: pd.DataFrame, probe: str) -> str:
    for col in _SKIP_COLUMNS:
        if col in df.columns:
            r = df[(df["probe"].astype(str) == probe) & df[col].notna()][col].astype(str)
            r = r[r.str.len() > 0]
            if len(r):
                return f" (the probe was skipped: {r.iloc[0]})"
    return ""


_SKIP_COLUMNS = ("skipped_reason",)


def _not_skipped(rows: pd.DataFrame) -> pd.DataFrame:
    """Drop rows that record a skipped configuration (a non-empty reason); a measured row whose
    value is NaN stays, so that the fit reports it."""
    for col in _SKIP_COLUMNS:
        if col in rows.columns:
            reason = rows[col].fillna("").astype(str).str.strip()
            rows = rows[(reason == "") | reason.str.lower().isin(_FALSE | {"nan", "none"})]
    return rows


def _need(df: pd.DataFrame, rows: pd.DataFrame, probe: str, what: str, needed_for: str) -> pd.DataFrame:
    rows = _not_skipped(rows)
    if len(rows) == 0:
        raise UserError(f"probe {probe}: no {what} measurement (needed for {needed_for}){_skip_reason(df, probe)};"
                        f" run `costmodel bench --probe {probe}` or pass --allow-defaults")
    return rows


#: the summary columns of each statistic: value, interval low, interval high
STATISTICS = {"mean": ("mean_ns", "mean_ci_low", "mean_ci_high"), "median": ("median_ns", "ci_low", "ci_high")}


def _statistic_columns(rows: pd.DataFrame, prefer: str) -> str:
    """``prefer`` where the rows carry it (every row a finite value and interval), else median:
    measurement sets written before the summary had means give medians."""
    cols = STATISTICS[prefer]
    if set(cols) <= set(rows.columns):
        vals = rows[list(cols)].apply(pd.to_numeric, errors="coerce")
        if len(vals) and np.isfinite(vals.to_numpy(float)).all():
            return prefer
    return "median"


#: the statistic each recipe takes, and why. The model's expected cost is a mean, so every cost is
#: calibrated from its mean (with a bootstrap interval); sets recorded before the summary had means
#: fall back to medians, and each fit record names what it used.
RECIPE_STATISTIC = {
    "fault_and_copy": ("mean", "the model prices the expected cost of a fault: a mean"),
    "shootdown": ("mean", "the model prices the expected cost of a shootdown: a mean"),
    "drain": ("mean", "the model prices the expected cost of a drain: a mean"),
    "remote_drain": ("mean", "the tail is the cost (waiting for the holder's scheduler): the model prices the mean"),
    "sibling": ("mean", "the model prices the expected cost of a fault: a mean"),
    "shootdown_receive": ("mean", "the model prices the expected time lost per IPI: a mean"),
    "cross_cpu": ("mean", "the model prices the expected cost of a fault: a mean"),
    "cold": ("mean", "the model prices the expected cost of a fault: a mean"),
    "fault_drain": ("mean", "the model prices the expected cost of a drain in a fault: a mean"),
    "lock_transfer": ("mean", "the model prices the expected cost of a drain: a mean"),
    "swap_cache": ("mean", "the model prices the expected cost of a fault (freeing a zram slot has a tail): a mean"),
}


def _obs(df: pd.DataFrame, probe: str, needed_for: str, statistic: str, **config) -> Obs:
    """One measured value: the mean (the model's expected cost is a mean) with its bootstrap
    interval where the set has it, else the median; rows that match are pooled by inverse
    variance."""
    what = " ".join(f"{k}={v}" for k, v in config.items() if k != "measure")
    rows = _need(df, select(df, probe, **config), probe, what, needed_for)
    stat = _statistic_columns(rows, statistic)
    value_col, lo_col, hi_col = STATISTICS[stat]
    v = _value_column(rows, value_col, f"{probe} {what}")
    if stat == "median":
        se = standard_errors(rows, f"{probe} {what}")
    else:
        lo = _value_column(rows, lo_col, f"{probe} {what}")
        hi = _value_column(rows, hi_col, f"{probe} {what}")
        se = np.maximum((hi - lo) / (2 * Z95_FIT), np.maximum(np.abs(v) * 1e-3, 1e-9))
    finite_or_error(f"{probe} {what}", v, se)
    w = 1 / se ** 2
    return Obs(float(np.sum(w * v) / np.sum(w)), float(1 / math.sqrt(np.sum(w))), f"{probe} {what}", stat)


def _from_fault_and_copy(df, provenance, rng, n_boot, known=None) -> FitOutcome:
    need = "fault_entry_ns, reuse_ns, alloc_ns, local_flush_ns, free_ns, copy_bandwidth_gbps"
    stat = RECIPE_STATISTIC["fault_and_copy"][0]
    reuse = _obs(df, "fault_cost", need, stat, op="reuse_after_fork", measure="ns")
    copy = _obs(df, "fault_cost", need, stat, op="copy_child_alive", measure="ns")
    cold = _need(df, select(df, "copy_bandwidth", op="copy_4k", cache_state="cold", measure="ns"), "copy_bandwidth",
                 "op=copy_4k cache_state=cold", "copy_bandwidth_gbps")
    size = 4096.0
    if "size_bytes" in cold.columns:
        sizes = pd.to_numeric(cold["size_bytes"], errors="coerce").dropna().unique()
        if len(sizes) == 1:
            size = float(sizes[0])
    copy4k = _obs(df, "copy_bandwidth", "copy_bandwidth_gbps", stat, op="copy_4k", cache_state="cold", measure="ns")
    cold = {n: float(known[n]) for n in COLD_PARAMS if known and n in known}
    return fit_fault_and_copy(reuse, copy, copy4k, size, rng=rng, n_boot=n_boot, known=cold)


#: fault_cost's operation that times the first reuse fault after a fork alone
COLD_OP = "reuse_first_after_fork"
#: fault_cost's cold reuse that drains the one folio of its CPU's batch in the fault, timed as
#: COLD_OP is (the stack's own faults first), so that the two differ by the drain alone
DRAIN_OP = "reuse_drain_first"


def _from_cold(df, provenance, rng, n_boot, known=None) -> FitOutcome:
    """What a fault that comes alone pays beyond one in a burst: fault_cost's first write after a
    fork (one timed per round) against its rounds of 16 writes."""
    stat = RECIPE_STATISTIC["cold"][0]
    first = _obs(df, "fault_cost", "cold_fault_ns", stat, op=COLD_OP, measure="ns")
    rounds = _obs(df, "fault_cost", "cold_fault_ns", stat, op="reuse_after_fork", measure="ns")
    return fit_cold(first, rounds, rng=rng, n_boot=n_boot)


def _from_fault_drain(df, provenance, rng, n_boot, known=None) -> FitOutcome:
    """``drain_base_ns`` as a fault pays it: fault_cost's cold reuse that drains one folio against
    the same cold reuse without it. A recording that lacks either (made before the probe had
    them) keeps the drain line's intercept (madvise's, a proxy), and the record says why."""
    missing = [op for op in (COLD_OP, DRAIN_OP) if not _has(df, "fault_cost", op)]
    reason = (f"this measurement set has no fault_cost {' or '.join(f'op={op}' for op in missing)} rows"
              f" (recorded before the probe had them; re-run `costmodel bench --probe fault_cost`)"
              if missing else "")
    if reason or not known or "drain_per_folio_ns" not in known:
        reason = reason or "drain_cost's line (drain_per_folio_ns) was not fitted"
        record = {"name": "fault_drain", "parameters": list(FAULT_DRAIN_PARAMS), "n_points": 0, "residuals": [],
                  "method": "not fitted; drain_base_ns kept from the drain line",
                  "note": f"{reason}: drain_base_ns is drain_cost's intercept, madvise's system call included (a"
                          " proxy that prices an in-fault drain high)"}
        return FitOutcome({}, record)
    stat = RECIPE_STATISTIC["fault_drain"][0]
    drained = _obs(df, "fault_cost", "drain_base_ns", stat, op=DRAIN_OP, measure="ns")
    first = _obs(df, "fault_cost", "drain_base_ns", stat, op=COLD_OP, measure="ns")
    return fit_fault_drain(drained, first, per_folio_ns=float(known["drain_per_folio_ns"]), rng=rng, n_boot=n_boot)


def _as_proxy(df: pd.DataFrame, base: Estimate) -> Estimate:
    """drain_cost's intercept as ``drain_base_ns`` where no fault measures the drain, with the
    interval the proxy allows: a fault's drain is at most the intercept (its upper end kept) and at
    least it less all of madvise's time with nothing to move (drain_cost at 0 folios: the system
    call, the walk, an empty drain). The fault_drain fit replaces it where it can."""
    empty = _not_skipped(select(df, "drain_cost", folios=0, measure="ns"))
    col = next((c for c in ("mean_ns", "median_ns") if c in empty.columns and empty[c].notna().any()), None)
    if col is None or base.ci_low is None:
        return base
    madvise = float(pd.to_numeric(empty[col]).mean())
    return Estimate(base.value, base.source,
                    f"{base.note}; as drain_base_ns a proxy (no fault_cost op={DRAIN_OP} in this set): the intercept"
                    f" holds madvise's system call, so its interval reaches down by madvise's time with nothing to"
                    f" move ({format_ns(madvise)}, drain_cost at 0 folios)",
                    max(0.0, float(base.ci_low) - madvise), base.ci_high)


def _from_cross_cpu(df, provenance, rng, n_boot, known=None) -> FitOutcome:
    """What a fault on another CPU than the page's installer adds: fault_cost's reuse and copy,
    each on the installing CPU and on the other."""
    need = "cross_cpu_fault_ns, cross_cpu_copy_ns"
    stat = RECIPE_STATISTIC["cross_cpu"][0]
    obs = {op: _obs(df, "fault_cost", need, stat, op=op, measure="ns")
           for op in ("reuse_after_fork", "reuse_other_cpu", "copy_child_alive", "copy_child_alive_other_cpu")}
    return fit_cross_cpu(obs["reuse_after_fork"], obs["reuse_other_cpu"], obs["copy_child_alive"],
                         obs["copy_child_alive_other_cpu"], rng=rng, n_boot=n_boot)


#: swap_cow's operation that times reuses and copies with and without the swap cache, for calibration
SWAP_FAULT_OP = "swap_fault"


def _from_swap_cache(df, provenance, rng, n_boot, known=None) -> FitOutcome:
    """What the swap cache adds to a reuse (its entry freed) and to a copy (its entry held by a live
    child): swap_cow's faults on pages read back through the swap cache against the same faults on
    pages that stayed in memory, in the same shuffled rounds (op=swap_fault, not the swap_write
    configurations that predict checks)."""
    need = ", ".join(SWAP_CACHE_PARAMS)
    stat = RECIPE_STATISTIC["swap_cache"][0]
    obs = {(sharing, path): _obs(df, "swap_cow", need, stat, op=SWAP_FAULT_OP, sharing=sharing, swap_path=path,
                                 measure="ns")
           for sharing in ("forked", "child_alive") for path in ("readahead", "none")}
    return fit_swap_cache(obs["forked", "readahead"], obs["forked", "none"], obs["child_alive", "readahead"],
                          obs["child_alive", "none"], rng=rng, n_boot=n_boot)


#: the shootdown probe's rows of a sibling's lost time per IPI received
RECEIVE_OP = "ipi_receive"


def _from_receive(df, provenance, rng, n_boot, known=None) -> FitOutcome:
    """What each shootdown IPI costs the CPU that receives it: the shootdown probe's spinning
    siblings, pooled over the target counts."""
    stat = RECIPE_STATISTIC["shootdown_receive"][0]
    lost = _obs(df, "shootdown", "shootdown_receive_ns", stat, op=RECEIVE_OP, siblings="spinning", measure="ns")
    return fit_receive(lost, rng=rng, n_boot=n_boot)


def _has(df, probe: str, op: str) -> bool:
    rows = _not_skipped(select(df, probe, op=op, measure="ns"))
    return len(rows) > 0


def _from_sibling(df, provenance, rng, n_boot, known=None) -> FitOutcome:
    """What a sibling running the mm costs every fault: the reuse fault with a sibling spinning on
    the other CPU against the same fault without (through the model's two expressions)."""
    stat = RECIPE_STATISTIC["sibling"][0]
    plain = _obs(df, "fault_cost", "sibling_fault_ns", stat, op="reuse_after_fork", measure="ns")
    spin = _obs(df, "fault_cost", "sibling_fault_ns", stat, op="reuse_after_fork_spinning", measure="ns")
    return fit_sibling(plain, spin, rng=rng, n_boot=n_boot)


#: the shootdown probe's operation that matches the copy's one-page ptep_clear_flush best
SHOOTDOWN_OP = "mprotect_ro"


def _from_shootdown(df, provenance, rng, n_boot, known=None) -> FitOutcome:
    need = "shootdown_base_ns, shootdown_per_cpu_ns, shootdown_model"
    spin = _need(df, select(df, "shootdown", op=SHOOTDOWN_OP, siblings="spinning", measure="ns"), "shootdown",
                 f"op={SHOOTDOWN_OP} siblings=spinning", need)
    sleep = _need(df, select(df, "shootdown", op=SHOOTDOWN_OP, siblings="asleep", measure="ns"), "shootdown",
                  f"op={SHOOTDOWN_OP} siblings=asleep", need)
    xs, ys, ses = [], [], []
    for t in sorted(set(pd.to_numeric(spin["target_cpus"], errors="coerce").dropna()) &
                    set(pd.to_numeric(sleep["target_cpus"], errors="coerce").dropna())):
        stat = RECIPE_STATISTIC["shootdown"][0]
        a = _obs(df, "shootdown", need, stat, op=SHOOTDOWN_OP, siblings="spinning", target_cpus=t, measure="ns")
        b = _obs(df, "shootdown", need, stat, op=SHOOTDOWN_OP, siblings="asleep", target_cpus=t, measure="ns")
        xs.append(t)
        ys.append(a.value - b.value)
        ses.append(math.hypot(a.se, b.se))
    if not xs:
        raise UserError(f"probe shootdown: no target count measured with siblings both spinning and asleep"
                        f" (needed for {need})")
    stat = RECIPE_STATISTIC["shootdown"][0]
    data = f"shootdown op={SHOOTDOWN_OP}: {stat} with siblings spinning minus asleep, per target count"
    anchor = _in_fault_shootdown(df, known)
    if anchor is not None and 1 in xs:
        # the shootdown inside a copying fault is what the model prices: the mprotect curve gives the
        # shape across target counts, the in-fault measurement its scale at one target
        value, se, label = anchor
        scale = value / ys[xs.index(1)]
        ys = [y * scale for y in ys]
        ses = [math.hypot(e * scale, se) for e in ses]
        data = (f"{label} (the shootdown inside a copying fault) at 1 target; the mprotect curve"
                f" ({SHOOTDOWN_OP}, spinning minus asleep) scaled by {scale:.3g} to it for the shape")
    outcome = fit_shootdown(xs, ys, ses, rng=rng, n_boot=n_boot, data=data)
    if anchor is not None:
        outcome.record["forward"] = ["copy_fault_sibling_ns", "copy_fault_ns", "reuse_fault_sibling_ns"]
    return outcome


def _in_fault_shootdown(df, known) -> tuple[float, float, str] | None:
    """The shootdown to one target inside a copying WP fault, where fault_cost timed the copy with a
    sibling spinning: (copy with sibling - copy alone) - sibling cost, through the model's
    expressions; None where the set lacks those operations or the sibling cost is not known."""
    if not (_has(df, "fault_cost", "copy_child_alive_spinning") and known and "sibling_fault_ns" in known):
        return None
    stat = RECIPE_STATISTIC["shootdown"][0]
    spin = _obs(df, "fault_cost", "shootdown_base_ns", stat, op="copy_child_alive_spinning", measure="ns")
    plain = _obs(df, "fault_cost", "shootdown_base_ns", stat, op="copy_child_alive", measure="ns")
    # in the model, (copy fault with one other CPU) - (copy fault alone) = shootdown(1) + the rest;
    # the rest (the sibling cost) is evaluated at what the sibling recipe measured
    extra = measurable("copy_fault_sibling_ns") - measurable("copy_fault_ns")
    rest = sp.simplify(extra - measurable("shootdown_ns").subs(TARGETS, 1))
    zero = {n: 0.0 for n in registry.NUMERIC}
    value = spin.value - plain.value - float(evaluate_measurable(rest, {**zero, **known}))
    if value <= 0:
        raise UserError(f"fault_cost: the copy with a spinning sibling ({spin.value:.4g} ns) is not dearer than the"
                        f" copy alone ({plain.value:.4g} ns) plus the sibling cost; re-run fault_cost")
    return value, math.hypot(spin.se, plain.se), "fault_cost op=copy_child_alive_spinning minus op=copy_child_alive"


def shootdown_from_will_it_scale(path: str | Path, *, rng: np.random.Generator, n_boot: int = N_BOOT) -> FitOutcome:
    """Shootdown cost from a will-it-scale ``tlb_flush2`` run (runtest.py's CSV, threads mode).

    Each op writes one page and MADV_DONTNEEDs it: one single-page flush on every CPU running a
    sibling thread. With n threads the CPU time per op is T(n) = n / (ops/s), and T(n) - T(1) is
    the shootdown to n - 1 targets plus whatever contention grows with the thread count, so the
    fit is an upper bound of the shootdown cost (said in the file). Gives as many target counts
    as the run had task counts, so the shape can be chosen.
    """
    df = read_tlb_flush2(path)
    threads = df[(df["mode"] == "threads") & (df["ops_per_s"] > 0)].sort_values("tasks")
    if (threads["tasks"] == 1).sum() != 1 or len(threads) < 2:
        raise UserError(f"{path}: needs the threads run at 1 task and at least one more task count")
    if (threads["tasks"] >= 2).sum() < 3:
        raise UserError(f"{path}: {int((threads['tasks'] >= 2).sum())} thread count(s) above 1; a sweep without"
                        " per-point errors needs at least 3 (target counts) to give the shootdown an interval and a"
                        " shape; run ./runtest.py tlb_flush2 with more thread counts")
    n = threads["tasks"].to_numpy(float)
    t_ns = n / threads["ops_per_s"].to_numpy(float) * 1e9
    base = float(t_ns[n == 1][0])
    keep = n >= 2
    data = (f"will-it-scale {Path(path).name}: per-op CPU time at n threads minus at 1, n-1 targets"
            " (contention included: an upper bound)")
    return fit_shootdown(n[keep] - 1, t_ns[keep] - base, None, rng=rng, n_boot=n_boot, data=data)


#: candidate names of the drain probe's batch-fill column
_FOLIO_COLUMNS = ("folios", "batch_fill", "m", "folios_in_batch")


def _from_drain(df, provenance, rng, n_boot, known=None) -> FitOutcome:
    need = "drain_base_ns, drain_per_folio_ns"
    rows = _need(df, select(df, "drain_cost", measure="ns"), "drain_cost", "batch-fill", need)
    col = next((c for c in _FOLIO_COLUMNS if c in rows.columns and rows[c].notna().any()), None)
    if col is None:
        raise UserError(f"probe drain_cost: no batch-fill column ({', '.join(_FOLIO_COLUMNS)}) in the measurements")
    rows = rows[pd.to_numeric(rows[col], errors="coerce").notna()]
    # an empty batch takes the early exit of lru_add_drain() (no folio to move: the lruvec lock is
    # never taken), so it is not on the line; the drains the model prices move at least one folio
    # where it matters (the page's own batch), and the README names the approximation
    rows = rows[pd.to_numeric(rows[col]) >= 1]
    x = pd.to_numeric(rows[col]).to_numpy(float)
    stat = _statistic_columns(rows, RECIPE_STATISTIC["drain"][0])
    value_col, lo_col, hi_col = STATISTICS[stat]
    y = _value_column(rows, value_col, "drain_cost")
    if stat == "median":
        se = standard_errors(rows, "drain_cost")
    else:
        se = (_value_column(rows, hi_col, "drain_cost") - _value_column(rows, lo_col, "drain_cost")) / (2 * Z95_FIT)
        se = np.maximum(se, np.maximum(np.abs(y) * 1e-3, 1e-9))
    op = ""
    if "op" in rows.columns and rows["op"].notna().any():
        op = f" op={'/'.join(sorted(rows['op'].dropna().astype(str).unique()))}"
    outcome = fit_drain(x, y, se, rng=rng, n_boot=n_boot,
                        data=f"drain_cost{op}: {stat} ns against {col} >= 1 (the slope is the drain's; the"
                             " intercept holds the system call around it, and is drain_base_ns only where"
                             " fault_cost lacks op=reuse_drain_first: see the fault_drain fit; an empty batch"
                             " skips the move and is left out)")
    outcome.record["statistic"] = stat
    outcome.record["forward"] = ["local_drain_ns"]
    outcome.estimates["drain_base_ns"] = _as_proxy(df, outcome.estimates["drain_base_ns"])
    return outcome


def _from_batch(df, provenance, rng, n_boot, known=None) -> FitOutcome:
    rows = _need(df, select(df, "unnecessary_copy", op="wp_write", measure="copied", same_cpu=False), "unnecessary_copy",
                 "op=wp_write cross-CPU (same_cpu=0)", "batch_size")
    if "huge" in rows.columns:
        rows = rows[_match(rows["huge"], False)]
    if "pages" in rows.columns and (pd.to_numeric(rows["pages"], errors="coerce") == 1).any():
        rows = rows[pd.to_numeric(rows["pages"], errors="coerce") == 1]
    rows = _need(df, rows, "unnecessary_copy", "cross-CPU small-page single-target", "batch_size")
    k = _value_column(rows, "adds_between", "unnecessary_copy")
    n = _value_column(rows, "n", "unnecessary_copy")
    if "successes" in rows.columns:
        copies = _value_column(rows, "successes", "unnecessary_copy")
    else:
        copies = np.round(_value_column(rows, "fraction", "unnecessary_copy") * n)
    drained = _match(rows["drained_first"], True).to_numpy() if "drained_first" in rows.columns else np.zeros(k.size, bool)
    return fit_batch_size(k, copies, n, drained, rng=rng, n_boot=n_boot,
                          data="unnecessary_copy, cross-CPU writes of one small page")


def _from_remote_drain(df, provenance, rng, n_boot, known=None) -> FitOutcome:
    need = ", ".join(REMOTE_PARAMS)
    stat = RECIPE_STATISTIC["remote_drain"][0]
    base = _obs(df, "remote_drain", need, stat, op="fadvise_base", remote_state="idle", measure="ns")
    hole = _obs(df, "remote_drain", need, stat, op="fadvise_hole", remote_state="idle", measure="ns")
    seals = {}
    for state in REMOTE_STATES:
        rows = _not_skipped(select(df, "remote_drain", op="seal_remote", remote_state=state, measure="ns"))
        if not len(rows):
            continue
        seals[state] = (_obs(df, "remote_drain", need, stat, op="seal_remote", remote_state=state, measure="ns"),
                        _obs(df, "remote_drain", need, stat, op="seal_local", remote_state=state, measure="ns"))
    if "idle" not in seals:
        raise UserError(f"probe remote_drain: no seal_remote measurement with the other CPU idle (needed for {need});"
                        " run `costmodel bench --probe remote_drain` or pass --allow-defaults")
    return fit_remote_drain(base, hole, seals, rng=rng, n_boot=n_boot)


def _from_lock_transfer(df, provenance, rng, n_boot, known=None) -> FitOutcome:
    """Another CPU's lines: the lock handed between the CPUs against the same lock on one, and the
    drain of the fullest batch measured (batch_size - 1 folios) with the folios' lines remote
    against local; the local per-folio cost and the batch size from the fits before."""
    need = ", ".join(LOCK_PARAMS)
    stat = RECIPE_STATISTIC["lock_transfer"][0]
    known = dict(known or {})
    if "batch_size" not in known or "drain_per_folio_ns" not in known:
        raise UserError(f"probe lock_transfer: needs the batch size and the local drain fitted first (for {need})")
    full = int(known["batch_size"]) - 1
    handoff = _obs(df, "lock_transfer", need, stat, op="lock_handoff", measure="ns")
    local = _obs(df, "lock_transfer", need, stat, op="lock_local", measure="ns")
    remote_full = _obs(df, "lock_transfer", need, stat, op="drain_remote_refs", folios=full, measure="ns")
    local_full = _obs(df, "lock_transfer", need, stat, op="drain_local_refs", folios=full, measure="ns")
    return fit_lock_transfer(handoff, local, remote_full, local_full, known, rng=rng, n_boot=n_boot)


#: (fit name, parameters it sets, function) in the order they run; each has its own random stream
FIT_GROUPS: list[tuple[str, tuple[str, ...], Callable]] = [
    ("cold", COLD_PARAMS, _from_cold),
    ("fault_and_copy", FAULT_AND_COPY_PARAMS, _from_fault_and_copy),
    ("sibling", ("sibling_fault_ns",), _from_sibling),
    ("cross_cpu", CROSS_CPU_PARAMS, _from_cross_cpu),
    ("shootdown", ("shootdown_model", *SHOOTDOWN_PARAMS), _from_shootdown),
    ("drain", DRAIN_PARAMS, _from_drain),
    ("batch_size", ("batch_size",), _from_batch),
    ("remote_drain", REMOTE_PARAMS, _from_remote_drain),
    ("shootdown_receive", ("shootdown_receive_ns",), _from_receive),
    ("lock_transfer", LOCK_PARAMS, _from_lock_transfer),
    ("swap_cache", SWAP_CACHE_PARAMS, _from_swap_cache),
    # last, so that adding it left every other group's bootstrap seed (its index) as it was
    ("fault_drain", FAULT_DRAIN_PARAMS, _from_fault_drain),
]


#: fit groups added after the first measurement sets, by the probe they need: a set without any
#: row of that probe keeps their parameters assumed instead of failing
GROUP_PROBES = {"remote_drain": "remote_drain", "lock_transfer": "lock_transfer"}
#: fit groups that need operations a probe gained later: a set without them keeps the parameters
#: assumed (said so) instead of failing
GROUP_OPS = {"sibling": ("fault_cost", "reuse_after_fork_spinning"), "shootdown_receive": ("shootdown", RECEIVE_OP),
             "cross_cpu": ("fault_cost", "copy_child_alive_other_cpu"), "cold": ("fault_cost", COLD_OP),
             "swap_cache": ("swap_cow", SWAP_FAULT_OP)}


def calibrate_frame(df: pd.DataFrame, provenance: Mapping | None = None, *, name: str,
                    description: str | None = None, allow_defaults: bool = False,
                    n_boot: int = N_BOOT, seed: int = SEED, will_it_scale: str | Path | None = None) -> ParamSet:
    """Every fit of :data:`FIT_GROUPS` on a tidy measurement table, assembled into a checked
    parameter set; machine parameters no probe measures keep their registry defaults (assumed).
    With ``will_it_scale`` (a tlb_flush2 runtest.py CSV) the shootdown comes from that run."""
    provenance = dict(provenance or {})
    estimates: dict[str, Estimate] = {}
    records: list[dict] = []
    for index, (group, params, func) in enumerate(FIT_GROUPS):
        rng = np.random.default_rng([seed, index])
        if group == "shootdown" and will_it_scale is not None:
            func = lambda df, provenance, rng, n_boot, known=None: shootdown_from_will_it_scale(  # noqa: E731
                will_it_scale, rng=rng, n_boot=n_boot)
            provenance["will_it_scale"] = Path(will_it_scale).name
        probe = GROUP_PROBES.get(group)
        predates = probe is not None and "probe" in df.columns and not (df["probe"].astype(str) == probe).any()
        if group in GROUP_OPS and "probe" in df.columns and not _has(df, *GROUP_OPS[group]):
            predates, probe = True, f"{GROUP_OPS[group][0]} op={GROUP_OPS[group][1]}"
        try:
            outcome = func(df, provenance, rng, n_boot, known={n: e.value for n, e in estimates.items()})
        except UserError as exc:
            if predates:  # a probe not in the set: its parameters stay assumed, said so
                reason = _missing_probe_reason(probe, provenance)
                for p in params:
                    estimates[p] = assumed(p, f"not fitted: {reason}")
                records.append({"name": group, "method": "not fitted; registry defaults kept",
                                "parameters": list(params), "n_points": 0, "residuals": [], "note": reason})
                continue
            if not allow_defaults:
                raise
            reason = str(exc).split("; run `costmodel bench")[0]
            for p in params:
                estimates[p] = assumed(p, f"not fitted: {reason}")
            records.append({"name": group, "method": "not fitted; registry defaults kept", "parameters": list(params),
                            "n_points": 0, "residuals": [], "note": reason})
            continue
        estimates.update(outcome.estimates)
        if group in RECIPE_STATISTIC:
            outcome.record.setdefault("statistic", RECIPE_STATISTIC[group][0])
            outcome.record["statistic_basis"] = RECIPE_STATISTIC[group][1]
        records.append(outcome.record)
    page = provenance.get("page_size_bytes")
    if isinstance(page, (int, float)) and not isinstance(page, bool) and page > 0:
        estimates["page_bytes"] = Estimate(int(page), "measured", "base page size reported by the machine (provenance)")
    for p in registry.PARAMS:
        if registry.PARAMS[p].kind == registry.MACHINE and p not in estimates:
            estimates[p] = assumed(p, "no probe measures this")
    parameters = {p: e.entry(p) for p, e in estimates.items()}
    ps = ParamSet(name=name, description=description or f"calibrated from data/measurements/{name}",
                  parameters=parameters, fit=records, provenance=_jsonable(provenance))
    return ps


def _jsonable(obj):
    """Provenance as plain JSON (numpy scalars to Python numbers; non-finite to None)."""
    return json.loads(json.dumps(obj, default=lambda o: o.item() if hasattr(o, "item") else str(o)),
                      parse_constant=lambda c: None)


def read_measurements(directory: str | Path) -> tuple[pd.DataFrame, dict]:
    """The tidy table and provenance of a ``costmodel bench`` output directory."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(f"{directory}: no such measurement directory")
    return bench_reader(directory)


def _missing_probe_reason(probe: str, provenance: Mapping) -> str:
    """Why a set lacks ``probe``: not run (the bench that recorded it knew the probe: its
    ``catalog``), or recorded before the probe existed (a set without a catalog, or one whose
    catalog lacks it)."""
    name = probe.split()[0]
    ran = name in (provenance.get("probes") or {})  # ran, but without this operation: an older probe
    if not ran and name in (provenance.get("catalog") or []):
        return (f"this measurement set has no {probe} probe (not run in this recording; add it with "
                f"`costmodel bench --resume --probe {name} --out DIR`)")
    return f"this measurement set has no {probe} probe (recorded before it existed)"


def _shown_path(directory: Path) -> str:
    """Where a measurement set was, as a reader finds it again: relative to the working
    directory when it lies below it (data/measurements/<id> in a checkout), else in full."""
    full = directory.resolve()
    try:
        return str(full.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(full)


def calibrate(directory: str | Path, *, allow_defaults: bool = False, name: str | None = None,
              n_boot: int = N_BOOT, seed: int = SEED, will_it_scale: str | Path | None = None) -> ParamSet:
    """Fit a parameter set from a measurement directory written by ``costmodel bench``: the rounds
    pooled (every sample), and where the recording has several rounds (``bench --repeat``) each
    round calibrated on its own too, kept as the fit record ``rounds`` (the machine parameters of
    every round: how far the host moved between them). The record ``model_check`` holds the
    model's own error on whole faults the fits did not use."""
    directory = Path(directory)
    df, provenance = read_measurements(directory)
    name = name or directory.resolve().name
    ps = calibrate_frame(df, provenance, name=name, description=f"calibrated from {_shown_path(directory)}",
                         allow_defaults=allow_defaults, n_boot=n_boot, seed=seed, will_it_scale=will_it_scale)
    rounds = round_calibrations(directory, provenance, allow_defaults=allow_defaults, seed=seed,
                                will_it_scale=will_it_scale)
    if rounds:
        ps.fit.append(rounds)
    check = model_check(df, ps)
    if check:
        ps.fit.append(check)
    return ps


#: bootstrap draws of each round's own calibration (only its values are kept)
ROUND_BOOT = 20


def round_calibrations(directory: Path, provenance: Mapping, *, allow_defaults: bool, seed: int,
                       will_it_scale=None) -> dict | None:
    """Each round of a ``--repeat`` recording summarised and calibrated on its own: the machine
    parameters of every round and their standard deviation between rounds, as a fit record
    (None for a recording of one round)."""
    files = raw_files(directory / RAW_DIR)
    n = max((len(v) for v in files.values()), default=0)
    if n < 2:
        return None
    values: dict[str, list[float]] = {}
    for k in range(n):
        parts = []
        for probe, paths in files.items():
            if len(paths) != n:
                continue
            try:
                spec = probe_spec(probe)
            except UserError:
                continue
            if (provenance.get("probes", {}).get(probe, {}) or {}).get("status") == "failed":
                continue
            parts.append(summarize(spec, read_probe_file(paths[k], expected=probe)))
        frame = tidy_frame(pd.concat([p for p in parts if len(p)], ignore_index=True))
        try:
            ps = calibrate_frame(frame, provenance, name=f"round{k + 1}", allow_defaults=True, n_boot=ROUND_BOOT,
                                 seed=seed, will_it_scale=will_it_scale)
        except UserError:
            continue
        for p, e in ps.parameters.items():
            if p in registry.NUMERIC and registry.NUMERIC[p].kind == registry.MACHINE and e.source == "measured":
                values.setdefault(p, []).append(float(e.value))
    values = {p: v for p, v in values.items() if len(v) == n}
    if not values:
        return None
    sd = {p: _r_sd(v) for p, v in values.items()}
    return {"name": "rounds", "parameters": sorted(values), "n_points": 0, "residuals": [],
            "method": f"each of the recording's {n} rounds (bench --repeat {n}, the probes interleaved) summarised "
                      f"and calibrated on its own ({ROUND_BOOT} bootstrap draws each; values only)",
            "rounds": n, "values_by_round": {p: [float(f"{x:.5g}") for x in v] for p, v in values.items()},
            "round_sd": sd,
            "note": "the spread between rounds is the host's drift over the recording; predict widens its "
                    "intervals by it"}


def _r_sd(v) -> float:
    return float(f"{float(np.std(np.asarray(v, float), ddof=1)):.4g}")


#: fault_cost operations the fits do not use, and the measured quantity of the model each is:
#: whole faults that come alone (first after a fork), like a workload's. reuse_drain_local is the
#: fault_drain fit's reuse_drain_first without the stack's faults first: what a fault's context
#: does that the model does not see
MODEL_CHECKS = {
    "copy_first_child_alive": "copy_fault_cold_ns",
    "copy_first_child_alive_spinning": "copy_fault_sibling_cold_ns",
    "reuse_drain_local": "reuse_drain_cold_ns",
}


def model_check(df: pd.DataFrame, ps: ParamSet) -> dict | None:
    """The model's own error on whole WP faults that no fit used (:data:`MODEL_CHECKS`): each
    measured mean against the model at the set, and their root-mean-square relative error, the
    model's error on configurations like a workload's (``predict`` widens by it)."""
    values = ps.point()
    rows = []
    for op, quantity in MODEL_CHECKS.items():
        sel = _not_skipped(select(df, "fault_cost", op=op, measure="ns"))
        if not len(sel):
            continue
        obs = _obs(df, "fault_cost", "model check", "mean", op=op, measure="ns")
        pred = float(evaluate_measurable(measurable(quantity, values["shootdown_model"]), values))
        rows.append({"measurement": obs.label, "statistic": obs.statistic, "observed_ns": round(obs.value, 1),
                     "se_ns": round(obs.se, 2), "predicted_ns": round(pred, 1),
                     "relative_error": round(pred / obs.value - 1, 4), "quantity": quantity})
    if not rows:
        return None
    rel = float(np.sqrt(np.mean([r["relative_error"] ** 2 for r in rows])))
    return {"name": "model_check", "parameters": [], "n_points": 0, "residuals": rows,
            "method": "whole faults no fit used, against the model at this set (held out)",
            "relative_error_rms": round(rel, 4),
            "note": "the model's own error on faults like a workload's (each the first after a fork); "
                    "predict widens its intervals by this share of the prediction"}


def calibrate_to_file(directory: str | Path, out: str | Path, *, force: bool = False,
                      allow_defaults: bool = False, will_it_scale: str | Path | None = None) -> ParamSet:
    """``costmodel calibrate``: refuse an existing output before any work, fit, write atomically."""
    refuse_overwrite(Path(out), force)
    ps = calibrate(directory, allow_defaults=allow_defaults, will_it_scale=will_it_scale)
    save(ps, out, force=force)
    return ps
