"""From raw samples to the tidy summary: medians and means with bootstrap intervals and tail
percentiles, fractions with a Wilson interval, counters per operation; and the batch size read off
the unnecessary-copy step."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pandas as pd

from .. import stats

from . import catalog as _catalog
from .catalog import COUNTERS, MEASURES, ProbeSpec
from .parse import ProbeOutput

BOOTSTRAP_RESAMPLES = 1000
CONFIDENCE = 0.95
#: A copy fraction at or below this counts as "no copies" when reading the batch-size step.
STEP_LOW = 0.1
#: ... and one at or above this as "copies" below the step.
STEP_HIGH = 0.5


def wilson_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (NaN, NaN when n == 0)."""
    return stats.wilson_interval(successes, n, stats.z_value(confidence))


def _bootstrap_interval(values: np.ndarray, statistic, seed: int, resamples: int,
                        confidence: float) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    if n == 1:
        return float(values[0]), float(values[0])
    rng = np.random.default_rng(seed)
    stats_ = np.empty(resamples)
    chunk = max(1, 4_000_000 // n)
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        stats_[start:stop] = statistic(values[idx], axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(stats_, [alpha, 1 - alpha])
    return float(low), float(high)


def bootstrap_median_interval(values: np.ndarray, seed: int, resamples: int = BOOTSTRAP_RESAMPLES,
                              confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile bootstrap interval of the median; deterministic for a given seed."""
    return _bootstrap_interval(values, np.median, seed, resamples, confidence)


def bootstrap_mean_interval(values: np.ndarray, seed: int, resamples: int = BOOTSTRAP_RESAMPLES,
                            confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean; deterministic for a given seed.

    With a heavy tail and few samples it is too narrow (a rare slow event missing from the sample
    is missing from every resample): read it together with n and p99.
    """
    return _bootstrap_interval(values, np.mean, seed, resamples, confidence)


def _seed(probe: str, key: tuple) -> int:
    return zlib.crc32(f"{probe}|{key!r}".encode())


def summarize(spec: ProbeSpec, output: ProbeOutput) -> pd.DataFrame:
    """One tidy row per measured configuration (and per configuration the probe skipped)."""
    samples = output.samples
    config = [c for c in spec.all_config]
    rows: list[dict] = []
    if len(samples):
        grouped = samples.groupby([*config, "measure"], dropna=False, sort=True)
        counters = output.counters
        for key, group in grouped:
            key = key if isinstance(key, tuple) else (key,)
            row = {"probe": spec.name}
            row.update({c: (None if pd.isna(v) else v) for c, v in zip(config, key[:-1])})
            measure = key[-1]
            values = group["value"].to_numpy(dtype=float)
            n = len(values)
            row.update(measure=measure, n=n, unit=MEASURES[measure])
            if MEASURES[measure] == "fraction":
                successes = int(values.sum())
                low, high = wilson_interval(successes, n)
                row.update(successes=successes, fraction=successes / n, ci_low=low, ci_high=high)
            else:
                low, high = bootstrap_median_interval(values, _seed(spec.name, key))
                mean_low, mean_high = bootstrap_mean_interval(values, _seed(spec.name, ("mean", *key)))
                p10, median, p90, p99 = np.percentile(values, [10, 50, 90, 99])
                row.update(median_ns=float(median), p10=float(p10), p90=float(p90), p99=float(p99),
                           ci_low=low, ci_high=high, mean_ns=float(values.mean()),
                           mean_ci_low=mean_low, mean_ci_high=mean_high)
                size = row.get("size_bytes")
                if size is not None and median > 0:
                    row["bandwidth_gbps"] = float(size) / float(median)
                for cname, column in COUNTERS.items():
                    if counters is None or not len(counters):
                        continue
                    match = counters["name"] == cname
                    for c, v in zip(config, key[:-1]):
                        match &= counters[c].isna() if pd.isna(v) else (counters[c] == v)
                    match = match.fillna(False)
                    if match.any():
                        hit = counters[match]
                        row[column] = float(hit["total"].sum()) / float(hit["ops"].sum())
            if "round" in group.columns and group["round"].nunique() > 1:
                per_round = group.groupby("round")["value"].mean()
                row.update(rounds=int(per_round.size), round_sd=float(per_round.std(ddof=1)))
            rows.append(row)
    for skip in output.skips:
        if skip["config"]:
            row = {"probe": spec.name, **skip["config"], "n": 0, "skipped_reason": skip["reason"]}
            rows.append(row)
    return tidy_frame(rows)


#: Result columns by type; every other result column is a float.
TEXT_COLUMNS = ("probe", "measure", "unit", "skipped_reason")
COUNT_COLUMNS = ("n", "successes", "rounds")


def float_columns() -> tuple[str, ...]:
    """The float result columns, read from the catalog when called (so a column added to it counts)."""
    return tuple(c for c in _catalog.RESULT_COLUMNS if c not in TEXT_COLUMNS and c not in COUNT_COLUMNS)


def tidy_frame(rows: list[dict] | pd.DataFrame) -> pd.DataFrame:
    """The summary in memory: every probe's rows in one frame with the columns of
    :func:`catalog.summary_columns` (every probe's keys) in their fixed order and types (integers
    stay integers, NA empty)."""
    frame = pd.DataFrame(rows) if not isinstance(rows, pd.DataFrame) else rows.copy()
    return _typed(frame, _catalog.summary_columns(), _catalog.config_columns())


def probe_table(frame: pd.DataFrame, spec: ProbeSpec) -> pd.DataFrame:
    """One probe's table as it is written to ``measurements/<probe>.csv``: its rows, its own
    configuration keys and the result columns (no ``probe`` column: the file name says it). A
    configuration column that is not the probe's but holds a value in its rows (a key the probe
    has since dropped, in a set written before) is kept after its own keys, so nothing is lost."""
    rows = frame[frame["probe"] == spec.name] if "probe" in frame.columns else frame
    kinds = {name: (key.kind, key.description) for name, key in spec.keys.items()}
    others = _catalog.config_columns()
    extra = [c for c in others if c not in kinds and c in rows.columns and rows[c].notna().any()]
    kinds.update({c: others[c] for c in extra})
    columns = [*spec.all_config, *extra, *_catalog.RESULT_COLUMNS]
    return _typed(rows, columns, kinds)


def _typed(frame: pd.DataFrame, columns: list[str], config: dict[str, tuple[type, str]]) -> pd.DataFrame:
    frame = frame.copy()
    for col in columns:
        if col not in frame.columns:
            frame[col] = pd.NA
    frame = frame[columns]
    for col, (kind, _) in config.items():
        if col in columns:
            frame[col] = frame[col].astype("Int64" if kind is int else "string")
    for col in TEXT_COLUMNS:
        if col in columns:
            frame[col] = frame[col].astype("string")
    for col in COUNT_COLUMNS:
        frame[col] = frame[col].astype("Int64")
    for col in float_columns():
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    return frame.reset_index(drop=True)


def infer_batch_size(summary: pd.DataFrame) -> int | None:
    """Batch size B from the unnecessary-copy step, or None if no clean step is seen.

    Among cross-CPU, drained-first, one-page, small-page rows, k* is the smallest adds_between
    whose copy fraction is at or below STEP_LOW. It counts as the step only if every larger k
    measured stays that low (two points at least), and the k just below copied at least STEP_HIGH
    of the time. The target sat at position 0, so the add that filled the batch was number k*+1
    after it: B = k* + 1.
    """
    if summary is None or not len(summary):
        return None
    sel = summary[
        (summary["probe"] == "unnecessary_copy")
        & (summary["op"] == "wp_write")
        & (summary["measure"] == "copied")
        & (summary["drained_first"] == 1)
        & (summary["same_cpu"] == 0)
        & (summary["pages"] == 1)
        & (summary["huge"] == 0)
        & (summary["n"] > 0)
    ].dropna(subset=["fraction"])
    if len(sel) < 3:
        return None
    sel = sel.sort_values("adds_between")
    ks = sel["adds_between"].astype(int).to_list()
    fr = sel["fraction"].to_list()
    low = [i for i, f in enumerate(fr) if f <= STEP_LOW]
    if not low:
        return None
    k_star = low[0]
    if k_star == 0 or k_star > len(ks) - 2:
        return None   # always low, or drops only at the last k: no step seen
    if any(f > STEP_LOW for f in fr[k_star:]):
        return None   # comes back after dropping: not a clean step
    if fr[k_star - 1] < STEP_HIGH or ks[k_star - 1] != ks[k_star] - 1:
        return None
    return ks[k_star] + 1
