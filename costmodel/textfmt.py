"""How every text of the project writes a number: times in the unit of their size, four
significant digits, thousands separated, never an exponent. Light (no plotting imports), so the
calibration's notes and the report's tables share it."""

from __future__ import annotations

import math


def sig4(v: float) -> str:
    """Four significant digits without an exponent, thousands separated, no trailing zeros."""
    if v == 0:
        return "0"
    digits = max(0, 3 - int(math.floor(math.log10(abs(v)))))
    s = f"{round(v, digits):,.{digits}f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


def format_ns(ns) -> str:
    """A time in ns as the report writes every time: ns below 10 us, then us, ms, s (each while
    the number is below 10,000 of that unit), four significant digits, thousands separated, no
    exponent. ``format_ns(27420.0) == '27.42 us'`` (with the micro sign)."""
    if ns is None or (isinstance(ns, float) and not math.isfinite(ns)):
        return "-"
    x = float(ns)
    if x == 0:
        return "0 ns"
    for scale, unit in ((1.0, "ns"), (1e3, "\u00b5s"), (1e6, "ms")):
        if abs(x) / scale < 1e4:
            return f"{sig4(x / scale)} {unit}"
    return f"{sig4(x / 1e9)} s"
