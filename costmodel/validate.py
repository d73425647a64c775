"""The model checked against the simulation and against the real kernel, in numbers.

Against the kernel: each ``unnecessary_copy`` row of a measurement directory is a configuration
the model can express exactly (:func:`probe_point`): a gap of ``adds_between`` other folios
(``fixed_count``), the target at position 0 right after a drain (``fixed``) or at an unknown
position (``stationary``, uniform with no drains), the writer on the holding CPU or not
(``p_same_cpu`` 1 or 0), small or huge folios, no other references, the batch size the probe
found, and the policy of the kernel that ran (from its release). Several target pages
first-touched in a row are modelled page by page. Agreement means the model's probability lies
inside the measurement's binomial interval (:func:`model_vs_kernel`).

Against the simulation: :func:`compare` puts the model's value beside each simulated one with
its interval; :func:`model_vs_simulation`, :func:`residency_simulated`,
:func:`unnecessary_copy_validation` and the ``*_agreement`` functions state the agreement.

This is the one module that imports the simulation, the evaluator and the bench readers
together; the charts only draw the frames it returns.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from . import axes, paramfile, registry
from .bench import read_measurements
from .bench.runner import summary_path
from .errors import UserError
from .evaluate import evaluate_point, residency_value
from .simulate import GapHistogram, Poisson, SimulationResult, simulate

# ---- against the kernel ----------------------------------------------------------------------

KEYS = ["adds_between", "drained_first", "same_cpu", "pages", "huge"]


def kernel_policy(release: str) -> str:
    """The drain policy of a kernel release string such as ``6.18.44-fc``."""
    return registry.kernel_preset_for(release).policy


def probe_point(values: Mapping[str, object], adds_between: int, drained_first: bool, same_cpu: bool = False,
                huge: bool = False, batch_position: int = 0) -> registry.Point:
    """The parameter point of one trial of the unnecessary-copy probe: a gap of ``adds_between``
    other adds, the page at ``batch_position`` right after a drain or at an unknown (stationary,
    here uniform) position, the writer on the holding CPU or not, no drains, no other reference."""
    trial = dict(gap_model="fixed_count", adds_between=int(adds_between),
                 p_same_cpu=1.0 if same_cpu else 0.0, p_exclusive=0.0, p_other_ref=0.0,
                 p_large_folio=1.0 if huge else 0.0, explicit_drains_per_s=0.0, drain_all_per_s=0.0)
    if drained_first:
        trial.update(position_model="fixed", batch_position=int(batch_position))
    else:
        trial.update(position_model="stationary")
    return registry.changed(values, trial, origin="probe trial")


def model_copy_probability(adds_between: int, drained_first: bool, same_cpu: bool, pages: int, huge: bool,
                           batch_size: int, policy: str) -> float:
    """P(copy) of one written target page, averaged over the ``pages`` targets of a trial: page i
    sits at position i (mod B: the batch flushes when it fills) and sees the later targets as
    adds too."""
    base = {"batch_size": batch_size}
    total = 0.0
    for i in range(pages):
        point = probe_point(base, adds_between + pages - 1 - i, drained_first, same_cpu, huge, i % batch_size)
        total += evaluate_point(point, [policy])[policy]["p_copy"]
    return total / pages


def check_counts(rows: pd.DataFrame, directory) -> None:
    """The unnecessary_copy rows a measurement set gives, checked before they are compared: whole
    counts with 0 <= successes <= n, n > 0, and one row per configuration (a hand-edited or
    concatenated file was accepted and gave intervals of nothing)."""
    where = str(summary_path(directory, "unnecessary_copy"))
    n, k = rows["n"].to_numpy(dtype=float), rows["successes"].to_numpy(dtype=float)
    bad = ~(np.isfinite(n) & np.isfinite(k) & (n > 0) & (k >= 0) & (k <= n) & (n == np.round(n)) & (k == np.round(k)))
    if bad.any():
        r = rows[bad].iloc[0]
        config = ", ".join(f"{c}={r[c]}" for c in KEYS)
        raise UserError(f"{where}: unnecessary_copy row ({config}) has successes={r['successes']} of n={r['n']}; "
                        "counts are whole numbers with 0 <= successes <= n and n > 0: re-run the probe, not an edit")
    dup = rows.duplicated(subset=KEYS, keep=False)
    if dup.any():
        r = rows[dup].iloc[0]
        config = ", ".join(f"{c}={r[c]}" for c in KEYS)
        raise UserError(f"{where}: {int(dup.sum())} unnecessary_copy rows share a configuration (e.g. {config}); "
                        "keep one row per configuration (`costmodel bench --resummarise DIR` rebuilds the summary)")


def model_vs_kernel(directory: str | Path) -> tuple[pd.DataFrame, dict]:
    """Measured copy fractions beside the model, row by row, and a summary of the agreement."""
    df, provenance = read_measurements(directory)
    rows = df[(df["probe"] == "unnecessary_copy") & df["fraction"].notna()]
    if rows.empty:
        raise UserError(f"{directory}: no unnecessary_copy measurements; run `costmodel bench --probe unnecessary_copy`")
    check_counts(rows, directory)
    batch = provenance.get("batch_size_found")
    if not batch:
        raise UserError(f"{directory}: provenance.json has no batch_size_found; the unnecessary_copy probe did not find the step")
    policy = kernel_policy(provenance.get("kernel_release", ""))
    cache: dict[tuple, float] = {}
    model = []
    for r in rows[KEYS].itertuples(index=False):
        key = tuple(int(x) for x in r)
        if key not in cache:
            k, drained, same, pages, huge = key
            cache[key] = model_copy_probability(k, bool(drained), bool(same), pages, bool(huge), int(batch), policy)
        model.append(cache[key])
    out = rows[KEYS + ["n", "successes", "fraction", "ci_low", "ci_high"]].copy()
    out = out.rename(columns={"fraction": "measured_fraction"})
    out["model_p_copy"] = model
    out["position_model"] = np.where(out["drained_first"] == 1, "fixed", "stationary")
    out["inside_ci"] = (out["model_p_copy"] >= out["ci_low"] - 1e-12) & (out["model_p_copy"] <= out["ci_high"] + 1e-12)
    out = out.reset_index(drop=True)
    summary = {
        "directory": str(directory),
        "policy": policy,
        "batch_size": int(batch),
        "rows": int(len(out)),
        "inside_ci": int(out["inside_ci"].sum()),
        "by_position_model": {
            pm: {"rows": int(len(g)), "inside_ci": int(g["inside_ci"].sum()),
                 "max_abs_difference": float((g["model_p_copy"] - g["measured_fraction"]).abs().max())}
            for pm, g in out.groupby("position_model")
        },
    }
    return out, summary


def describe(summary: dict) -> str:
    lines = [f"model ({summary['policy']}, B={summary['batch_size']}) against {summary['directory']}: "
             f"{summary['inside_ci']}/{summary['rows']} measured fractions contain the model's p_copy "
             f"in their 95% interval"]
    for pm, s in summary["by_position_model"].items():
        lines.append(f"  position {pm}: {s['inside_ci']}/{s['rows']} inside, largest |model - measured| "
                     f"{s['max_abs_difference']:.3f}")
    return "\n".join(lines)


# ---- against the simulation ------------------------------------------------------------------


def model_point(values: Mapping[str, object], gap_histogram: GapHistogram | None = None) -> tuple[dict, str]:
    """The parameter point at which the model is compared, and a note on what was substituted."""
    if gap_histogram is None:
        return dict(values), ""
    mean = gap_histogram.mean_s
    hi = registry.NUMERIC["wp_gap_s"].high
    if mean > hi:
        raise UserError(f"gap histogram: mean gap {mean:g} s is beyond wp_gap_s's bound {hi:g} s")
    return (dict(values, gap_model="exponential_time", wp_gap_s=mean),
            f"model: exponential gap with the histogram's mean {mean:.3g} s")


def compare(result: SimulationResult) -> dict:
    """Model value beside each simulated value: ``{"residency": row, "policies": {p: {out: row}}}``
    with rows ``{"model", "sim", "low", "high", "inside"}``; ``note`` says what the model assumed."""
    point, note = model_point(result.values, result.gap_histogram)
    if not isinstance(result.arrivals, Poisson):
        note = "; ".join(filter(None, [note, f"model: Poisson adds (simulated: {result.arrivals.name})"]))
    model = evaluate_point(point, result.policies_run)

    def row(m, est):
        return {"model": float(m), **est.to_dict(), "inside": bool(est.contains(float(m)))}

    # the model's folios per local drain: its local-drain term with a unit price per folio
    per_folio = evaluate_point(dict(point, drain_base_ns=0.0, drain_per_folio_ns=1.0), result.policies_run)
    out = {"note": note, "residency": row(residency_value(point), result.residency), "policies": {}}
    for pol, sim in result.policies.items():
        rows = {k: row(model[pol][k], sim[k]) for k in model[pol] if k != "breakdown_ns"}
        p_drain = model[pol]["p_local_drain"]
        folios = per_folio[pol]["breakdown_ns"]["local_drain"] / p_drain if p_drain > 0 else 0.0
        rows["mean_local_drain_folios"] = row(folios, sim["mean_local_drain_folios"])
        rows["breakdown_ns"] = {k: row(model[pol]["breakdown_ns"][k], v) for k, v in sim["breakdown_ns"].items()}
        out["policies"][pol] = rows
    return out


def residency_simulated(values: Mapping[str, object], points: int = 5, faults: int = 200_000, seed: int = 1,
                        gap_models: Sequence[str] | None = None) -> pd.DataFrame:
    """Simulated residency with its confidence interval at a few gaps per gap model, from
    :func:`costmodel.simulate.simulate`; same columns as :func:`costmodel.chartdata.residency_data`,
    ``source`` = "simulation"."""
    models = tuple(gap_models or registry.CATEGORICAL["gap_model"].choices)
    rows = []
    for g in models:
        param = axes.GAP_PARAM[g]
        if param == "adds_between":
            xs = np.unique(np.round(np.linspace(0, min(2 * int(values["batch_size"]), 64), points)))
        else:
            xs = axes.axis_values(param, points, lo=1e-6, hi=1e-2)
        for i, v in enumerate(xs):
            point = dict(values, gap_model=g, **{param: int(v) if registry.NUMERIC[param].integer else float(v)})
            est = simulate(point, ("drain_local",), faults=faults, seed=seed + i).residency
            rows.append({"gap_model": g, "gap_param": param, "gap": float(v), "gap_unit": registry.NUMERIC[param].unit,
                         "residency": est.value, "source": "simulation", "ci_low": est.low, "ci_high": est.high})
    return pd.DataFrame(rows)


def measurement_sets() -> dict[str, Path]:
    """name -> directory of every committed measurement set (``data/measurements/<id>``)."""
    root = paramfile.DATA_DIR / "measurements"
    return {p.name: p for p in sorted(root.iterdir()) if p.is_dir()} if root.is_dir() else {}


def model_vs_simulation(values: Mapping[str, object], faults: int = 200_000, seed: int = 0) -> pd.DataFrame:
    """One row per (policy, output): ``model``, ``sim``, ``low``, ``high``, ``inside``; the
    residency as policy "(all)"."""
    cmp = compare(simulate(values, faults=faults, seed=seed))
    rows = [{"policy": "(all)", "output": "residency", **cmp["residency"]}]
    for pol, outs in cmp["policies"].items():
        for key, row in outs.items():
            if key == "breakdown_ns":
                rows += [{"policy": pol, "output": f"breakdown_{k}_ns", **r} for k, r in row.items()]
            else:
                rows.append({"policy": pol, "output": key, **row})
    return pd.DataFrame(rows)


def kernel_rows(directory: str | Path) -> tuple[pd.DataFrame, dict]:
    """The probe's cross-CPU, single small page rows of a measurement set, from
    :func:`model_vs_kernel` (which models every row of the probe), as ``adds_between``,
    ``drained_first``, ``n``, ``measured``, ``measured_low``, ``measured_high``; and that
    function's summary over all rows (its ``policy`` is the kernel's)."""
    df, summary = model_vs_kernel(directory)
    sel = df[(df["same_cpu"].astype(int) == 0) & (df["pages"].astype(int) == 1) & (df["huge"].astype(int) == 0)]
    out = pd.DataFrame({"adds_between": sel["adds_between"].astype(int), "drained_first": sel["drained_first"].astype(bool),
                        "n": sel["n"].astype(int), "measured": sel["measured_fraction"].astype(float),
                        "measured_low": sel["ci_low"].astype(float), "measured_high": sel["ci_high"].astype(float)})
    return out.reset_index(drop=True), summary


def unnecessary_copy_validation(values: Mapping[str, object], adds_between: Sequence[int] | None = None,
                                measured: pd.DataFrame | None = None, faults: int = 50_000,
                                seed: int = 0, policy: str = "drain_local") -> pd.DataFrame:
    """Model, simulation and (if given) measurement of the probe's cross-CPU copy fraction, one
    row per (adds_between, drained_first): ``model``, ``sim``, ``sim_low``, ``sim_high``, and the
    measured columns of :func:`kernel_rows` where given. ``policy``: the measured kernel's
    (``summary["policy"]`` of :func:`kernel_rows`)."""
    values = registry.as_point(values)
    if measured is not None and not measured.empty:
        cells = sorted({(int(a), bool(d)) for a, d in zip(measured["adds_between"], measured["drained_first"])})
    else:
        B = int(values["batch_size"])
        ks = adds_between if adds_between is not None else sorted({0, 1, B // 4, B // 2, B - 2, B - 1, B + 4})
        cells = [(int(k), d) for k in ks if k >= 0 for d in (False, True)]
    rows = []
    for i, (k, drained) in enumerate(cells):
        point = probe_point(values, k, drained)
        model = evaluate_point(point, (policy,))[policy]["p_copy"]
        sim = simulate(point, (policy,), faults=faults, seed=seed + i).policies[policy]["p_copy"]
        rows.append({"adds_between": k, "drained_first": drained, "model": model,
                     "sim": sim.value, "sim_low": sim.low, "sim_high": sim.high})
    out = pd.DataFrame(rows)
    if measured is not None and not measured.empty:
        out = out.merge(measured, on=["adds_between", "drained_first"], how="left")
    return out


def agreement(df: pd.DataFrame) -> dict:
    """Counts and largest deviations of the model against each other source in ``df``."""
    out: dict = {"points": int(len(df))}
    for src, lo, hi in (("sim", "sim_low", "sim_high"), ("measured", "measured_low", "measured_high")):
        if src not in df.columns or df[src].isna().all():
            continue
        d = df.dropna(subset=[src])
        inside = (d["model"] >= d[lo] - 1e-12) & (d["model"] <= d[hi] + 1e-12)
        out[f"model_inside_{src}_interval"] = f"{int(inside.sum())} of {len(d)}"
        out[f"max_abs_model_minus_{src}"] = float(np.max(np.abs(d["model"] - d[src]))) if len(d) else math.nan
    return out


def simulation_agreement(df: pd.DataFrame) -> dict:
    """For :func:`model_vs_simulation`: how many model values fall inside the simulation's
    intervals (``outputs``: those the simulation gives; ``outputs_listed``: every row, the
    ones it does not give named), and the largest relative deviation among those not zero."""
    d = df.dropna(subset=["sim"])
    nz = d[np.abs(d["model"]) > 1e-12]
    rel = np.abs(nz["sim"] - nz["model"]) / np.abs(nz["model"])
    missing = df[df["sim"].isna()]
    return {"outputs": int(len(d)), "outputs_listed": int(len(df)),
            "listed_but_not_simulated": ", ".join(f"{r.policy} {r.output}" for r in missing.itertuples()) or "none",
            "model_inside_interval": int(d["inside"].sum()),
            "max_relative_deviation": float(rel.max()) if len(rel) else 0.0,
            "worst": f"{nz.loc[rel.idxmax(), 'policy']} {nz.loc[rel.idxmax(), 'output']}" if len(rel) else ""}


def residency_agreement(values: Mapping[str, object], simulated: pd.DataFrame) -> dict:
    """Closed-form residency at each simulated point against the simulation's interval."""
    inside, worst = 0, 0.0
    for r in simulated.itertuples(index=False):
        param = r.gap_param
        point = dict(values, gap_model=r.gap_model,
                     **{param: int(r.gap) if registry.NUMERIC[param].integer else float(r.gap)})
        m = residency_value(point)
        inside += int(r.ci_low - 1e-12 <= m <= r.ci_high + 1e-12)
        worst = max(worst, abs(m - r.residency))
    return {"points": int(len(simulated)), "closed_form_inside_interval": f"{inside} of {len(simulated)}",
            "max_abs_closed_form_minus_simulation": worst}
