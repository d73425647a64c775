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

from .. import stats
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
    """The WP faults the model describes: on pages whose anonymous install the trace saw."""
    wp = trace.wp
    return wp[(wp["page"] == KIND_ANON) & (wp["gap_ns"] >= 0)].reset_index(drop=True)


def per_cpu_rates(trace: Trace) -> pd.DataFrame:
    """Per CPU: adds, local drains, drain-all works and large adds, as rates with intervals."""
    d = trace.duration_s
    rows = []
    for cpu, c in sorted(trace.meta.get("cpus", {}).items(), key=lambda kv: int(kv[0])):
        adds = poisson_rate(c["adds"], d)
        drains = poisson_rate(c["moves_local_drain"], d)
        alls = poisson_rate(c["moves_drain_all"], d)
        large = share(c["large_adds"], c["adds"]) if c["adds"] else {"value": 0.0, "low": 0.0, "high": 1.0, "n": 0}
        rows.append({"cpu": int(cpu), "batch_adds_per_s": adds["value"], "batch_adds_per_s_low": adds["low"],
                     "batch_adds_per_s_high": adds["high"], "explicit_drains_per_s": drains["value"],
                     "explicit_drains_per_s_low": drains["low"], "explicit_drains_per_s_high": drains["high"],
                     "drain_all_per_s": alls["value"], "drain_all_per_s_low": alls["low"],
                     "drain_all_per_s_high": alls["high"], "p_large_add": large["value"],
                     "p_large_add_low": large["low"], "p_large_add_high": large["high"],
                     "adds": c["adds"], "local_drains": c["moves_local_drain"], "fills": c["moves_fill"]})
    return pd.DataFrame(rows)


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
        for name in ("batch_adds_per_s", "explicit_drains_per_s", "drain_all_per_s", "p_large_add"):
            col = by[name].reindex(inst).to_numpy(float)
            lo = by[f"{name}_low"].reindex(inst).to_numpy(float)
            hi = by[f"{name}_high"].reindex(inst).to_numpy(float)
            out[name] = {"value": float(np.nanmean(col)), "low": float(np.nanmean(lo)), "high": float(np.nanmean(hi)),
                         "note": "the installing CPU's rate, averaged over the model's WP faults"}
        for row in cpus.itertuples():
            for name in ("batch_adds_per_s", "explicit_drains_per_s", "drain_all_per_s"):
                out[f"{name}.cpu{row.cpu}"] = {"value": getattr(row, name), "low": getattr(row, f"{name}_low"),
                                               "high": getattr(row, f"{name}_high")}
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
    each fault (1 - its residency with J and k fixed, drains Poisson at the CPU's mean rates:
    ``costmodel.model.residency``). A large gap between the two is a concept the model lacks:
    drains that come with the faults rather than at random."""
    from .. import registry
    from ..evaluate import _residency_fn

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
    values = registry.resolve({"batch_size": B, "gap_model": "fixed_count", "position_model": "fixed"})
    values.update({"batch_adds_per_s": np.maximum(rates["batch_adds_per_s"].reindex(inst).to_numpy(float), 1e-6),
                   "explicit_drains_per_s": rates["explicit_drains_per_s"].reindex(inst).to_numpy(float),
                   "drain_all_per_s": rates["drain_all_per_s"].reindex(inst).to_numpy(float),
                   "p_large_add": rates["p_large_add"].reindex(inst).to_numpy(float),
                   "adds_between": sub["adds_in_gap"].to_numpy(float),
                   "batch_position": sub["batch_position"].to_numpy(float)})
    with np.errstate(all="ignore"):
        r = np.asarray(_residency_fn("fixed_count", "fixed")({n: values[n] for n in registry.NUMERIC}), float)
    measured = share(int(moved.sum()), len(sub))
    return {"faults": int(len(sub)), "measured": measured, "model": float(np.mean(1 - r)),
            "held_counted": share(int(sub["held"].astype(bool).sum()), len(sub)), "held_model": float(np.mean(r))}
