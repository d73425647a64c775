"""The model's prediction of the end-to-end probes, against what they measured (a held-out test).

Each probe of the calibration measures one cost on its own; the ``workload`` and ``swap_cow``
probes measure whole WP faults of a controlled mix. Here every configuration they ran is mapped
to a parameter point (:func:`workload_point`, :func:`swap_point`): the machine's costs from the
calibrated parameter set of the same CPU, the kernel preset of the kernel that ran, and the
configuration's workload (share of writes on the holding CPU, the gap as a fixed count of adds or
as a time with the adder's measured rate, the page's position, the shootdown targets, whether
the page was exclusive or really shared, and how many of its faults come alone: every ``workload``
write is the first after its trial's fork, ``p_cold_fault`` = 1). :func:`predict` evaluates the
kernel's policy there and sets the model's expected cost per WP fault and copy probability beside
the measured mean (with its bootstrap interval) and copy fraction (with a 99% Wilson interval).

The predicted cost's 95% interval says what it is made of (:func:`interval_parts`): the set's
parameter intervals, the host's drift between the rounds of the set's recording (``bench
--repeat``), the model's own error on whole faults no fit used (the set's ``model_check``) and the
measured mean's own noise. A set of another CPU than the measurements' is named so, with a warning.

Where the model lacks a concept, the row says so in ``model_lacks`` and is left out of the
agreement for what the model cannot price: a write that took no fault at all (the swap-in
mapped the page exclusive and writable), the swap cache's costs (the entry freed by a reuse,
priced with ``swap_free_ns`` that no other probe measures; a live child's shared entry), the
swap-out and swap-in of the loop.

The calibration reads neither probe, so the test is held out; :func:`choose_param_set` refuses
a set whose fit records name them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from . import paramfile, presets, registry, stats
from .bench import read_measurements, read_raw
from .bench.provenance import dataset_id
from .errors import UserError
from .calibration.recipes import SWAP_CACHE_PARAMS
from .evaluate import evaluate_arrays, evaluate_point
from .model import costs
from .model.numeric import lambdify
from .uncertainty import split_sums

PROBES = ("workload", "swap_cow")
#: relative error of the predicted mean cost that still counts as agreement
COST_TOLERANCE = 0.15
#: relative error of the predicted ratio of swap-loop times (threads or a sibling against one
#: thread alone) that still counts as agreement
LOOP_RATIO_TOLERANCE = 0.20
#: confidence of the measured copy (and fault) fraction's Wilson interval
FRACTION_CONFIDENCE = 0.99
#: draws of the machine parameters (from their intervals) behind the predicted cost's interval
PARAM_DRAWS = 400
CPU_KEYS = ("cpu_vendor", "cpu_family", "cpu_model_number")
#: registry machine parameters; the set's intervals are propagated for these
MACHINE_NAMES = tuple(n for n, e in registry.NUMERIC.items() if e.kind == registry.MACHINE)


# ---- which parameter set --------------------------------------------------------------------


def cpu_identity(prov: Mapping) -> tuple:
    """What makes two provenances the same CPU (vendor, family, model): sets and data compare on it."""
    return tuple(prov.get(k) for k in CPU_KEYS)


def describe_cpu(prov: Mapping) -> str:
    """A provenance's CPU in words, for messages."""
    return (f"{prov.get('cpu_model', '?')} (vendor {prov.get('cpu_vendor')}, family {prov.get('cpu_family')}, "
            f"model {prov.get('cpu_model_number')})")


#: the operations of each predicted probe that predict checks (None: all of them); a fit may use the
#: probe's other operations (swap_cow's swap_fault measures swap_free_ns apart from its swap_write)
HELD_OUT_OPS: dict[str, tuple[str, ...] | None] = {"workload": None, "swap_cow": ("swap_write", "swap_loop")}


def _uses_held_out_probes(ps: paramfile.ParamSet) -> list[str]:
    """Names of this module's probes whose checked operations a set's fit records mention (they
    must mention none): a mention of the probe with no operation counts as all of them."""
    # what a fit was made from: its data and measurement fields (not the prose of its notes)
    used = []
    for record in ps.fit:
        used += [str(record.get(k, "")) for k in ("data", "name")]
        used += [str(r.get("measurement", "")) for r in record.get("residuals", []) if isinstance(r, dict)]
    text = "\n".join(used)
    found = []
    for probe in PROBES:
        held = HELD_OUT_OPS.get(probe)
        for m in re.finditer(rf"\b{probe}\b(?: op=(\w+))?", text):
            if held is None or m.group(1) is None or m.group(1) in held:
                found.append(probe)
                break
    return found


def choose_param_set(prov: Mapping, params: str | Path | None = None) -> tuple[paramfile.ParamSet, str]:
    """The parameter set to predict with, and how it was chosen.

    ``params`` given: that file. Otherwise the committed calibrated set (data/params) whose
    provenance has the measurement's CPU (vendor, family, model); with several, the one measured
    on the same kernel release, then the newest. A UserError when none matches (it names the two
    commands that make one) or the set was fitted on the probes predicted here."""
    if params is not None:
        ps = paramfile.load(params)
        how = f"--params {params}"
    else:
        candidates = []
        for name, path in paramfile.committed_sets().items():
            if not name.startswith(f"{paramfile.PARAMS_DIR.name}/"):
                continue   # reference sets come from published figures, not from this kind of machine
            ps = paramfile.load(path)
            if cpu_identity(ps.provenance) == cpu_identity(prov) and None not in cpu_identity(prov):
                candidates.append((ps.provenance.get("kernel_release") == prov.get("kernel_release"),
                                   str(ps.provenance.get("date", "")), name, ps))
        if not candidates:
            raise UserError(no_set_message(prov, what="the measurements' CPU"))
        candidates.sort(key=lambda c: (c[0], c[1]))
        _, _, name, ps = candidates[-1]
        how = f"{name} (same CPU as the measurements)"
    used = _uses_held_out_probes(ps)
    if used:
        raise UserError(f"{how}: its fit records name the probe {used[0]!r}; the prediction must be held out, "
                        f"so give a set calibrated without it")
    return ps, how


def no_set_message(prov: Mapping, what: str = "this CPU") -> str:
    """One line: no committed set comes from ``what``, and the two commands that make one."""
    ident = prov.get("dataset_id") or dataset_id(prov)
    if "unknown" in ident:   # the hypervisor is read by a probe binary: bench names the directory
        return (f"no calibrated parameter set in data/params was measured on {what}, {describe_cpu(prov)}; "
                f"make one: `costmodel bench --repeat 5` (it names the directory, data/measurements/ID) then "
                f"`costmodel calibrate data/measurements/ID -o data/params/ID.json`")
    return (f"no calibrated parameter set in data/params was measured on {what}, {describe_cpu(prov)}; "
            f"make one: `costmodel bench --repeat 5 --out data/measurements/{ident}` then `costmodel calibrate "
            f"data/measurements/{ident} -o data/params/{ident}.json`")


def same_cpu(ps: paramfile.ParamSet, prov: Mapping) -> bool | None:
    """Whether the set was calibrated on the measurements' CPU (None where the set does not say)."""
    theirs = cpu_identity(ps.provenance)
    if None in theirs or None in cpu_identity(prov):
        return None
    return theirs == cpu_identity(prov)


# ---- configurations as parameter points ------------------------------------------------------


@dataclass
class Mapped:
    """One measured configuration as the model sees it."""

    point: dict
    #: P(the write takes a fault at all), by the kernel's rules for exclusive pages
    p_fault: float
    #: the concepts the model lacks for this configuration (empty: it prices all of it)
    lacks: list[str]
    #: False when the model does not price what was timed (no WP fault was taken)
    priced: bool = True


def _compose(base: Mapping[str, object], preset: registry.KernelPreset, values: Mapping[str, object]) -> registry.Point:
    point, _ = presets.compose(base, None, preset.name, values, overrides_origin="probe configuration")
    if "p_exclusive" in preset.values:   # a kernel without the exclusive marker
        point = point.replace({"p_exclusive": preset.values["p_exclusive"]}, origin=f"preset {preset.name}")
    return point


def _common(cpus: int, batch_size: int, target_cpus: int) -> dict:
    return {"batch_size": int(batch_size), "cpus": int(cpus), "remote_cpus": int(target_cpus),
            "p_other_ref": 0.0, "p_large_folio": 0.0, "p_large_add": 0.0, "p_exclusive": 0.0,
            "explicit_drains_per_s": 0.0, "drain_all_per_s": 0.0}


#: adds counted in a timed gap vary about as a Poisson count (variance/mean near 1); far above
#: this, a trial waited far past its gap (the writer was held off) and the mean is not the gap's
GAP_OVERDISPERSION = 50.0


def gap_meta(meta: Mapping[str, str], adds_per_s: int, gap_us: int, drained_first: int, same_cpu_percent: int):
    """(measured mean adds in the gap, measured mean gap in s) from the workload probe's meta, or
    None; ("overdispersed", variance/mean) where a trial's gap ran far past the others."""
    raw = meta.get(f"gap_adds_{adds_per_s}_per_s_{gap_us}_us_drained_{drained_first}_same_{same_cpu_percent}")
    if not raw:
        return None
    fields = dict(part.partition("=")[::2] for part in raw.split())
    try:
        mean, gap_ns = float(fields["mean"]), float(fields["gap_ns"])
    except (KeyError, ValueError):
        return None
    if not (math.isfinite(mean) and math.isfinite(gap_ns) and gap_ns > 0 and mean >= 0):
        return None
    try:
        var = float(fields.get("var", "nan"))
    except ValueError:
        var = math.nan
    if math.isfinite(var) and mean > 0 and var / mean > GAP_OVERDISPERSION:
        return "overdispersed", var / mean
    return mean, gap_ns * 1e-9


def workload_point(row: Mapping, base: Mapping, preset: registry.KernelPreset, cpus: int, batch_size: int,
                   meta: Mapping[str, str]) -> Mapped:
    """A ``workload`` configuration: the fork+exit child took exclusivity, no other references;
    every timed write is the first write after its trial's fork (the stack's own faults taken just
    before it), so every fault is cold (``p_cold_fault`` = 1); a write on the other CPU follows a
    fork made there (``p_forked_on_writer`` = 1: the probe forks on the writing CPU)."""
    values = _common(cpus, batch_size, int(row["target_cpus"]))
    values["p_cold_fault"] = 1.0
    values["p_forked_on_writer"] = 1.0
    values["p_same_cpu"] = int(row["same_cpu_percent"]) / 100
    if int(row["drained_first"]):
        values.update(position_model="fixed", batch_position=0)
    else:
        values.update(position_model="stationary")
    lacks = []
    if not pd.isna(row.get("adds_between")):
        values.update(gap_model="fixed_count", adds_between=int(row["adds_between"]))
    else:
        rate, gap_us = int(row["adds_per_s"]), int(row["gap_us"])
        measured = gap_meta(meta, rate, gap_us, int(row["drained_first"]), int(row["same_cpu_percent"]))
        if measured is None:
            values.update(gap_model="fixed_time", wp_gap_s=gap_us * 1e-6, batch_adds_per_s=float(rate))
            lacks.append("the adder's measured adds per gap are missing: nominal rate and gap used")
        elif measured[0] == "overdispersed":
            values.update(gap_model="fixed_time", wp_gap_s=gap_us * 1e-6, batch_adds_per_s=float(rate))
            lacks.append(f"the adds per gap are overdispersed (variance/mean {measured[1]:,.0f}: a trial waited far "
                         f"past its gap), so their mean is not the gap's: nominal rate and gap used")
        else:
            mean_adds, gap_s = measured
            values.update(gap_model="fixed_time", wp_gap_s=gap_s, batch_adds_per_s=mean_adds / gap_s)
    point = _compose(base, preset, values)
    return Mapped(point, 1.0, lacks)


def swap_point(row: Mapping, base: Mapping, preset: registry.KernelPreset, cpus: int, batch_size: int, *,
               swap_cache_measured: bool = False, writes_apart: bool = True) -> Mapped:
    """A ``swap_cow`` ``swap_write`` configuration, by what the kernel does at swap-in:

    - exclusive pages keep their marker through swap-out (a swap entry marked exclusive), and a
      page that skipped the swap cache (``direct``, entry not shared) is fresh and exclusive too:
      ``p_exclusive`` = 1; since Linux 5.19 such a swap-in maps it writable, so no fault at all;
    - a forked page read through the swap cache (``readahead``) is not exclusive; the readahead
      drained the reading CPU's batch, so the page is on the LRU (a flushed batch); the swap
      cache's own reference is allowed for by the kernel: no other reference;
    - ``child_alive``: the page sits in the swap cache (``p_swapcache`` = 1) and the child holds its
      swap entry (``p_swap_shared`` = 1): the refcount test passes (the readahead drained the batch:
      no drain in the fault), and the fault copies because the entry cannot be freed
      (``swap_shared_copy_ns``).
    """
    sharing, path = str(row["sharing"]), str(row["swap_path"])
    values = _common(cpus, batch_size, int(row["target_cpus"]))
    values["p_same_cpu"] = float(int(row["same_cpu"]))
    # 16 writes in a row after the swap-in's read faults, as fault_cost's rounds: one in 16 cold
    values["p_cold_fault"] = 1.0 / 16
    values.update(gap_model="fixed_count", position_model="fixed", batch_position=0)
    lacks: list[str] = []
    if sharing == "child_alive":
        # the child holds the swap entries, so every swap-in goes through the swap cache, whose
        # readahead ends with lru_add_drain(): the folio is on the LRU at the write (traced: no
        # folio moved to an LRU in these faults). The child's reference is on the entry, not the
        # folio (p_swap_shared): the refcount test passes, folio_free_swap() fails, the fault copies.
        values.update(p_swapcache=1.0, p_swap_shared=1.0, p_other_ref=0.0, adds_between=batch_size)
        # swap_write forks its live child after moving to the other CPU and back (see the probe):
        # the copies after such a fork pay 0.2-0.8 us more on a Zen 4 guest, which no term prices
        lacks.append("the live child is forked after this task moved to the other CPU and back: each copy after"
                     " such a fork paid 0.2-0.8 us more (Zen 4 guest), which no model term prices")
        if not swap_cache_measured:
            lacks.append("swap cache with a live child: the failed free of the shared entry (swap_shared_copy_ns)"
                         " is assumed in this set (its recording has no swap_cow op=swap_fault rows)")
    elif sharing == "exclusive" or (sharing == "forked" and path == "direct"):
        values.update(p_exclusive=1.0, adds_between=batch_size)
    elif sharing == "forked" and path == "readahead":
        # in the swap cache: the reuse frees the page's swap entry (swap_free_ns)
        values.update(p_swapcache=1.0, adds_between=batch_size)
        if not swap_cache_measured:
            lacks.append("swap cache: the reuse frees the swap entry (swap_free_ns), assumed in this set (its"
                         " recording has no swap_cow op=swap_fault rows)")
    else:
        raise UserError(f"swap_cow row with sharing={sharing!r}, swap_path={path!r}: not a configuration "
                        f"this version knows; upgrade costmodel")
    point = _compose(base, preset, values)
    # Exclusive pages: since 5.19 the swap-in maps them writable (no WP fault); before, a read
    # fault mapped them read-only and the write faulted.
    exclusive_marker = "p_exclusive" not in preset.values
    p_fault = 1.0 - point["p_exclusive"] if exclusive_marker else 1.0
    priced = p_fault > 0
    if not priced:
        lacks.append("no WP fault: the swap-in mapped the page exclusive and writable; the model prices a fault")
    if priced and not writes_apart:
        lacks.append("each write timed right after system calls (getrusage, a read of /proc/self/pagemap; recorded"
                     " before swap_cow kept them out of its timed rounds): such a fault pays 300-700 ns more,"
                     " which no model term prices")
    return Mapped(point, p_fault, lacks, priced)


# ---- evaluation with intervals -------------------------------------------------------------


def _draw_groups(ps: paramfile.ParamSet) -> tuple[list[tuple[str, ...]], set[str]]:
    """From the set's fit records: the groups identified only as a sum (drawn together, one
    common deviate: they were split from one measured sum in a fixed ratio), and the parameters
    held at their value (a split of a sum whose interval spans shapes, not measurement noise)."""
    groups: list[tuple[str, ...]] = []
    held: set[str] = set()
    for record in ps.fit:
        ident = str(record.get("identifiable") or "")
        names = [n for n in record.get("parameters", []) if n in registry.NUMERIC]
        if ident.startswith("sum only"):
            held.update(names)
            continue
        for part in ident.split(";"):
            if part.strip().startswith("split:"):
                continue   # drawn as a split of its measured sum (parameter_draws)
            members = tuple(m.strip() for m in part.split("+") if m.strip() in registry.NUMERIC)
            if len(members) > 1:
                groups.append(members)
    return groups, held


def parameter_draws(ps: paramfile.ParamSet, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Machine parameters drawn from the set's intervals: normal, the 95% interval as +-1.96 sd,
    clipped to the registry bounds; members of a sum group share one deviate; parameters with no
    interval, or held (see :func:`_draw_groups`), stay at their value."""
    groups, held = _draw_groups(ps)
    splits = split_sums(ps)
    out: dict[str, np.ndarray] = {}
    by_label: dict[str, list[str]] = {}
    for name, (label, _) in splits.items():
        by_label.setdefault(label, []).append(name)
    for label, members in by_label.items():
        # the measured sum from its interval, split uniformly (a flat Dirichlet) among its parts
        total, lo, hi = splits[members[0]][1]
        z = rng.standard_normal(n)
        sums = np.maximum(total + z * np.where(z < 0, total - lo, hi - total) / stats.Z95, 0.0)
        e = rng.standard_exponential((n, len(members)))
        shares = e / e.sum(axis=1, keepdims=True)
        for i, m in enumerate(members):
            spec = registry.NUMERIC[m]
            out[m] = np.clip(shares[:, i] * sums, spec.low, spec.high)
    deviate: dict[str, np.ndarray] = {}
    for members in groups:
        z = rng.standard_normal(n)
        deviate.update({m: z for m in members})
    for name in MACHINE_NAMES:
        e = ps.parameters.get(name)
        if name in out or name in held or e is None or e.ci_low is None or e.ci_high is None:
            continue
        spec = registry.NUMERIC[name]
        if spec.integer or not float(e.ci_high) > float(e.ci_low):
            continue
        sd = (float(e.ci_high) - float(e.ci_low)) / (2 * stats.Z95)
        z = deviate.get(name)
        if z is None:
            z = rng.standard_normal(n)
        out[name] = np.clip(float(e.value) + sd * z, spec.low, spec.high)
    return out


def round_values(ps: paramfile.ParamSet) -> list[dict]:
    """The machine parameters of each round of the set's recording (its ``rounds`` fit record),
    one dict per round; empty for a set calibrated from one round."""
    for record in ps.fit:
        if record.get("name") == "rounds" and isinstance(record.get("values_by_round"), dict):
            by = {k: v for k, v in record["values_by_round"].items() if k in registry.NUMERIC and isinstance(v, list)}
            n = min((len(v) for v in by.values()), default=0)
            return [{k: float(v[i]) for k, v in by.items()} for i in range(n)]
    return []


def model_error(ps: paramfile.ParamSet) -> float | None:
    """The model's root-mean-square relative error on whole faults no fit used (the set's
    ``model_check`` record); None where the set has none."""
    for record in ps.fit:
        if record.get("name") == "model_check":
            try:
                return abs(float(record["relative_error_rms"]))
            except (KeyError, TypeError, ValueError):
                return None
    return None


def drift_sd(point: Mapping, policy: str, rounds: list[dict]) -> float | None:
    """Standard deviation of the expected cost at ``point`` over the rounds' own calibrations: how
    far the host's drift between rounds moves this prediction (None with fewer than 2 rounds)."""
    if len(rounds) < 2:
        return None
    costs = [evaluate_point(registry.changed(point, r, origin="round"), [policy])[policy]["expected_ns"] for r in rounds]
    return float(np.std(costs, ddof=1))


def interval_parts(pred: Mapping, drift: float | None, model_rel: float | None, measured_half: float | None) -> dict:
    """The halves (95%) of a predicted cost's interval, by source, and the whole interval (their
    root sum of squares around the prediction): ``params`` (the set's parameter intervals),
    ``drift`` (the host between rounds), ``model`` (the model's own error on like faults),
    ``measured`` (the measured mean's own noise, which a comparison with it must allow); the whole
    interval is ``predicted_ci_low`` .. ``predicted_ci_high``."""
    value = float(pred["expected_ns"])
    halves = {"params": (float(pred["expected_ci_high"]) - float(pred["expected_ci_low"])) / 2,
              "drift": stats.Z95 * drift if drift is not None else 0.0,
              "model": stats.Z95 * model_rel * value if model_rel is not None else 0.0,
              "measured": float(measured_half) if measured_half is not None and math.isfinite(measured_half) else 0.0}
    total = math.sqrt(sum(h * h for h in halves.values()))
    return {**{f"{k}_half_ns": h for k, h in halves.items()}, "predicted_ci_low": max(value - total, 0.0),
            "predicted_ci_high": value + total}


def predicted(point: Mapping, policy: str, draws: Mapping[str, np.ndarray]) -> dict:
    """Expected cost and copy probability at ``point`` under ``policy``, with a 95% interval of
    the cost from the machine parameters' draws."""
    at = evaluate_point(point, [policy])[policy]
    low = high = at["expected_ns"]
    if draws:
        arrays = evaluate_arrays(dict(point, **draws), [policy])
        cost = np.asarray(arrays[(policy, "expected_ns")], dtype=float)
        low, high = (float(x) for x in np.quantile(cost, [0.025, 0.975]))
    return {"expected_ns": at["expected_ns"], "expected_ci_low": low, "expected_ci_high": high,
            "p_copy": at["p_copy"], "breakdown_ns": at["breakdown_ns"]}


def _fraction(frame: pd.DataFrame, measure: str) -> dict:
    rows = frame[frame["measure"] == measure]
    if rows.empty:
        return {}
    r = rows.iloc[0]
    n, k = int(r["n"]), int(r["successes"])
    low, high = stats.wilson_interval(k, n, stats.z_value(FRACTION_CONFIDENCE))
    return {"n": n, "fraction": k / n, "ci_low": low, "ci_high": high}


def _mean(frame: pd.DataFrame, raw: pd.DataFrame | None, key: Mapping) -> dict:
    rows = frame[frame["measure"] == "ns"]
    if rows.empty:
        return {}
    r = rows.iloc[0]
    mean = r.get("mean_ns")
    if mean is not None and not pd.isna(mean):
        return {"n": int(r["n"]), "mean_ns": float(mean), "ci_low": float(r["mean_ci_low"]),
                "ci_high": float(r["mean_ci_high"]), "median_ns": float(r["median_ns"])}
    values = _raw_values(raw, key, "ns")   # an older summary without means: from the raw samples
    half = stats.Z95 * float(np.std(values, ddof=1)) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    m = float(np.mean(values))
    return {"n": len(values), "mean_ns": m, "ci_low": m - half, "ci_high": m + half,
            "median_ns": float(np.median(values))}


def _raw_values(raw: pd.DataFrame | None, key: Mapping, measure: str) -> np.ndarray:
    if raw is None:
        raise UserError("the summary has no mean_ns and the raw samples are missing; rerun `costmodel bench`")
    sel = raw["measure"] == measure
    for col, value in key.items():
        sel &= raw[col].isna() if pd.isna(value) else (raw[col] == value)
    return raw.loc[sel.fillna(False), "value"].to_numpy(dtype=float)


# ---- the comparison ------------------------------------------------------------------------

KEY_COLUMNS = {
    "workload": ["op", "adds_between", "adds_per_s", "gap_us", "drained_first", "same_cpu_percent",
                 "target_cpus", "siblings"],
    "swap_cow": ["op", "sharing", "swap_path", "same_cpu", "target_cpus", "siblings", "threads"],
}


def _config_label(probe: str, key: Mapping) -> str:
    parts = []
    for col in KEY_COLUMNS[probe]:
        v = key.get(col)
        if col == "op" or v is None or pd.isna(v):
            continue
        parts.append(f"{col}={v}")
    return " ".join(parts)


def predict(directory: str | Path, params: str | Path | None = None, seed: int = 1,
            tolerance: float = COST_TOLERANCE) -> tuple[pd.DataFrame, dict]:
    """Predicted against measured, one row per configuration of the two probes, and a summary.

    Row columns: probe, config, the key columns, policy, predicted_ns with its 95% interval
    (predicted_ci_low/high: the root sum of squares of params_half_ns, drift_half_ns, model_half_ns
    and measured_half_ns, :func:`interval_parts`) and interval_holds (it holds the measured mean),
    measured mean_ns (+ interval) and median_ns, cost_error (predicted / measured - 1),
    within_tolerance (``|cost_error| <= tolerance``),
    model_p_copy, measured copy fraction with its 99% interval, copy_inside, p_fault and the
    measured fault fraction (swap_cow), model_lacks. The summary holds the set, the policy and the
    agreement; ``loop`` the swap loop's times per iteration and the two-thread/one-thread ratios.
    """
    frame, prov = read_measurements(directory)
    have = [p for p in PROBES if (frame["probe"] == p).any()]
    if not have:
        raise UserError(f"{directory}: no workload or swap_cow measurements; run "
                        f"`costmodel bench --probe workload --probe swap_cow`")
    ps, how = choose_param_set(prov, params)
    preset = registry.kernel_preset_for(prov.get("kernel_release", ""))
    policy = preset.policy
    base = ps.values()
    cpus = int(prov.get("online_cpus") or 2)
    rng = np.random.default_rng(seed)
    draws = parameter_draws(ps, rng, PARAM_DRAWS)
    rounds = round_values(ps)
    model_rel = model_error(ps)
    probe_meta = {p: prov.get("probes", {}).get(p, {}).get("meta", {}) for p in PROBES}

    rows: list[dict] = []
    loops: list[dict] = []
    for probe in have:
        sub = frame[(frame["probe"] == probe) & frame["skipped_reason"].isna()]
        meta = probe_meta[probe]
        batch = int(meta.get("batch_size_assumed") or prov.get("batch_size_found") or preset.values.get("batch_size", 31))
        try:
            raw = read_raw(directory, probe)
        except UserError:
            raw = None
        cols = KEY_COLUMNS[probe]
        for key_values, group in sub.groupby(cols, dropna=False, sort=True):
            key = dict(zip(cols, key_values))
            if probe == "swap_cow" and key["op"] == "swap_loop":
                loops.append({**key, **_mean(group, raw, key)})
                continue
            if probe == "swap_cow" and key["op"] != "swap_write":
                continue   # swap_fault: calibration's rows (swap_free_ns), not a check
            if probe == "workload":
                mapped = workload_point(key, base, preset, cpus, batch, meta)
            else:
                mapped = swap_point(key, base, preset, cpus, batch,
                                    swap_cache_measured=all(ps.parameters[n].source == "measured"
                                                            for n in SWAP_CACHE_PARAMS if n in ps.parameters),
                                    writes_apart="pfn_check" in meta)
            pred = predicted(mapped.point, policy, draws)
            cost = _mean(group, raw, key)
            copy = _fraction(group, "copied")
            fault = _fraction(group, "faulted")
            row = {"probe": probe, "config": _config_label(probe, key), **key, "policy": policy,
                   "predicted_ns": pred["expected_ns"],
                   "mean_ns": cost.get("mean_ns"), "mean_ci_low": cost.get("ci_low"),
                   "mean_ci_high": cost.get("ci_high"), "median_ns": cost.get("median_ns"),
                   "priced": mapped.priced,
                   "model_p_copy": pred["p_copy"], "copied": copy.get("fraction"),
                   "copied_ci_low": copy.get("ci_low"), "copied_ci_high": copy.get("ci_high"),
                   "copied_n": copy.get("n"),
                   "p_fault": mapped.p_fault if probe == "swap_cow" else None,
                   "faulted": fault.get("fraction"), "faulted_ci_low": fault.get("ci_low"),
                   "faulted_ci_high": fault.get("ci_high"),
                   "model_lacks": "; ".join(mapped.lacks)}
            m = row["mean_ns"]
            meas_half = ((row["mean_ci_high"] - row["mean_ci_low"]) / 2
                         if row["mean_ci_high"] is not None and row["mean_ci_low"] is not None else None)
            row.update(interval_parts(pred, drift_sd(mapped.point, policy, rounds) if mapped.priced else None,
                                      model_rel, meas_half))
            row["cost_error"] = (row["predicted_ns"] / m - 1) if (m and m > 0 and mapped.priced) else math.nan
            row["within_tolerance"] = bool(mapped.priced and abs(row["cost_error"]) <= tolerance)
            row["interval_holds"] = (bool(row["predicted_ci_low"] <= m <= row["predicted_ci_high"])
                                     if mapped.priced and m is not None else None)
            row["copy_inside"] = _inside(row["model_p_copy"], row["copied_ci_low"], row["copied_ci_high"])
            row["fault_inside"] = (_inside(row["p_fault"], row["faulted_ci_low"], row["faulted_ci_high"])
                                   if row["faulted"] is not None else None)
            rows.append(row)
    out = pd.DataFrame(rows)
    ratios = _loop_ratios(loops, base, preset, cpus, draws, rng)
    summary = _summary(out, loops, ratios, directory, prov, ps, how, preset, tolerance)
    summary["same_cpu"] = same_cpu(ps, prov)
    summary["set_cpu"] = describe_cpu(ps.provenance) if ps.provenance else None
    summary["rounds"] = len(rounds)
    summary["model_error_rms"] = model_rel
    return out, summary


def _inside(value, low, high) -> bool | None:
    if value is None or low is None or (isinstance(low, float) and math.isnan(low)):
        return None
    return bool(low - 1e-12 <= value <= high + 1e-12)


def loop_point(row: Mapping, one_thread_ns: float, base: Mapping, preset: registry.KernelPreset, cpus: int) -> dict:
    """A ``swap_loop`` configuration as a parameter point: the one-thread loop of the same swap path
    is the loop's own time (the swap I/O, which the model takes as given); the other CPUs running
    the mm are the shootdown targets, and those that run the loop too are its peers."""
    values = {"cpus": int(cpus), "remote_cpus": int(row["target_cpus"]), "loop_peers": int(row["threads"]) - 1,
              "swap_loop_base_ns": float(one_thread_ns)}
    return _compose(base, preset, values)


def predicted_loop(point: Mapping, draws: Mapping[str, np.ndarray]) -> tuple[float, float, float]:
    """The model's time per loop iteration at ``point`` (:func:`costmodel.model.costs.swap_loop_ns`),
    with a 95% interval over ``draws`` (machine parameters, and the loop's own time)."""
    expr = costs.swap_loop_ns(str(point["shootdown_model"]))
    syms = sorted(expr.free_symbols, key=str)
    f = lambdify(syms, expr)
    at = float(f(*(float(point[str(s)]) for s in syms)))
    if not draws:
        return at, at, at
    n = len(next(iter(draws.values())))
    vals = np.broadcast_to(np.asarray(f(*(np.asarray(draws.get(str(s), point[str(s)]), float) for s in syms)), float), (n,))
    low, high = (float(x) for x in np.quantile(vals, [0.025, 0.975]))
    return at, low, high


def _mean_se(x: Mapping) -> float:
    return (x["ci_high"] - x["ci_low"]) / (2 * stats.Z95)


def _loop_ratios(loops: list[dict], base: Mapping, preset: registry.KernelPreset, cpus: int,
                 draws: Mapping[str, np.ndarray], rng: np.random.Generator,
                 tolerance: float = LOOP_RATIO_TOLERANCE) -> list[dict]:
    """Per swap path, every loop configuration against the one thread alone: the measured ratio of
    their times per iteration (with its interval) and the model's, whose only measured input from
    this probe is the one-thread time."""
    out = []
    by = {(r["swap_path"], int(r["threads"]), r["siblings"]): r for r in loops if r.get("mean_ns") is not None}
    for path in sorted({k[0] for k in by}):
        one = by.get((path, 1, "none"))
        if not one:
            continue
        for (p, threads, sib), r in sorted(by.items()):
            if p != path or (threads, sib) == (1, "none"):
                continue
            ratio = r["mean_ns"] / one["mean_ns"]
            # interval of a ratio of two independent means, by the delta method on their log
            half = stats.Z95 * math.hypot(_mean_se(r) / r["mean_ns"], _mean_se(one) / one["mean_ns"])
            point = loop_point(r, one["mean_ns"], base, preset, cpus)
            n = len(next(iter(draws.values()))) if draws else PARAM_DRAWS
            loop_draws = dict(draws, swap_loop_base_ns=one["mean_ns"] + _mean_se(one) * rng.standard_normal(n))
            pred, pred_low, pred_high = predicted_loop(point, loop_draws)
            pred_ratio = pred / one["mean_ns"]
            out.append({"swap_path": path, "against": f"threads={threads} siblings={sib}",
                        "threads": threads, "siblings": sib, "target_cpus": int(r["target_cpus"]),
                        "one_thread_ns": one["mean_ns"], "ns": r["mean_ns"], "ratio": ratio,
                        "ratio_ci_low": ratio * math.exp(-half), "ratio_ci_high": ratio * math.exp(half),
                        "predicted_ns": pred, "predicted_ci_low": pred_low, "predicted_ci_high": pred_high,
                        "predicted_ratio": pred_ratio, "ratio_error": pred_ratio / ratio - 1,
                        "ratio_within": bool(abs(pred_ratio / ratio - 1) <= tolerance),
                        "pageout_tlb_flushes": int(point["pageout_tlb_flushes"])})
    return out


def _summary(out: pd.DataFrame, loops: list[dict], ratios: list[dict], directory, prov, ps, how, preset,
             tolerance: float) -> dict:
    priced = out[out["priced"]] if len(out) else out
    copy_rows = out[out["copy_inside"].notna()] if len(out) else out
    fault_rows = out[out["fault_inside"].notna()] if len(out) and "fault_inside" in out else out.iloc[0:0]
    lacks = out[out["model_lacks"] != ""] if len(out) else out
    return {
        "directory": str(directory),
        "cpu": describe_cpu(prov),
        "kernel_release": prov.get("kernel_release"),
        "preset": preset.name,
        "policy": preset.policy,
        "param_set": ps.name,
        "param_set_chosen": how,
        "configurations": int(len(out)),
        "cost_tolerance": tolerance,
        "priced": int(len(priced)),
        "cost_within": int(priced["within_tolerance"].sum()) if len(priced) else 0,
        "copy_rows": int(len(copy_rows)),
        "copy_inside": int(copy_rows["copy_inside"].astype(bool).sum()) if len(copy_rows) else 0,
        "fault_rows": int(len(fault_rows)),
        "fault_inside": int(fault_rows["fault_inside"].astype(bool).sum()) if len(fault_rows) else 0,
        "fraction_confidence": FRACTION_CONFIDENCE,
        "model_lacks": [{"config": f"{r.probe} {r.config}", "lacks": r.model_lacks,
                         "measured_ns": r.mean_ns, "predicted_ns": r.predicted_ns,
                         "miss_ns": (r.mean_ns - r.predicted_ns) if r.mean_ns is not None else None}
                        for r in lacks.itertuples()],
        "loop": loops,
        "loop_ratios": ratios,
        "loop_ratio_tolerance": LOOP_RATIO_TOLERANCE,
        "loop_rows": len(ratios),
        "loop_within": sum(r["ratio_within"] for r in ratios),
        "priced_full": int((priced["model_lacks"] == "").sum()) if len(priced) else 0,
        "cost_within_full": int(priced[priced["model_lacks"] == ""]["within_tolerance"].sum()) if len(priced) else 0,
        "interval_holds_full": int(priced[priced["model_lacks"] == ""]["interval_holds"].fillna(False).astype(bool).sum())
        if len(priced) else 0,
        "interval_rows": int(priced["interval_holds"].notna().sum()) if len(priced) else 0,
        "interval_holds": int(priced["interval_holds"].fillna(False).astype(bool).sum()) if len(priced) else 0,
        "by_probe": _by_probe(out),
    }


def _by_probe(out: pd.DataFrame) -> dict:
    """Per probe: configurations, those priced, costs within the tolerance, intervals holding the
    measured mean, copy fractions holding the model."""
    res = {}
    if not len(out):
        return res
    for probe, g in out.groupby("probe", sort=False):
        priced = g[g["priced"]]
        copies = g[g["copy_inside"].notna()]
        full = priced[priced["model_lacks"] == ""]
        res[str(probe)] = {"configurations": int(len(g)), "priced": int(len(priced)),
                           "cost_within": int(priced["within_tolerance"].sum()),
                           "interval_holds": int(priced["interval_holds"].fillna(False).astype(bool).sum()),
                           "lacking": int(len(priced) - len(full)),
                           "lacking_interval_holds": int(priced[priced["model_lacks"] != ""]["interval_holds"]
                                                         .fillna(False).astype(bool).sum()),
                           "copy_rows": int(len(copies)), "copy_inside": int(copies["copy_inside"].astype(bool).sum())}
    return res


# ---- targets and text ----------------------------------------------------------------------


def check(summary: Mapping, min_share: float = 1.0) -> list[str]:
    """What falls short of the targets: the share of priced configurations within the cost
    tolerance and of those whose predicted 95% interval holds the measured mean (both over the
    configurations the model prices fully: those it says lack a concept are listed apart), and of
    measured copy (and fault) fractions whose interval holds the model, each at least
    ``min_share``. Empty when everything meets them."""
    problems = []
    full = summary.get("priced_full", summary["priced"])
    for what, hit, total in (("costs within the tolerance", summary.get("cost_within_full", summary["cost_within"]), full),
                             ("predicted intervals holding the measured mean",
                              summary.get("interval_holds_full", full), full),
                             ("copy fractions holding the model", summary["copy_inside"], summary["copy_rows"]),
                             ("fault fractions holding the model", summary["fault_inside"], summary["fault_rows"]),
                             ("swap-loop ratios within their tolerance", summary.get("loop_within", 0),
                              summary.get("loop_rows", 0))):
        if total and hit / total < min_share - 1e-12:
            problems.append(f"{hit}/{total} {what}, below {min_share:g}")
    return problems


def _f(x, fmt="{:.0f}") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return fmt.format(x)


def describe(rows: pd.DataFrame, summary: Mapping) -> str:
    s = summary
    if s.get("same_cpu") is False:
        held = (f"NOT the same CPU: the set comes from {s.get('set_cpu')}; costs measured on one CPU do not carry "
                f"over to another, so this tests transfer, not the model (the calibration reads neither probe)")
    elif s.get("same_cpu") is None:
        held = "the set does not say which CPU it comes from; held out (the calibration reads neither probe)"
    else:
        held = "same CPU, held out (the calibration reads neither probe)"
    lines = [
        f"prediction ({s['policy']}, preset {s['preset']}, kernel {s['kernel_release']}) with {s['param_set_chosen']}",
        f"against {s['directory']} ({s['cpu']}): {held}",
    ]
    if s.get("same_cpu") is False:
        lines.append("warning: the parameter set was calibrated on another CPU than the measurements'")
    for probe, b in s.get("by_probe", {}).items():
        part = (f"{probe}: costs {b['cost_within']} of {b['priced']} priced configurations within "
                f"{s['cost_tolerance']:.0%}, 95% interval holds the measured mean in {b['interval_holds']} of "
                f"{b['priced']}; copy fractions {b['copy_inside']} of {b['copy_rows']} hold p_copy "
                f"({s['fraction_confidence']:.0%} Wilson)")
        if b.get("lacking"):
            part += (f"; {b['lacking']} of the priced lack a concept the model does not have (listed below; "
                     f"their intervals hold {b['lacking_interval_holds']})")
        if b["configurations"] > b["priced"]:
            part += f"; {b['configurations'] - b['priced']} configurations not priced (no WP fault taken)"
        lines.append(part)
    if s["fault_rows"]:
        lines.append(f"faults taken: {s['fault_inside']} of {s['fault_rows']} as the model says")
    drift = (f"drift between the recording's {s['rounds']} rounds" if s.get("rounds") else
             "drift: not measured (a set calibrated from one round; record with `costmodel bench --repeat N`)")
    model = (f"the model's own error on like faults ({s['model_error_rms']:.1%} rms)" if s.get("model_error_rms") is not None
             else "model error: not measured (the set has no model check)")
    lines.append(f"each interval is the root sum of squares of four 95% halves: params (the set's intervals), {drift}, "
                 f"{model}, measured (the mean's own noise)")
    width = max([len("configuration")] + [len(str(c)) for c in rows["config"]]) if len(rows) else 13
    lines += ["", f"{'probe':9s} {'configuration':{width}s} {'predicted ns [95%]':>24s} {'params':>7s} {'drift':>7s} "
                  f"{'model':>7s} {'meas':>7s} {'measured mean ns':>17s} {'err':>6s} {'p_copy':>6s} {'copied [99%]':>19s}"]
    for r in rows.itertuples():
        pred = f"{_f(r.predicted_ns)} [{_f(r.predicted_ci_low)}, {_f(r.predicted_ci_high)}]"
        hold = "" if not r.priced else (" " if r.interval_holds else "!")
        err = _f(r.cost_error, "{:+.0%}") if r.priced else "n/p"
        mark = "" if not r.priced else (" " if r.within_tolerance else "*")
        copied = f"{_f(r.copied, '{:.3f}')} [{_f(r.copied_ci_low, '{:.2f}')}, {_f(r.copied_ci_high, '{:.2f}')}]"
        cmark = "" if r.copy_inside is None else (" " if r.copy_inside else "*")
        halves = " ".join(f"{_f(h):>7s}" for h in (r.params_half_ns, r.drift_half_ns, r.model_half_ns,
                                                     r.measured_half_ns))
        line = (f"{r.probe:9s} {r.config:{width}s} {pred:>23s}{hold} {halves} {_f(r.mean_ns):>17s} {err:>6s}{mark} "
                f"{r.model_p_copy:6.3f} {copied:>19s}{cmark}")
        if r.faulted is not None and not (isinstance(r.faulted, float) and math.isnan(r.faulted)):
            line += f"  faulted {r.faulted:.3f} (model {r.p_fault:.0f})"
        lines.append(line)
    lines.append("(* outside the tolerance or the copy interval; ! the measured mean outside the predicted interval; "
                 "n/p: the model does not price what was timed; params/drift/model/meas: the interval's 95% halves in ns)")
    if s["model_lacks"]:
        lines.append("")
        lines.append("where the model lacks a concept (measured mean - predicted):")
        for item in s["model_lacks"]:
            lines.append(f"  {item['config']}: {item['lacks']} ({_f(item['miss_ns'], '{:+.0f}')} ns)")
    if s["loop_ratios"]:
        lines.append("")
        lines.append(f"swap-out / swap-in / write loop, mean ns per iteration against one thread alone (the model "
                     f"takes that time as given and adds the pageouts' shootdowns; ratio within "
                     f"{s['loop_ratio_tolerance']:.0%}: {s['loop_within']}/{s['loop_rows']}):")
        for r in s["loop_ratios"]:
            mark = " " if r["ratio_within"] else "*"
            lines.append(f"  {r['swap_path']:9s} {r['against']:28s} {r['ns']:9.0f} against {r['one_thread_ns']:8.0f}"
                         f": {r['ratio']:.2f}x [{r['ratio_ci_low']:.2f}, {r['ratio_ci_high']:.2f}]; model "
                         f"{r['predicted_ns']:9.0f} [{r['predicted_ci_low']:.0f}, {r['predicted_ci_high']:.0f}] ns, "
                         f"{r['predicted_ratio']:.2f}x ({r['ratio_error']:+.1%}){mark}")
    return "\n".join(lines)
