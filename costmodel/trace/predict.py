"""Predict a traced program's counts with the model, beside what was counted.

Every WP fault on a model page (its anonymous install was traced) is one parameter point: its
own gap (``gap_model = fixed_time``: the measured time from install to fault), whether it ran on
the installing CPU, whether a live relative still mapped the frame (``p_other_ref``), whether the
page was a large folio, the CPUs running the process then, whether it was cold (the task's first WP
fault, or its first on another CPU: ``p_cold_fault``), and its installing CPU's add, drain and
drain-all rates per second its page waited in the batch. The model (every declared policy, through :func:`costmodel.evaluate.evaluate_arrays`)
is evaluated at all these points at once and averaged: the closed forms mixed over the measured
joint distribution, not evaluated at a mean gap (a real gap is not exponential). The derived means
are evaluated too (exponential gap of the mean), to show what a person typing in the means would
have been told.

Intervals: of the predicted shares, the mean's normal interval over the faults joined with the
spread when the per-CPU rates move to the ends of their Poisson intervals; of the counted shares,
Wilson intervals; of the costs, the calibrated set's machine parameters drawn from their
intervals (as ``costmodel predict`` draws them).
"""

from __future__ import annotations

import math
import sys
from typing import Mapping

import numpy as np

from .. import paramfile, presets, prediction, registry, stats
from ..errors import UserError
from ..evaluate import evaluate_arrays
from ..model import CANDIDATES, POLICIES
from .dataset import Trace
from .derive import derive, drains_in_gap, model_faults, per_cpu_rates, share

#: a prediction within this relative error of the counted share (or inside its interval) agrees
TOLERANCE = 0.20
#: faults evaluated for the costs' intervals (each against every draw of the machine parameters)
COST_FAULTS = 1000
COST_DRAWS = 200
#: faults evaluated at most for the shares (a random sample beyond this, seeded)
MAX_FAULTS = 60000


def choose_params(prov: Mapping, params=None, warn=True) -> tuple[paramfile.ParamSet, str, bool]:
    """The calibrated set of this CPU (:func:`costmodel.prediction.choose_param_set`), or with
    ``params`` that file; when no set of this CPU is committed, the closest one (same vendor, then
    the nearest family and model), with a one-line warning. Returns (set, how chosen, same CPU)."""
    if params is not None:
        ps, how = prediction.choose_param_set(prov, params)
        same = prediction.cpu_identity(ps.provenance) == prediction.cpu_identity(prov)
        if not same and warn:
            print(f"warning: {how} was calibrated on {prediction.describe_cpu(ps.provenance)}, not on this "
                  f"trace's CPU {prediction.describe_cpu(prov)}: the costs are that CPU's", file=sys.stderr)
        return ps, how, same
    try:
        ps, how = prediction.choose_param_set(prov, None)
        return ps, how, True
    except UserError:
        pass
    best = None
    for name, path in paramfile.committed_sets().items():
        if not name.startswith(f"{paramfile.PARAMS_DIR.name}/"):
            continue
        ps = paramfile.load(path)
        pv = ps.provenance
        key = (pv.get("cpu_vendor") != prov.get("cpu_vendor"),
               abs(int(pv.get("cpu_family") or 0) - int(prov.get("cpu_family") or 0)),
               abs(int(pv.get("cpu_model_number") or 0) - int(prov.get("cpu_model_number") or 0)), name)
        if best is None or key < best[0]:
            best = (key, name, ps)
    if best is None:
        raise UserError("no calibrated parameter set is committed (data/params); calibrate one and pass --params FILE")
    _, name, ps = best
    how = f"{name} (closest committed set: none was calibrated on this CPU)"
    if warn:
        print(f"warning: no calibrated set of this CPU ({prediction.describe_cpu(prov)}); using {name}, "
              f"calibrated on {prediction.describe_cpu(ps.provenance)}: the costs are that CPU's", file=sys.stderr)
    return ps, how, False


def _points(trace: Trace, pop, base: dict, rates, corner: tuple[str, str] | None = None,
            gap_as: str = "adds") -> dict:
    """Every model fault as a parameter point (arrays), on top of ``base`` (a checked point): its gap
    as the adds its installing CPU's batch took in it (``gap_as="adds"``: ``fixed_count``) or as
    the time itself (``"time"``: ``fixed_time``, adds at the CPU's mean rate)."""
    by = rates.set_index("cpu")
    inst = pop["install_cpu"].to_numpy()
    lam_col = "batch_adds_per_s" + ("" if corner is None else f"_{corner[0]}")
    drain_sfx = "" if corner is None else f"_{corner[1]}"
    lam = by[lam_col].reindex(inst).to_numpy(float)
    mu = by["explicit_drains_per_s" + drain_sfx].reindex(inst).to_numpy(float)
    nu = by["drain_all_per_s" + drain_sfx].reindex(inst).to_numpy(float)
    q = by["p_large_add"].reindex(inst).to_numpy(float)
    spec = registry.NUMERIC
    values = dict(base)
    values.update({
        "gap_model": "fixed_time", "position_model": "stationary",
        "wp_gap_s": np.clip(pop["gap_ns"].to_numpy(float) / 1e9, 0.0, spec["wp_gap_s"].high),
        "batch_adds_per_s": np.clip(np.nan_to_num(lam, nan=spec["batch_adds_per_s"].low), spec["batch_adds_per_s"].low,
                                    spec["batch_adds_per_s"].high),
        "explicit_drains_per_s": np.nan_to_num(mu), "drain_all_per_s": np.nan_to_num(nu),
        "p_large_add": np.clip(np.nan_to_num(q), 0, 1),
        "p_same_cpu": pop["same_cpu"].to_numpy(float),
        "p_cold_fault": pop["cold"].to_numpy(float) if "cold" in pop else base.get("p_cold_fault", 0.0),
        "p_other_ref": pop["live_sharer"].astype(float).to_numpy(),
        "p_large_folio": (pop["order"].to_numpy() > 0).astype(float),
        "remote_cpus": np.minimum(pop["remote_cpus"].to_numpy(float), base["cpus"] - 1),
    })
    if gap_as in ("adds", "adds+position"):
        values["gap_model"] = "fixed_count"
        values["adds_between"] = np.clip(pop["adds_in_gap"].to_numpy(float), 0, spec["adds_between"].high)
    if gap_as == "adds+position":
        # the position each page had in its batch, measured: the model's event logic alone,
        # without its stationary position law (a page never moved keeps the law: position 0)
        pos = pop["batch_position"].to_numpy(float) if "batch_position" in pop else np.zeros(len(pop))
        values["position_model"] = "fixed"
        values["batch_position"] = np.clip(pos, 0, base["batch_size"] - 1)
    return values


def _base(trace: Trace, ps: paramfile.ParamSet, derived: dict) -> tuple[registry.Point, registry.KernelPreset]:
    release = trace.provenance.get("kernel_release") or ""
    preset = registry.kernel_preset_for(release)
    cpus = int(trace.provenance.get("online_cpus") or 2)
    scalar = {"batch_size": int(trace.meta["batch_size"]), "cpus": cpus, "p_exclusive": 0.0,
              "gap_model": "fixed_time", "position_model": "stationary",
              "wp_faults_per_s": float(derived["model_wp_faults_per_s"]["value"]),
              "p_same_cpu": 1.0 if cpus < 2 else 0.5, "remote_cpus": 0}
    point, _ = presets.compose(ps.values(), None, preset.name, scalar, paramfile_origin=ps.name,
                               overrides_origin="trace")
    return point, preset


def _mean_interval(x: np.ndarray) -> tuple[float, float, float]:
    m = float(np.mean(x)) if len(x) else math.nan
    half = stats.Z95 * float(np.std(x, ddof=1)) / math.sqrt(len(x)) if len(x) > 1 else 0.0
    return m, m - half, m + half


QUANTITIES = (
    # name, what it is a share of, model output (or None), counted column
    ("copy_share", "model", "p_copy", "copied"),
    ("batch_held_copy_share", "all", "p_unnecessary_copy", "batch_held_copy"),
    ("in_fault_drain_share", "all", "p_local_drain", "in_fault_drain"),
    ("shootdown_ipis_per_wp_fault", "model", None, "ipis"),
)


#: the gap as the adds the installing CPU's batch took in it (fixed_count, the primary view), and
#: as the time itself (fixed_time, adds at the CPU's mean rate)
GAP_VIEWS = ("adds", "time", "adds+position")


def _compare(trace, pop, pop_all, base, kp, central, corners, scale, n_all) -> list[dict]:
    remote = np.minimum(pop["remote_cpus"].to_numpy(float), base["cpus"] - 1)
    comparison = []
    for name, of, output, col in QUANTITIES:
        if output is None:   # a copy sends one shootdown IPI to each other CPU running the mm
            per = np.asarray(central[(kp, "p_copy")]) * remote
            alt = [np.asarray(c[(kp, "p_copy")]) * remote for c in corners]
        else:
            per = np.asarray(central[(kp, output)])
            alt = [np.asarray(c[(kp, output)]) for c in corners]
        m, lo, hi = _mean_interval(per)
        lo = max(0.0, min([lo] + [float(np.mean(a)) for a in alt]))
        hi = max([hi] + [float(np.mean(a)) for a in alt])
        factor = scale if of == "all" else 1.0
        if col == "ipis":
            counted_n = int(pop_all["ipis"].sum())
            ci = _mean_interval(pop_all["ipis"].to_numpy(float))
            counted = {"value": counted_n / len(pop_all), "low": max(ci[1], 0.0), "high": ci[2], "count": counted_n}
        else:   # on the model's pages, as a share of all WP faults or of the model's
            k = int(pop_all[col].astype(bool).sum())
            counted = share(k, n_all if of == "all" else len(pop_all))
            counted["count"] = k
        total = n_all if of == "all" else len(pop_all)
        pred = {"value": m * factor, "low": lo * factor, "high": hi * factor, "count": m * factor * total}
        err = pred["value"] / counted["value"] - 1 if counted["value"] else (0.0 if pred["value"] == 0 else math.inf)
        overlap = pred["low"] <= counted["high"] and counted["low"] <= pred["high"]
        within = bool(abs(err) <= TOLERANCE or overlap or (counted["count"] == 0 and pred["count"] < 3))
        comparison.append({"quantity": name, "of": "all WP faults" if of == "all" else "WP faults on model pages",
                           "predicted": pred, "counted": counted, "relative_error": err, "agrees": within})
    return comparison


def predict(trace: Trace, params=None, seed: int = 1, warn: bool = True) -> dict:
    """Predicted beside counted for ``trace``; every declared policy's cost. A plain dict (JSON)."""
    derived = derive(trace)
    pop_all = model_faults(trace)
    n_all = len(trace.wp)
    if len(pop_all) == 0:
        raise UserError(f"{trace.directory}: no WP fault on a page whose install the trace saw; nothing to predict "
                        f"(trace a program that forks or writes pages it faulted in)")
    rng = np.random.default_rng(seed)
    pop = pop_all if len(pop_all) <= MAX_FAULTS else pop_all.sample(MAX_FAULTS, random_state=seed).reset_index(drop=True)
    scale = len(pop_all) / n_all           # model faults per WP fault
    ps, how, same_cpu_set = choose_params(trace.provenance, params, warn=warn)
    base, preset = _base(trace, ps, derived)
    rates = per_cpu_rates(trace)
    policies = tuple(POLICIES)
    kp = preset.policy
    views = {}
    for gap_as in GAP_VIEWS:
        central = evaluate_arrays(_points(trace, pop, base, rates, gap_as=gap_as), policies)
        corners = [evaluate_arrays(_points(trace, pop, base, rates, (a, b), gap_as=gap_as), (kp,))
                   for a in ("low", "high") for b in ("low", "high")]
        views[gap_as] = (central, _compare(trace, pop, pop_all, base, kp, central, corners, scale, n_all))
    central, comparison = views[GAP_VIEWS[0]]

    # at the derived means, an exponential gap of the mean (what typing in the means would give)
    means = dict(base)
    for k_ in ("batch_adds_per_s", "explicit_drains_per_s", "drain_all_per_s", "p_large_add", "p_same_cpu",
               "p_other_ref", "p_large_folio", "p_cold_fault"):
        v = derived.get(k_, {}).get("value")
        if v is not None and not (isinstance(v, float) and math.isnan(v)):
            means[k_] = float(np.clip(v, registry.NUMERIC[k_].low, registry.NUMERIC[k_].high))
    means.update(gap_model="exponential_time", wp_gap_s=float(derived["wp_gap_s"]["value"]),
                 remote_cpus=int(round(derived["remote_cpus"]["value"])))
    at_means = evaluate_arrays(registry.as_point(means), (kp,))
    point_view = {"p_copy": float(at_means[(kp, "p_copy")]),
                  "batch_held_copy_share": float(at_means[(kp, "p_unnecessary_copy")]) * scale,
                  "in_fault_drain_share": float(at_means[(kp, "p_local_drain")]) * scale}

    # costs: every policy, with the machine parameters drawn from the set's intervals
    sub = pop if len(pop) <= COST_FAULTS else pop.sample(COST_FAULTS, random_state=seed).reset_index(drop=True)
    draws = prediction.parameter_draws(ps, rng, COST_DRAWS)
    pts = _points(trace, sub, base, rates)
    pts = {k: (np.asarray(v)[None, :] if np.ndim(v) else v) for k, v in pts.items()}
    pts.update({k: np.asarray(v)[:, None] for k, v in draws.items()})
    drawn = evaluate_arrays(pts, policies)
    per_policy = []
    mean_cost = {p: np.asarray(drawn[(p, "expected_ns")]).mean(axis=1) for p in policies}
    cand = [p for p in policies if p in CANDIDATES]
    stack = np.vstack([mean_cost[p] for p in cand]) if cand else np.zeros((0, COST_DRAWS))
    # P(cheapest): ties (policies that cost the same to a part in 10^6, e.g. every policy when the
    # batch never holds a page) share the draw
    if cand:
        best = stack.min(axis=0)
        tied = stack <= best * (1 + 1e-6)
        share_of_win = (tied / tied.sum(axis=0)).mean(axis=1)
    rate = float(derived["model_wp_faults_per_s"]["value"])
    sub_central = evaluate_arrays(_points(trace, sub, base, rates), policies)
    for p in policies:
        c = np.asarray(central[(p, "expected_ns")])
        # the draws' spread on the sample, carried to the mean over every fault
        ratio = float(np.mean(c)) / max(float(np.mean(sub_central[(p, "expected_ns")])), 1e-300)
        lo, hi = (float(x) * ratio for x in np.quantile(mean_cost[p], [0.025, 0.975]))
        breakdown = {k.split(".", 1)[1]: float(np.mean(central[(p, k)])) for (pp, k) in central
                     if pp == p and k.startswith("breakdown_ns.")}
        per_policy.append({
            "policy": p, "kernel": p == kp, "candidate": p in CANDIDATES,
            "expected_ns": float(np.mean(c)), "expected_ns_low": lo, "expected_ns_high": hi,
            "cpu_us_per_s": float(np.mean(c)) * rate / 1000, "cpu_us_per_s_low": lo * rate / 1000,
            "cpu_us_per_s_high": hi * rate / 1000,
            "p_copy": float(np.mean(central[(p, "p_copy")])),
            "p_unnecessary_copy": float(np.mean(central[(p, "p_unnecessary_copy")])),
            "p_local_drain": float(np.mean(central[(p, "p_local_drain")])),
            "p_remote_drain": float(np.mean(central[(p, "p_remote_drain")])),
            "p_drain_all": float(np.mean(central[(p, "p_drain_all")])),
            "p_cheapest": float(share_of_win[cand.index(p)]) if p in cand else None,
            "breakdown_ns": breakdown,
        })
    kernel_row = next(r for r in per_policy if r["kernel"])
    n_model = len(pop_all)
    # what the batch costs this program: each fault as it was, against the same fault with its page
    # long gone from the batch (more adds in its gap than a batch holds): the model's own difference
    gone = _points(trace, pop, base, rates, gap_as="adds")
    gone["adds_between"] = np.full(len(pop), 10 * int(base["batch_size"]), float)
    without = evaluate_arrays(gone, (kp,))
    batch_ns = float(np.mean(np.asarray(central[(kp, "expected_ns")]) - np.asarray(without[(kp, "expected_ns")])))
    headline = {
        "policy": kp,
        "batch_held_copies_counted": int(trace.counts["batch_held_copies"]["count"]),
        "batch_held_copies_predicted": comparison[1]["predicted"],
        "in_fault_drains_counted": int(trace.counts["in_fault_drains"]["count"]),
        "in_fault_drains_predicted": comparison[2]["predicted"],
        "drain_cost_us": kernel_row["breakdown_ns"].get("local_drain", 0.0) * n_model / 1000,
        "batch_cost_us": batch_ns * n_model / 1000,
        "batch_cost_ns_per_wp_fault": batch_ns,
        "model_wp_faults": n_model,
    }
    return {
        "param_set": ps.name, "param_set_chosen": how, "param_set_same_cpu": same_cpu_set,
        "preset": preset.name, "policy": kp, "tolerance": TOLERANCE,
        "faults_evaluated": int(len(pop)), "model_wp_faults": n_model, "wp_faults": n_all,
        "comparison": comparison, "gap_view": GAP_VIEWS[0],
        "comparison_gap_as_time": views["time"][1], "comparison_position_measured": views["adds+position"][1],
        "at_derived_means": point_view, "policies": per_policy,
        "headline": headline, "derived": derived,
        "drains_in_gap": _drains_in_gap(trace),
    }


def _drains_in_gap(trace: Trace) -> dict:
    return drains_in_gap(trace)
