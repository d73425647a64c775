"""The model against the real kernel: measured unnecessary copies beside ``p_copy``.

Each ``unnecessary_copy`` row of a measurement directory is a configuration the model can
express exactly: a gap of ``adds_between`` other folios (``fixed_count``), the target at
position 0 right after a drain (``fixed``) or at an unknown position (``stationary``, uniform
with no drains), the writer on the holding CPU or not (``p_same_cpu`` 1 or 0), small or huge
folios, no other references, the batch size the probe found, and the policy of the kernel that
ran (from its release). Several target pages first-touched in a row are modelled page by page:
page i sits at position i and sees the later targets plus the k extra adds before its write.

Agreement means the model's probability lies inside the measurement's binomial interval.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from . import registry
from .errors import UserError
from .evaluate import evaluate_point

KEYS = ["adds_between", "drained_first", "same_cpu", "pages", "huge"]


def kernel_policy(release: str) -> str:
    """The drain policy of a kernel release string such as ``6.18.44-fc``."""
    m = re.match(r"(\d+)\.(\d+)", str(release))
    if not m:
        raise UserError(f"kernel_release {release!r} is not a Linux version; set it in provenance.json")
    version = (int(m.group(1)), int(m.group(2)))
    if version <= (5, 8):
        return "mapcount"
    if version < (5, 18):
        return "copy_if_referenced"
    return "drain_local"


def model_copy_probability(adds_between: int, drained_first: bool, same_cpu: bool, pages: int, huge: bool,
                           batch_size: int, policy: str) -> float:
    """P(copy) of one written target page, averaged over the ``pages`` targets of a trial."""
    base = dict(gap_model="fixed_count", explicit_drains_per_s=0, drain_all_per_s=0, p_exclusive=0,
                p_other_ref=0, p_large_folio=1 if huge else 0, p_same_cpu=1 if same_cpu else 0,
                batch_size=batch_size)
    total = 0.0
    for i in range(pages):
        later = pages - 1 - i  # targets first-touched after this one
        if drained_first:
            if i > batch_size - 1:  # the batch filled and flushed before this page came
                position = dict(position_model="fixed", batch_position=i % batch_size)
            else:
                position = dict(position_model="fixed", batch_position=i)
        else:
            position = dict(position_model="stationary")
        values = registry.resolve(dict(base, adds_between=adds_between + later, **position))
        total += evaluate_point(values, [policy])[policy]["p_copy"]
    return total / pages


def model_vs_kernel(directory: str | Path) -> tuple[pd.DataFrame, dict]:
    """Measured copy fractions beside the model, row by row, and a summary of the agreement."""
    from .bench import read_measurements

    df, provenance = read_measurements(directory)
    rows = df[(df["probe"] == "unnecessary_copy") & df["fraction"].notna()]
    if rows.empty:
        raise UserError(f"{directory}: no unnecessary_copy measurements; run `costmodel bench --probe unnecessary_copy`")
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
