"""Distinct colours for any number of series, generated, so a new policy or cost part never
silently takes another's colour.

The first colours are a fixed, colour-blind-aware set (so the usual charts keep their look); past
them, hues are spread by the golden angle in HSL at a fixed saturation and two lightness levels,
which keeps every colour distinct from all earlier ones however many are asked for.
"""

from __future__ import annotations

import colorsys

#: the leading colours, in order (the six policies and ten cost parts of the first version used them)
BASE = ("#7f7f7f", "#d62728", "#1f77b4", "#9467bd", "#2ca02c", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
        "#bcbd22")
_GOLDEN = 0.381966  # 1 - 1/phi: successive hues as far apart as possible


def _hex(rgb) -> str:
    return "#" + "".join(f"{round(c * 255):02x}" for c in rgb)


def colors(n: int, base: tuple[str, ...] = BASE) -> list[str]:
    """``n`` distinct ``#rrggbb`` colours: ``base`` first, then generated ones."""
    if n < 0:
        raise ValueError("n must be >= 0")
    out = list(base[:n])
    i = 0
    while len(out) < n:
        hue = (0.07 + i * _GOLDEN) % 1.0
        light = 0.42 if (i // 7) % 2 == 0 else 0.62
        c = _hex(colorsys.hls_to_rgb(hue, light, 0.62))
        if c not in out:
            out.append(c)
        i += 1
    return out


#: dash patterns for lines that may overlap, one per series (solid first)
DASHES = ([], [6, 3], [2, 2], [8, 3, 2, 3], [1, 3], [10, 4], [4, 2, 1, 2], [12, 3, 3, 3])


def dashes(n: int) -> list[list[int]]:
    """``n`` distinct stroke-dash patterns (repeating the set with a longer gap past its end)."""
    out = []
    for i in range(n):
        d = list(DASHES[i % len(DASHES)])
        if i >= len(DASHES):
            d = (d or [14]) + [2 + 2 * (i // len(DASHES))]
        out.append(d)
    return out
