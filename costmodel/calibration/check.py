"""The posterior-predictive check of a calibrated set: every figure its fits were made from, read
afresh from the measurement directory, against the model's prediction at the set's values
(through the forward expressions of :mod:`costmodel.model.forward`). Every shipped set passes it
(``tests/test_posterior_predictive.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import registry, stats
from ..model.forward import measurable
from ..paramfile import ParamSet
from .adapters import FIT_GROUPS, read_measurements
from .recipes import FLIP_RATE, copy_fraction, evaluate_measurable


#: a calibrated set passes when every measured figure lies within this many standard errors of
#: the model's prediction at the set (99.9 %), its errors widened by the fit's robust scatter
PREDICTIVE_Z = 3.29
#: parameter files store 5 significant digits: a prediction may differ by that rounding
_ROUNDING = 2e-4
#: how closely a recipe's model form is known to follow the kernel, beyond measurement error, and
#: why: a figure within this share of the prediction passes too. Exactly determined recipes have
#: none, so any bias in them (a formula restated by hand) shows.
MODEL_FORM_TOLERANCE = {
    "drain": (0.07, "the local drain is a straight line in the folios it moves; on Zen 5 the first folio costs"
                    " 36 ns (3.4 %) less than the line through 2..30, on Zen 4 72 ns (6.5 %) less than the means'"
                    " line through 1..30"),
}


def _robust_scale(r: np.ndarray) -> float:
    """Robust spread of weighted residuals around their median (1.4826 MAD), at least 1: points
    that scatter more than their errors widen the band, a common offset does not."""
    r = r[np.isfinite(r)]
    if r.size < 3:
        return 1.0
    return max(1.0, 1.4826 * float(np.median(np.abs(r - np.median(r)))))


def posterior_predictive(paramset: ParamSet, directory: str | Path) -> pd.DataFrame:
    """Every figure the set's fits were made from, read afresh from the measurement directory,
    beside the model's prediction at the set's values (through the forward expressions of
    :mod:`costmodel.model.forward`). One row per figure: fit, measurement, observed, predicted,
    tolerance, inside. Fits the set did not make (assumed parameters) contribute nothing."""
    df, provenance = read_measurements(directory)
    values = paramset.point()
    fitted = {f["name"] for f in paramset.fit if f.get("n_points", 0) > 0}
    rng = np.random.default_rng(0)
    rows: list[dict] = []

    def add(fit, label, observed, predicted, tol):
        rows.append({"fit": fit, "measurement": label, "observed": float(observed), "predicted": float(predicted),
                     "tolerance": float(tol), "inside": bool(abs(observed - predicted) <= tol)})

    def tol_of(obs_value, se, scale=1.0):
        return PREDICTIVE_Z * se * scale + _ROUNDING * abs(obs_value) + 1e-9

    for group, _params, func in FIT_GROUPS:
        if group not in fitted:
            continue
        outcome = func(df, provenance, rng, 2, known=values)
        res = outcome.record["residuals"]
        if res and all("forward" in row for row in res):
            # each figure names the measured quantities it is: the first, less the second if any
            for row in res:
                names = row["forward"]
                expr = measurable(names[0]) - (measurable(names[1]) if len(names) > 1 else 0)
                add(group, row["measurement"], row["observed_ns"], evaluate_measurable(expr, values),
                    tol_of(row["observed_ns"], row["se_ns"]))
        elif group == "fault_and_copy":
            for row, name in zip(res, outcome.record["forward"]):
                pred = evaluate_measurable(measurable(name), values)
                add(group, row["measurement"], row["observed_ns"], pred, tol_of(row["observed_ns"], row["se_ns"]))
        elif group == "remote_drain":
            exprs = [measurable("drain_all_base_ns")] + [measurable("drain_all_base_ns") + measurable(n)
                                                         for n in outcome.record["forward"][1:]]
            for row, expr in zip(res, exprs):
                add(group, row["measurement"], row["observed_ns"], evaluate_measurable(expr, values),
                    tol_of(row["observed_ns"], row["se_ns"]))
        elif group in ("shootdown", "drain"):
            xname, mname = ("target_cpus", "shootdown_ns") if group == "shootdown" else ("folios", "local_drain_ns")
            expr = measurable(mname, values["shootdown_model"])
            x = np.array([r[xname] for r in res], float)
            y = np.array([r["observed_ns"] for r in res], float)
            se = np.array([r.get("se_ns", max(abs(r["observed_ns"]) * 0.01, 1.0)) for r in res], float)
            at = values
            if group == "drain" and "fault_drain" in fitted and "intercept_ns" in outcome.record:
                # the set's drain_base_ns is a fault's (fault_drain); drain_cost's points are drains
                # inside madvise(MADV_COLD), checked at the base its own line found
                at = {**values, "drain_base_ns": outcome.record["intercept_ns"]}
            pred = np.broadcast_to(np.asarray(evaluate_measurable(expr, at, **{
                "targets" if group == "shootdown" else "folios": x}), float), x.shape)
            scale = _robust_scale((y - pred) / se)
            form = MODEL_FORM_TOLERANCE.get(group, (0.0, ""))[0]
            for xi, yi, si, pi in zip(x, y, se, pred):
                add(group, f"{group} at {xname}={xi:g}", yi, pi, max(tol_of(yi, si, scale), form * abs(yi)))
        elif group == "batch_size":
            k = np.array([r["adds_between"] for r in res], float)
            d = np.array([r["drained_first"] for r in res], bool)
            n = np.array([r["n"] for r in res], float)
            frac = np.array([r["observed_fraction"] for r in res], float)
            pred = copy_fraction(int(values["batch_size"]), k, d)
            z = stats.z_value(0.999)
            for ki, di, ni, fi, pi in zip(k, d, n, frac, pred):
                lo, hi = stats.wilson_interval(round(fi * ni), int(ni), z)
                # the fit allows a 1 % flip rate (stray drains): a prediction within it of the interval passes
                rows.append({"fit": group, "measurement": f"copy fraction k={ki:g} drained_first={int(di)}",
                             "observed": float(fi), "predicted": float(pi), "tolerance": float(max(hi - lo, 0) / 2),
                             "inside": bool(lo - FLIP_RATE <= pi <= hi + FLIP_RATE)})
        else:   # a new fit group: give its residual rows their "forward" names, or a check here
            raise RuntimeError(f"posterior_predictive: no check for the fit group {group!r}")
    return pd.DataFrame(rows, columns=["fit", "measurement", "observed", "predicted", "tolerance", "inside"])
