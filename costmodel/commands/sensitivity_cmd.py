"""``costmodel sensitivity``: which parameters the verdict rests on, what value of each would
flip it, and which measurement would settle it soonest.

Also the uncertainty options that ``eval`` and ``sweep`` share with it (:func:`add_uncertainty_options`).
"""

from __future__ import annotations

import argparse
import json
import math

from .. import registry, uncertainty
from ..atomic import check_output, write_atomic
from ..errors import UserError
from ..presets import workload_intervals
from ..textfmt import format_value
from .common import add_param_options, load_paramset, params_label, resolve_params

EPILOG = """\
examples:
  costmodel sensitivity --params data/params/kvm-intel-xeon-2cpu-linux6.18.json   # another machine
  costmodel sensitivity --set remote_cpus=15 --set cpus=32 --vary-range p_same_cpu=0.2:0.8
  costmodel sensitivity --params FILE --chart tornado.html --json

Intervals: a parameter file's ci_low..ci_high (measured, published or assumed, as the file
says), else the registry's plausible range, else a factor 3 either way for a machine cost;
workload parameters stay fixed unless --vary-range widens them. Each interval is drawn as a
two-piece normal around the value (log-normal where it spans a factor 3 or more), a
--vary-range as uniform (log-uniform likewise); see costmodel.uncertainty.

gain: how much the probability of the verdict is expected to rise once that parameter is known
exactly; the ranking says which measurement would most reduce the uncertainty of the verdict.
flip: the value at which that parameter alone (the others at their values) changes the
cheapest candidate (costmodel breakeven of the cheapest against each other candidate)."""


# ---- options shared with eval and sweep -------------------------------------------------------


def add_uncertainty_options(parser: argparse.ArgumentParser, draws: int, switch: bool = True) -> None:
    """``--uncertainty`` (where ``switch``), ``--draws``, ``--seed``, ``--vary-range``."""
    if switch:
        parser.add_argument("--uncertainty", action="store_true",
                            help="propagate the parameters' intervals: each output's 95%% interval and each "
                                 "candidate's probability of being the cheapest (implied by --draws, --seed, "
                                 "--vary-range)")
    parser.add_argument("--draws", metavar="N", help=f"Monte Carlo draws (default {draws:,})")
    parser.add_argument("--seed", metavar="S", help="seed of the draws (default 0); the same seed, the same numbers")
    parser.add_argument("--vary-range", action="append", default=[], metavar="NAME=LO:HI",
                        help="draw NAME uniformly (log-uniformly if LO..HI spans a factor 3 or more) over "
                             "LO..HI instead of its interval: widen a workload parameter or an assumption; repeatable")


def _whole(option: str, raw, low: int, high: int) -> int:
    try:
        value = float(str(raw).strip())
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value == int(value) and low <= value <= high):
        raise UserError(f"{option} {raw!r}: give a whole number from {low:,} to {high:,}")
    return int(value)


def wants_uncertainty(args) -> bool:
    return bool(getattr(args, "uncertainty", True) or args.draws is not None or args.seed is not None
                or args.vary_range)


def uncertainty_settings(args, draws: int) -> tuple[int, int, dict]:
    """(draws, seed, vary ranges) from the options, checked."""
    n = draws if args.draws is None else _whole("--draws", args.draws, 1, 10**7)
    seed = 0 if args.seed is None else _whole("--seed", args.seed, 0, 2**63 - 1)
    # a workload file's ranges, then --vary-range (which wins for a parameter given in both)
    vary = {**workload_intervals(getattr(args, "workload", None)), **uncertainty.parse_vary_ranges(args.vary_range)}
    return n, seed, vary


def params_and_point(args) -> tuple[registry.Point, str | None, object]:
    """The point (the checked values, built once here, and the kernel preset's policy) and the
    parameter file read once."""
    paramset = load_paramset(args)
    values, preset_policy = resolve_params(args, paramset)
    return values, preset_policy, paramset


# ---- the command -----------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add_param_options(parser)
    add_uncertainty_options(parser, uncertainty.DRAWS, switch=False)
    parser.add_argument("--json", action="store_true", help="one JSON object instead of tables")
    parser.add_argument("--chart", metavar="FILE",
                        help="also write the tornado chart: .html, .svg, .png or .vl.json (Vega-Lite)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --chart file")
    parser.add_argument("--parents", action="store_true", help="create the --chart file's directory if it is missing")


def run(args) -> int:
    values, _, paramset = params_and_point(args)
    draws, seed, vary = uncertainty_settings(args, uncertainty.DRAWS)
    if args.chart:
        _chart_format(args.chart)
        check_output(args.chart, force=args.force, parents=args.parents)
    params = uncertainty.uncertain_parameters(values, paramset, vary)
    sens = uncertainty.sensitivity(values, params, draws=draws, seed=seed)
    if args.chart:
        _write_chart(args.chart, sens, force=args.force, parents=args.parents)
    if args.json:
        print(json.dumps(as_dict(sens), indent=2, allow_nan=False, default=_clean))
        return 0
    print(params_label(args))
    print(format_sensitivity(sens))
    if args.chart:
        print(f"\nwrote the tornado chart to {args.chart}")
    return 0


def _clean(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    raise TypeError(type(x).__name__)


def _nan_to_none(v):
    if v is None:
        return None
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v.item() if hasattr(v, "item") else v


def as_dict(sens: uncertainty.Sensitivity) -> dict:
    rows = [{k: _nan_to_none(v) for k, v in r.items()} for r in sens.table.to_dict("records")]
    wide = sens.elasticities.pivot(index="parameter", columns="policy", values="elasticity") \
        if not sens.elasticities.empty else None
    return {"uncertainty": sens.propagation.to_dict(), "ranking": rows,
            "elasticities": {} if wide is None else {n: {p: float(v) for p, v in r.items()}
                                                     for n, r in wide.to_dict("index").items()},
            "elasticity_method": {} if sens.elasticities.empty else
            {f"{r.parameter}|{r.policy}": r.method for r in sens.elasticities.itertuples()}}


def _g(x, unit: str = "") -> str:
    """A number as the whole project writes it (:func:`costmodel.textfmt.format_value`): no exponent."""
    return format_value(x, unit)


def _p(x) -> str:
    """A probability: '0' when it is exactly 0, '< 0.001' when below, else three decimals."""
    if x is None or x != x:
        return "-"
    return "0" if x == 0 else "< 0.001" if x < 1e-3 else f"{x:.3f}"


def format_sensitivity(sens: uncertainty.Sensitivity) -> str:
    prop = sens.propagation
    best = prop.cheapest
    t = sens.table
    lines = [f"verdict: {best} is the cheapest candidate at the point; it is the cheapest in "
             f"{100 * prop.p_cheapest[best]:.1f}% of draws",
             f"  ({prop.summary()})", ""]
    if t.empty:
        lines.append("no parameter has an interval: nothing to rank (widen one with --vary-range NAME=LO:HI)")
        return "\n".join(lines)
    head = ["parameter", "value", "interval", "origin", "elast.", "flips below", "flips above", "P(flip alone)",
            "gain"]
    body = []
    for r in t.itertuples():
        if not getattr(r, "flip_searched", True):
            below = above = "not searched"
        else:
            below = f"{_g(r.flip_below, r.unit)} -> {r.flips_to_below}" if r.flip_below is not None else "-"
            above = f"{_g(r.flip_above, r.unit)} -> {r.flips_to_above}" if r.flip_above is not None else "-"
        body.append([r.parameter, _g(r.value, r.unit), f"{_g(r.low, r.unit)} .. {_g(r.high, r.unit)}", r.origin,
                     f"{r.elasticity:+.3f}", below, above, _p(r.p_flip_alone), f"{r.gain:+.4f}"])
    lines += _columns(head, body)
    lines.append("")
    lines.append(f"elast.: d ln(expected_ns of {best}) / d ln(parameter). flips: the value of that parameter alone "
                 "at which another candidate becomes the cheapest. gain: expected rise of P(verdict) once known.")
    top = t.iloc[0]
    if top["gain"] > 0:
        lines.append(f"measure next: {top['parameter']} ({top['origin']}; {top['basis']}): knowing it would raise "
                     f"P(verdict) from {100 * (top['certainty_if_known'] - top['gain']):.1f}% to "
                     f"{100 * top['certainty_if_known']:.1f}% on average")
    else:
        lines.append("no single measurement would change the verdict's probability: it does not hang on any one "
                     "parameter's interval")
    lines += ["", "tornado: the cost of the runner-up that can overtake as this parameter moves (named after the bar) "
              "minus the verdict's, each parameter across its interval; '|' is 0: a bar that crosses it flips the "
              "verdict", *tornado_text(t.head(10))]
    lines += ["", "elasticity of every policy's expected_ns:"]
    wide = sens.elasticities.pivot(index="parameter", columns="policy", values="elasticity")
    wide = wide.loc[[n for n in t["parameter"] if n in wide.index], [p for p in prop.policies if p in wide.columns]]
    lines += _columns(["parameter", *wide.columns], [[n, *(f"{v:+.3f}" for v in row)] for n, row in wide.iterrows()])
    fd = sens.elasticities[sens.elasticities["method"] != "sympy"]
    if not fd.empty:
        lines.append(f"  (by central difference where sympy's derivative has no closed form: "
                     f"{', '.join(sorted(set(fd['parameter'])))})")
    return "\n".join(lines)


def _columns(head: list[str], body: list[list[str]]) -> list[str]:
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    fmt = lambda row: "  ".join(str(x).ljust(w) if i == 0 else str(x).rjust(w) for i, (x, w) in enumerate(zip(row, widths)))
    return [fmt(head), "-" * (sum(widths) + 2 * (len(widths) - 1)), *(fmt(r) for r in body)]


def tornado_text(table, width: int = 50) -> list[str]:
    """Bars of margin_min .. margin_max on one shared axis through 0, as text, each with the
    candidate it is measured against."""
    lo = min(0.0, float(table["margin_min"].min()))
    hi = max(0.0, float(table["margin_max"].max()))
    span = hi - lo or 1.0
    pos = lambda x: int(round((x - lo) / span * (width - 1)))
    zero = pos(0.0)
    name_w = max(len(n) for n in table["parameter"])
    out = []
    for r in table.itertuples():
        cells = [" "] * width
        a, b = pos(r.margin_min), pos(r.margin_max)
        for i in range(a, b + 1):
            cells[i] = "#" if (lo + i * span / (width - 1)) < 0 else "="
        cells[zero] = "|"
        rival = getattr(r, "rival", "") if getattr(r, "rival_moves", True) else "(every candidate alike)"
        out.append(f"{r.parameter.ljust(name_w)}  {''.join(cells)}  {_g(r.margin_min, 'ns')} .. "
                   f"{_g(r.margin_max, 'ns')}" + (f" vs {rival}" if rival else ""))
    return out


_CHART_FORMATS = (".html", ".svg", ".png", ".json")


def _chart_format(path: str) -> str:
    for ext in _CHART_FORMATS:
        if str(path).lower().endswith(ext):
            return ext
    raise UserError(f"--chart {path}: give a file ending in .html, .svg, .png or .vl.json")


def _write_chart(path: str, sens, force: bool, parents: bool = False) -> None:
    # the charts draw with altair (the notebooks extra, optional); only --chart needs them
    from .. import chartdata, charts
    chart = charts.tornado_chart(chartdata.tornado_data(sens))
    ext = _chart_format(path)
    if ext == ".html":
        write_atomic(path, chart.to_html(inline=True), force=force, parents=parents)
        return
    spec = chart.to_dict()
    if ext == ".json":
        write_atomic(path, json.dumps(spec, indent=2) + "\n", force=force, parents=parents)
        return
    import vl_convert as vlc  # the notebooks extra, as the charts above

    data = vlc.vegalite_to_svg(spec, vl_version=charts.VL_VERSION) if ext == ".svg" else \
        vlc.vegalite_to_png(spec, vl_version=charts.VL_VERSION, scale=2)
    write_atomic(path, data, force=force, parents=parents)

