"""The model's workload parameters from a trace, each with a 95% interval.

Rates are counts over the recording's duration with exact Poisson intervals; shares of WP faults
are Wilson intervals; means (the gap, the adds in it, the CPUs running the mm) have normal
intervals of the mean. The population is the WP faults on pages whose anonymous install the trace
saw (the model's pages); the rest (zero page, file pages, pages from before the trace) are counted
apart. Per-CPU rates belong to the CPU that installed the page: each WP fault is evaluated with
its installing CPU's rates (see :mod:`costmodel.trace.predict`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as _sps

from .. import registry, stats
from ..evaluate import residency_fn
from .count import KIND_ANON
from .dataset import Trace

#: parameters the trace does not show, and the value used
ASSUMED = {
    "p_exclusive": (0.0, "a page still marked exclusive takes no WP fault on this kernel after mprotect or "
                         "fork; the WP faults traced are on pages that lost the marker"),
}


def poisson_rate(k: int, duration_s: float) -> dict:
    lo = 0.0 if k == 0 else _sps.chi2.ppf(0.025, 2 * k) / 2
    hi = _sps.chi2.ppf(0.975, 2 * k + 2) / 2
    return {"value": k / duration_s, "low": lo / duration_s, "high": hi / duration_s, "count": int(k)}


def share(k: int, n: int) -> dict:
    if n == 0:
        return {"value": math.nan, "low": math.nan, "high": math.nan, "n": 0}
    lo, hi = stats.wilson_interval(k, n)
    return {"value": k / n, "low": lo, "high": hi, "n": int(n)}


def mean_of(x) -> dict:
    x = np.asarray(x, dtype=float)
    if len(x) == 0:
        return {"value": math.nan, "low": math.nan, "high": math.nan, "n": 0}
    m = float(np.mean(x))
    half = stats.Z95 * float(np.std(x, ddof=1)) / math.sqrt(len(x)) if len(x) > 1 else 0.0
    return {"value": m, "low": m - half, "high": m + half, "n": int(len(x))}


def model_faults(trace: Trace) -> pd.DataFrame:
    """The WP faults the model describes: on pages whose anonymous install the trace saw; with
    ``cold`` (:func:`cold_faults`, judged among all the task's WP faults) where the table says who
    faulted where."""
    wp = trace.wp
    keep = ((wp["page"] == KIND_ANON) & (wp["gap_ns"] >= 0)).to_numpy()
    pop = wp[keep].reset_index(drop=True)
    if "pid" in wp and "cpu" in wp:
        pop["cold"] = cold_faults(wp)[keep]
    return pop


#: what ends a page's wait in its batch other than filling, by the model's rate it measures
RESIDENCY_CAUSES = {"local_drain": "explicit_drains_per_s", "drain_all": "drain_all_per_s", "large_add": "large_adds_per_s"}
#: bootstrap resamples of the batches for the residency rates' intervals
RESIDENCY_BOOT = 400


def residency_windows(trace: Trace, pop: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per model WP fault: how long its page waited in its installing CPU's batch and what ended the
    wait. The wait runs from the install to the first move of that CPU's batch after it (any
    cause: the page left with it) or to the WP fault, whichever comes first; a move at or after
    the fault's own time (its own in-fault drain) does not end the wait early. Columns:
    ``cpu``, ``residency_ns``, ``ended_by`` (a move's cause, or ``"fault"``), ``adds_in_wait`` (the
    adds that joined the batch behind the page while it waited: the adds in the gap when the fault
    ended the wait, else the folios the ending move took less the page and the ``batch_position``
    ahead of it; NaN where the position is unknown) and ``batch`` (which batch generation of that
    CPU the page was in: pages of one batch share the move that ends it)."""
    pop = model_faults(trace) if pop is None else pop
    n = len(pop)
    out = pd.DataFrame({"cpu": pop["install_cpu"].to_numpy(int), "residency_ns": pop["gap_ns"].to_numpy(np.int64),
                        "ended_by": np.full(n, "fault", dtype=object), "batch": np.full(n, -1, np.int64),
                        "adds_in_wait": np.where(pop["adds_in_gap"].to_numpy() >= 0,
                                                 pop["adds_in_gap"].to_numpy(float), np.nan)})
    pos = pop["batch_position"].to_numpy(float) if "batch_position" in pop else np.full(n, -1.0)
    mv = trace.moves
    if not n or not len(mv):
        return out
    tf = pop["t_ns"].to_numpy(np.int64)
    ti = tf - pop["gap_ns"].to_numpy(np.int64)
    for c, g in mv.sort_values("t_ns").groupby("cpu"):
        sel = np.flatnonzero(out["cpu"].to_numpy() == int(c))
        if not len(sel):
            continue
        tm = g["t_ns"].to_numpy(np.int64)
        cause = g["cause"].to_numpy(object)
        folios = g["folios"].to_numpy(float)
        j = np.searchsorted(tm, ti[sel], side="right")     # the first move after the install
        has = j < len(tm)
        jj = np.minimum(j, len(tm) - 1)
        moved = has & (tm[jj] < tf[sel])
        res = np.where(moved, tm[jj] - ti[sel], tf[sel] - ti[sel])
        out.loc[sel, "residency_ns"] = res
        out.loc[sel[moved], "ended_by"] = cause[jj[moved]]
        behind = folios[jj[moved]] - 1 - pos[sel[moved]]
        out.loc[sel[moved], "adds_in_wait"] = np.where(pos[sel[moved]] >= 0, np.maximum(behind, 0), np.nan)
        out.loc[sel, "batch"] = int(c) * (len(mv) + 1) + j
    return out


def _ratio_interval(events: np.ndarray, exposure: np.ndarray, clusters: np.ndarray, seed: int = 1) -> tuple:
    """Events over exposure (the rate of a hazard with censoring), with a 95% interval that
    resamples whole clusters (a drain ends the wait of every page in its batch at once, so the
    pages of one batch are one observation, not many)."""
    total = float(exposure.sum())
    if total <= 0:
        return math.nan, math.nan, math.nan
    value = float(events.sum()) / total
    _, cl = np.unique(clusters, return_inverse=True)
    e = np.bincount(cl, weights=events)
    x = np.bincount(cl, weights=exposure)
    m = len(e)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, m, size=(RESIDENCY_BOOT, m))
    w = np.stack([np.bincount(p, minlength=m) for p in pick])
    boot = (w @ e) / np.maximum(w @ x, 1e-300)
    lo, hi = np.quantile(boot, [0.025, 0.975])
    if e.sum() == 0:   # no event: the exact Poisson upper end over the exposure
        hi = _sps.chi2.ppf(0.975, 2) / 2 / total
    return value, float(lo), float(hi)


def residency_rates(trace: Trace, pop: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per installing CPU: adds, local drains, drain-alls and large adds per second of the time a
    model page waited in that CPU's batch (the model's ``batch_adds_per_s``,
    ``explicit_drains_per_s``, ``drain_all_per_s`` and the large-add rate: the rates at which the
    holding CPU's batch takes adds and is moved while the page waits), with cluster-bootstrap
    intervals; and the waits themselves."""
    w = residency_windows(trace, pop)
    rows = []
    for c, g in w.groupby("cpu"):
        exp_s = g["residency_ns"].to_numpy(float) / 1e9
        row = {"cpu": int(c), "residency_s": float(exp_s.sum()), "waits": int(len(g))}
        known = ~np.isnan(g["adds_in_wait"].to_numpy(float))
        v, lo, hi = _ratio_interval(g["adds_in_wait"].to_numpy(float)[known], exp_s[known], g["batch"].to_numpy()[known])
        row.update({"batch_adds_per_s": v, "batch_adds_per_s_low": lo, "batch_adds_per_s_high": hi})
        for cause, name in RESIDENCY_CAUSES.items():
            ev_ = (g["ended_by"].to_numpy() == cause).astype(float)
            v, lo, hi = _ratio_interval(ev_, exp_s, g["batch"].to_numpy())
            row.update({name: v, f"{name}_low": lo, f"{name}_high": hi, f"waits_ended_by_{cause}": int(ev_.sum())})
        row["waits_ended_by_fill"] = int((g["ended_by"] == "fill").sum())
        rows.append(row)
    return pd.DataFrame(rows)


def per_cpu_rates(trace: Trace, pop: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per CPU: the model's batch rates with intervals, and the same per second of wall time.

    ``batch_adds_per_s``, ``explicit_drains_per_s`` and ``drain_all_per_s`` are the model's: per
    second of the time the model's pages waited in that CPU's batch (:func:`residency_rates`);
    ``p_large_add`` is the large adds per second of waiting over the adds per second of waiting, so
    that ``batch_adds_per_s * p_large_add`` is the large-add rate while a page waits. The same four
    over the whole recording are kept as ``*_wall`` (the CPU's adds, moves and large adds per
    second of wall time; for a CPU that installed no model page they stand in)."""
    d = trace.duration_s
    rows = []
    for cpu, c in sorted(trace.meta.get("cpus", {}).items(), key=lambda kv: int(kv[0])):
        row = {"cpu": int(cpu), "adds": c["adds"], "local_drains": c["moves_local_drain"], "fills": c["moves_fill"]}
        for name, k in (("batch_adds_per_s", c["adds"]), ("explicit_drains_per_s", c["moves_local_drain"]),
                        ("drain_all_per_s", c["moves_drain_all"])):
            r = poisson_rate(k, d)
            row.update({f"{name}_wall": r["value"], f"{name}_wall_low": r["low"], f"{name}_wall_high": r["high"]})
        large = share(c["large_adds"], c["adds"]) if c["adds"] else {"value": 0.0, "low": 0.0, "high": 1.0, "n": 0}
        row.update({"p_large_add_wall": large["value"], "p_large_add_wall_low": large["low"],
                    "p_large_add_wall_high": large["high"]})
        rows.append(row)
    out = pd.DataFrame(rows)
    if not len(out):
        return out
    res = residency_rates(trace, pop)
    res = res.set_index("cpu").reindex(out["cpu"]).reset_index(drop=True) if len(res) else pd.DataFrame(index=out.index)

    def col(name: str) -> np.ndarray:
        return res[name].to_numpy(float) if name in res else np.full(len(out), np.nan)

    for name in ("batch_adds_per_s", "explicit_drains_per_s", "drain_all_per_s"):
        for sfx in ("", "_low", "_high"):
            r = col(f"{name}{sfx}")
            out[f"{name}{sfx}"] = np.where(np.isnan(r), out[f"{name}_wall{sfx}"], r)
    lam = out["batch_adds_per_s"].to_numpy(float)
    for sfx in ("", "_low", "_high"):
        with np.errstate(all="ignore"):
            q = np.clip(col(f"large_adds_per_s{sfx}") / np.where(lam > 0, lam, np.nan), 0.0, 1.0)
        out[f"p_large_add{sfx}"] = np.where(np.isnan(q), out[f"p_large_add_wall{sfx}"], q)
    for name in ("residency_s", "waits"):
        out[name] = np.nan_to_num(col(name))
    return out


def cold_faults(wp: pd.DataFrame) -> np.ndarray:
    """Per WP fault of the table: whether it is cold in the registry's sense (``p_cold_fault``):
    the task's first WP fault in the trace (a task created by fork or clone, or one that was not
    faulting before), or its first on another CPU than its previous WP fault (it moved). The
    tables do not say when a parent forked, so a parent's first fault after its fork is not
    marked: a lower bound, by at most one fault per fork (:func:`derive` gives the upper end)."""
    if not len(wp):
        return np.zeros(0, dtype=bool)
    order = np.lexsort((wp["t_ns"].to_numpy(), wp["pid"].to_numpy()))
    pid = wp["pid"].to_numpy()[order]
    cpu = wp["cpu"].to_numpy()[order]
    first = np.append(True, pid[1:] != pid[:-1])
    moved = np.append(False, (pid[1:] == pid[:-1]) & (cpu[1:] != cpu[:-1]))
    out = np.zeros(len(wp), dtype=bool)
    out[order] = first | moved
    return out


def derive(trace: Trace) -> dict:
    """Every derived parameter as ``{value, low, high}`` (plus a note where one is needed)."""
    wp = trace.wp
    pop = model_faults(trace)
    d = trace.duration_s
    n = len(pop)
    cpus = per_cpu_rates(trace)
    out: dict[str, dict] = {}
    out["wp_faults_per_s"] = poisson_rate(len(wp), d)
    out["wp_faults_per_s"]["note"] = "every WP fault of the traced tree"
    out["model_wp_faults_per_s"] = poisson_rate(n, d)
    out["model_wp_faults_per_s"]["note"] = "WP faults on pages whose anonymous install was traced (the model's pages)"
    out["p_model_pages"] = share(n, len(wp))
    out["p_same_cpu"] = share(int(pop["same_cpu"].sum()), n)
    out["p_other_ref"] = share(int(pop["live_sharer"].astype(bool).sum()), n)
    out["p_other_ref"]["note"] = "WP faults whose frame another live address space (a forked relative) still maps"
    out["p_large_folio"] = share(int((pop["order"] > 0).sum()), n)
    out["remote_cpus"] = mean_of(pop["remote_cpus"])
    out["remote_cpus"]["note"] = "other CPUs running a task of the process at the WP fault (sched_switch)"
    gap_s = pop["gap_ns"].to_numpy(float) / 1e9
    out["wp_gap_s"] = mean_of(gap_s)
    if n:
        q = np.quantile(gap_s, [0.1, 0.5, 0.9])
        out["wp_gap_s"].update({"median": float(q[1]), "p10": float(q[0]), "p90": float(q[2]),
                                "note": "install to WP fault; a distribution, not exponential: the prediction "
                                        "evaluates the model at every measured gap"})
    adds = pop.loc[pop["adds_in_gap"] >= 0, "adds_in_gap"]
    out["adds_between"] = mean_of(adds)
    if len(adds):
        out["adds_between"]["median"] = float(np.median(adds))
        out["adds_between"]["note"] = "adds to the installing CPU's batch between install and WP fault"
    # the rates each WP fault sees: its installing CPU's, averaged over the model's faults
    if n and len(cpus):
        by = cpus.set_index("cpu")
        inst = pop["install_cpu"].to_numpy()
        notes = {"batch_adds_per_s": "per second a model page waited in its batch (the model's rate)",
                 "explicit_drains_per_s": "per second a model page waited in its batch (the model's rate)",
                 "drain_all_per_s": "per second a model page waited in its batch (the model's rate)",
                 "p_large_add": "large adds over adds, both per second a model page waited",
                 "batch_adds_per_s_wall": "per second of wall time (not the model's rate; for comparison)",
                 "explicit_drains_per_s_wall": "per second of wall time (not the model's rate; for comparison)",
                 "drain_all_per_s_wall": "per second of wall time (not the model's rate; for comparison)",
                 "p_large_add_wall": "share of all adds (not the model's rate; for comparison)"}
        for name, note in notes.items():
            col = by[name].reindex(inst).to_numpy(float)
            lo = by[f"{name}_low"].reindex(inst).to_numpy(float)
            hi = by[f"{name}_high"].reindex(inst).to_numpy(float)
            out[name] = {"value": float(np.nanmean(col)), "low": float(np.nanmean(lo)), "high": float(np.nanmean(hi)),
                         "note": f"{note}; the installing CPU's, averaged over the model's WP faults"}
        for row in cpus.itertuples():
            for name in ("batch_adds_per_s", "batch_adds_per_s_wall", "explicit_drains_per_s", "explicit_drains_per_s_wall",
                         "drain_all_per_s", "drain_all_per_s_wall"):
                out[f"{name}.cpu{row.cpu}"] = {"value": getattr(row, name), "low": getattr(row, f"{name}_low"),
                                               "high": getattr(row, f"{name}_high")}
            if row.waits:
                out[f"residency_s.cpu{row.cpu}"] = {"value": row.residency_s, "low": None, "high": None,
                                                    "note": f"total wait of {int(row.waits)} model pages in the batch"}
    cold = cold_faults(wp)
    forks = int(trace.meta.get("tasks", {}).get("forks", 0))
    k_cold = int(cold.sum())
    out["p_cold_fault"] = share(k_cold, len(wp))
    if len(wp):
        out["p_cold_fault"]["high"] = max(out["p_cold_fault"]["high"], min(1.0, share(k_cold + forks, len(wp))["high"]))
    out["p_cold_fault"]["note"] = (f"a task's first WP fault or its first on another CPU ({k_cold} of {len(wp)}); a parent's "
                                   f"first after each of its {forks} forks is not in the tables: the high end adds them")
    calls = trace.counts.get("drain_all_calls", {}).get("count", 0)
    out["drain_all_calls_per_s"] = poisson_rate(int(calls), d)
    out["drain_all_calls_per_s"]["note"] = "lru_add_drain_all() calls that queued work (system-wide)"
    out["cpus"] = {"value": float(trace.provenance.get("online_cpus") or 0), "low": None, "high": None}
    for name, (value, why) in ASSUMED.items():
        out[name] = {"value": value, "low": value, "high": value, "note": f"assumed: {why}"}
    return out


def drains_in_gap(trace: Trace) -> dict:
    """How often the page's batch was moved by something other than filling (a local drain, a
    drain-all, a large add) between its install and its WP fault, measured and as the model has it.

    Among the model's faults whose page the adds alone would have left in its batch (measured
    position J plus adds in the gap k below B - 1), the measured share whose installing CPU's batch
    moved for another reason in the gap, against the model's probability of the same event at
    each fault (1 - its residency with J and k fixed, drains Poisson at the CPU's residency-time
    rates, and at its wall-time rates for comparison: ``costmodel.model.residency``). With the gap
    as a count of adds, a page whose batch took no add in its gap cannot be drained in the model;
    the share of such faults, and how many of them were moved, are reported. A large gap between the two is a concept the model lacks:
    drains that come with the faults rather than at random."""
    pop = model_faults(trace)
    if "batch_position" not in pop or not len(pop):
        return {}
    B = int(trace.meta["batch_size"])
    J = pop["batch_position"].to_numpy()
    k = pop["adds_in_gap"].to_numpy()
    short = (J >= 0) & (k >= 0) & (J + k < B - 1)
    sub = pop[short]
    if not len(sub):
        return {}
    moved = np.zeros(len(sub), dtype=bool)
    mv = trace.moves[trace.moves["cause"] != "fill"] if len(trace.moves) else trace.moves
    for c, g in mv.groupby("cpu"):
        t = np.sort(g["t_ns"].to_numpy())
        sel = np.flatnonzero(sub["install_cpu"].to_numpy() == c)
        tf = sub["t_ns"].to_numpy()[sel]
        ti = tf - sub["gap_ns"].to_numpy()[sel]
        moved[sel] = (np.searchsorted(t, tf, side="left") - np.searchsorted(t, ti, side="right")) > 0
    rates = per_cpu_rates(trace).set_index("cpu")
    inst = sub["install_cpu"].to_numpy()

    def model_moved(sfx: str) -> np.ndarray:
        values = registry.as_point({"batch_size": B, "gap_model": "fixed_count", "position_model": "fixed"}).as_dict()
        values.update({"batch_adds_per_s": np.maximum(rates[f"batch_adds_per_s{sfx}"].reindex(inst).to_numpy(float), 1e-6),
                       "explicit_drains_per_s": rates[f"explicit_drains_per_s{sfx}"].reindex(inst).to_numpy(float),
                       "drain_all_per_s": rates[f"drain_all_per_s{sfx}"].reindex(inst).to_numpy(float),
                       "p_large_add": rates[f"p_large_add{sfx}"].reindex(inst).to_numpy(float),
                       "adds_between": sub["adds_in_gap"].to_numpy(float),
                       "batch_position": sub["batch_position"].to_numpy(float)})
        with np.errstate(all="ignore"):
            return np.asarray(residency_fn("fixed_count", "fixed")({n: values[n] for n in registry.NUMERIC}), float)

    r = model_moved("")
    r_wall = model_moved("_wall")
    no_adds = sub["adds_in_gap"].to_numpy() == 0
    measured = share(int(moved.sum()), len(sub))
    return {"faults": int(len(sub)), "measured": measured, "model": float(np.mean(1 - r)),
            "model_wall_rates": float(np.mean(1 - r_wall)),
            "no_adds_in_gap": share(int(no_adds.sum()), len(sub)),
            "measured_no_adds_in_gap": share(int(moved[no_adds].sum()), int(no_adds.sum())),
            "held_counted": share(int(sub["held"].astype(bool).sum()), len(sub)), "held_model": float(np.mean(r))}
