"""Model against simulation against the real kernel, with the agreement stated in numbers.

- :func:`model_vs_simulation`: every output of every policy at one point, the model's value beside
  the simulated value and its confidence interval (:func:`costmodel.simulate.compare`), flat.
- :func:`unnecessary_copy_validation`: the unnecessary-copy probe's cross-CPU experiment (a page
  written on another CPU than the one whose batch holds it, after ``adds_between`` other adds,
  with or without a drain first) predicted by the model (``drain_local``'s ``p_copy`` at
  ``gap_model=fixed_count``, ``p_same_cpu=0``, no other reference), simulated, and measured.
- :func:`agreement`: the numbers a reader wants: how many model values fall inside the
  simulation's and the measurement's intervals, and the largest deviations.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from . import registry
from .evaluate import evaluate_point

#: the kernel's policy since 5.18, whose copies the probe counts
PROBE_POLICY = "drain_local"


def measurement_sets() -> dict[str, Path]:
    """name -> directory of every committed measurement set (``data/measurements/<id>``)."""
    from .paramfile import DATA_DIR

    root = DATA_DIR / "measurements"
    return {p.name: p for p in sorted(root.iterdir()) if p.is_dir()} if root.is_dir() else {}


def model_vs_simulation(values: Mapping[str, object], faults: int = 200_000, seed: int = 0) -> pd.DataFrame:
    """One row per (policy, output): ``model``, ``sim``, ``low``, ``high``, ``inside``; the
    residency as policy "(all)"."""
    from .simulate import compare, simulate

    cmp = compare(simulate(values, faults=faults, seed=seed))
    rows = [{"policy": "(all)", "output": "residency", **cmp["residency"]}]
    for pol, outs in cmp["policies"].items():
        for key, row in outs.items():
            if key == "breakdown_ns":
                rows += [{"policy": pol, "output": f"breakdown_{k}_ns", **r} for k, r in row.items()]
            else:
                rows.append({"policy": pol, "output": key, **row})
    return pd.DataFrame(rows)


def probe_point(values: Mapping[str, object], adds_between: int, drained_first: bool) -> dict:
    """The parameter point of one cell of the probe's cross-CPU experiment."""
    point = dict(values, gap_model="fixed_count", adds_between=int(adds_between), p_same_cpu=0.0,
                 p_exclusive=0.0, p_other_ref=0.0, p_large_folio=0.0,
                 explicit_drains_per_s=0.0, drain_all_per_s=0.0)
    if drained_first:
        point.update(position_model="fixed", batch_position=0)
    else:
        point.update(position_model="stationary")
    return registry.resolve(point)


def kernel_rows(directory: str | Path) -> tuple[pd.DataFrame, dict]:
    """The probe's cross-CPU, single small page rows of a measurement set, from
    :func:`costmodel.validate.model_vs_kernel` (which models every row of the probe), as
    ``adds_between``, ``drained_first``, ``n``, ``measured``, ``measured_low``, ``measured_high``;
    and that function's summary over all rows."""
    from .validate import model_vs_kernel

    df, summary = model_vs_kernel(directory)
    sel = df[(df["same_cpu"].astype(int) == 0) & (df["pages"].astype(int) == 1) & (df["huge"].astype(int) == 0)]
    out = pd.DataFrame({"adds_between": sel["adds_between"].astype(int), "drained_first": sel["drained_first"].astype(bool),
                        "n": sel["n"].astype(int), "measured": sel["measured_fraction"].astype(float),
                        "measured_low": sel["ci_low"].astype(float), "measured_high": sel["ci_high"].astype(float)})
    return out.reset_index(drop=True), summary


def unnecessary_copy_validation(values: Mapping[str, object], adds_between: Sequence[int] | None = None,
                                measured: pd.DataFrame | None = None, faults: int = 50_000,
                                seed: int = 0) -> pd.DataFrame:
    """Model, simulation and (if given) measurement of the probe's copy fraction, one row per
    (adds_between, drained_first): ``model``, ``sim``, ``sim_low``, ``sim_high``, and the
    measured columns of :func:`kernel_rows` where given."""
    from .simulate import simulate

    values = registry.resolve(values)
    if measured is not None and not measured.empty:
        cells = sorted({(int(a), bool(d)) for a, d in zip(measured["adds_between"], measured["drained_first"])})
    else:
        B = int(values["batch_size"])
        ks = adds_between if adds_between is not None else sorted({0, 1, B // 4, B // 2, B - 2, B - 1, B + 4})
        cells = [(int(k), d) for k in ks if k >= 0 for d in (False, True)]
    rows = []
    for i, (k, drained) in enumerate(cells):
        point = probe_point(values, k, drained)
        model = evaluate_point(point, (PROBE_POLICY,))[PROBE_POLICY]["p_copy"]
        sim = simulate(point, (PROBE_POLICY,), faults=faults, seed=seed + i).policies[PROBE_POLICY]["p_copy"]
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
    intervals, and the largest relative deviation among the outputs that are not zero."""
    d = df.dropna(subset=["sim"])
    nz = d[np.abs(d["model"]) > 1e-12]
    rel = np.abs(nz["sim"] - nz["model"]) / np.abs(nz["model"])
    return {"outputs": int(len(d)), "model_inside_interval": int(d["inside"].sum()),
            "max_relative_deviation": float(rel.max()) if len(rel) else 0.0,
            "worst": f"{nz.loc[rel.idxmax(), 'policy']} {nz.loc[rel.idxmax(), 'output']}" if len(rel) else ""}


def residency_agreement(values: Mapping[str, object], simulated: pd.DataFrame) -> dict:
    """Closed-form residency at each simulated point against the simulation's interval."""
    from .evaluate import residency_value

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
