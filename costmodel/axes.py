"""The values a chart axis or a slider takes for a parameter: its view range, whether it is
logarithmic, and evenly spaced points across it. Shared by the charts, the browser's formulas and
the checks that sweep a parameter (validate), which must not depend on the charts themselves.
"""

from __future__ import annotations

import numpy as np

from . import registry
from .errors import UserError

#: remote_cpus for the cost chart
CPU_RANGE = (1, 256)
#: where an axis spans more than the interesting part of its registry bounds
VIEW_RANGES: dict[str, tuple[float, float]] = {
    "remote_cpus": CPU_RANGE,
    "wp_gap_s": (1e-7, 1e-1),
    "adds_between": (0, 64),
}
#: lowest value shown on a log axis whose registry bound is 0, as a fraction of the upper bound
LOG_FLOOR_FRACTION = 1e-9
#: the parameter that measures the gap under each gap model
GAP_PARAM = {"fixed_count": "adds_between", "fixed_time": "wp_gap_s", "exponential_time": "wp_gap_s"}
#: a log slider (the report's and the notebook explorer's) moves in steps of this many decades
LOG_STEP = 0.01



def slider_is_log(name: str) -> bool:
    """Whether a slider of ``name`` is logarithmic: where the registry says so, and wherever its
    bounds span three decades or more (machine costs of 0 .. 1e6 ns, up to 4096 CPUs), which a
    linear slider could not set to a typical value."""
    e = registry.NUMERIC[name]
    if e.log_scale:
        return True
    if e.probability:
        return False
    return e.high / max(e.low, 1.0) >= 1e3


def axis_is_log(name: str, lo: float | None = None, hi: float | None = None) -> bool:
    """Whether a chart axis of ``name`` over ``lo`` .. ``hi`` (default: its view range) is
    logarithmic: where the registry says so, or where the range spans two decades or more."""
    e = registry.NUMERIC[name]
    if e.log_scale:
        return True
    if e.probability:
        return False
    if lo is None or hi is None:
        lo, hi = VIEW_RANGES.get(name, (e.low, e.high))
    return hi / max(lo, 1.0) >= 100


def log_floor(name: str) -> float:
    """The smallest positive value a log axis or slider of ``name`` shows: its lower bound if
    positive, else 1 for whole numbers and 1e-9 of the upper bound otherwise (the slider's
    leftmost step then stands for 0)."""
    e = registry.NUMERIC[name]
    if e.low > 0:
        return float(e.low)
    return 1.0 if e.integer else e.high * LOG_FLOOR_FRACTION


def view_range(name: str) -> tuple[float, float]:
    e = registry.NUMERIC[name]
    lo, hi = VIEW_RANGES.get(name, (e.low, e.high))
    if axis_is_log(name):
        lo = max(lo, log_floor(name))
    return float(lo), float(hi)


def axis_values(name: str, n: int = 200, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """``n`` values of ``name`` across its view range (log-spaced for log parameters; every
    integer when an integer range holds no more than ``n``)."""
    if name not in registry.NUMERIC:
        if name in registry.CATEGORICAL:
            raise UserError(f"{name} is categorical; a chart axis needs a numeric parameter")
        raise registry.unknown_parameter(name)
    e = registry.NUMERIC[name]
    vlo, vhi = view_range(name)
    lo = vlo if lo is None else registry.parse_value(name, lo)
    hi = vhi if hi is None else registry.parse_value(name, hi)
    if e.integer and hi - lo + 1 <= n:
        return np.arange(int(lo), int(hi) + 1, dtype=float)
    if axis_is_log(name, lo, hi):
        vals = np.geomspace(max(lo, log_floor(name)), hi, n)
    else:
        vals = np.linspace(lo, hi, n)
    if e.integer:
        vals = np.unique(np.round(vals))
    return vals
