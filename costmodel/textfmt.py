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


def _small(v: float) -> str:
    """A tiny non-time number without an exponent: four significant digits after the zeros."""
    digits = 3 - int(math.floor(math.log10(abs(v))))
    return f"{v:.{digits}f}".rstrip("0").rstrip(".")


def format_value(x, unit: str = "") -> str:
    """A value as every table, label and command of the project writes it: times (ns, s) by
    :func:`format_ns`, whole numbers in full with thousands separated, anything else to four
    significant digits, never an exponent; with its unit unless it is a time (which carries its
    own) or a probability. None, NaN and infinities are '-'."""
    if x is None or isinstance(x, str):
        return "-" if x is None else x
    if isinstance(x, bool):
        return str(x)
    v = float(x)
    if not math.isfinite(v):
        return "-"
    if unit == "ns":
        return format_ns(v)
    if unit == "s":
        return "0 s" if v == 0 else format_ns(v * 1e9)
    if v.is_integer() and abs(v) < 1e18:
        text = f"{int(v):,}"
    elif abs(v) < 1e-4:
        text = "0" if v == 0 else _small(v)
    else:
        text = sig4(v)
    return f"{text} {unit}".strip() if unit not in ("", "probability", "flag") else text
