"""``costmodel simulate``: the batches event by event, each output beside the model's value."""

from __future__ import annotations

import argparse
import json
import math

from ..errors import UserError
from ..evaluate import policy_or_error
from ..model import POLICIES
from ..simulate import (MAX_FAULTS, ARRIVALS, CHUNK_FAULTS, arrival_process, parse_arrival_params,
                        simulate)
from ..model import OUTPUT_DECLARATIONS
from ..validate import compare
from .common import add_param_options, params_label, resolve_params

EPILOG = """\
examples:
  costmodel simulate --faults 1e5
  costmodel simulate --workload uffd-live-migration --policy drain_local --policy drain_remote --json
  costmodel simulate --arrivals mmpp --arrival-param burst_ratio=10 --seed 3

Each simulated output is shown beside the model's value with its confidence interval."""

#: rows of the table: output key and number format, from the model's output declarations (one more
#: digit than eval: the simulation's intervals are narrow), then the simulation's own figure
_ROWS = ([(o.name, o.fmt.replace(".4f", ".5f").replace(".1f", ".2f"))
          for o in OUTPUT_DECLARATIONS if o.name != "cpu_us_per_s"]
         + [("mean_local_drain_folios", "{:.3f}")])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_param_options(parser)
    parser.add_argument("--policy", action="append", metavar="NAME",
                        help="policy to simulate; repeatable (default: all)")
    parser.add_argument("--faults", default="1000000", metavar="N", help="WP faults to simulate (default 1e6)")
    parser.add_argument("--seed", default="0", metavar="S", help="seed, a whole number >= 0 (default 0)")
    parser.add_argument("--arrivals", default="poisson", metavar="NAME",
                        help="how folios arrive in a batch: " + ", ".join(ARRIVALS) + " (default poisson, the model's)")
    parser.add_argument("--arrival-param", action="append", default=[], metavar="NAME=VALUE",
                        help="a field of the arrival process; repeatable (mmpp: burst_ratio, p_burst,"
                             " mean_burst_s; batch_poisson: mean_batch)")
    parser.add_argument("--gap-histogram", metavar="FILE.csv",
                        help="draw the install-to-WP gap from a histogram (header gap_s,count or"
                             " gap_lo_s,gap_hi_s,count); replaces gap_model")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="run the chunks on this dask.distributed scheduler (default: in this process)")
    parser.add_argument("--workers", default=None, metavar="N", help="threads in this process (default: CPUs)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar, however long the run")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of a table")


def _whole(option: str, raw: str, low: int, high: int) -> int:
    """A whole number from the command line ("1e6" is fine), parsed, never evaluated."""
    allowed = f"give a whole number from {low:,} to {high:,}"
    try:
        value = float(str(raw).strip())
    except ValueError:
        raise UserError(f"{option} {raw!r}: not a number; {allowed}") from None
    if not math.isfinite(value) or value != int(value) or not low <= value <= high:
        raise UserError(f"{option} {raw!r}: {allowed}")
    return int(value)


def run(args) -> int:
    values, _ = resolve_params(args)
    policies = [policy_or_error(p) for p in args.policy] if args.policy else list(POLICIES)
    faults = _whole("--faults", args.faults, 1, MAX_FAULTS)
    seed = _whole("--seed", args.seed, 0, 2**63 - 1)
    workers = _whole("--workers", args.workers, 1, 1024) if args.workers is not None else None
    proc = arrival_process(args.arrivals, parse_arrival_params(args.arrival_param))
    result = simulate(values, policies, faults=faults, seed=seed, arrivals=proc,
                      gap_histogram=args.gap_histogram, scheduler=args.scheduler, workers=workers,
                      progress=False if args.no_progress else None)
    cmp = compare(result)
    if args.json:
        out = {"parameter_set": getattr(args, "params_label", None), "params": values, **result.to_dict(),
               "note": cmp["note"],
               "elapsed_s": result.elapsed_s, "faults_per_s": result.faults_per_s,
               "residency": cmp["residency"], "policies": cmp["policies"]}
        print(json.dumps(out, indent=2))
        return 0
    print(format_table(result, cmp))
    print(params_label(args))
    return 0


def _num(fmt: str, x) -> str:
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else fmt.format(x)


def format_table(result, cmp: dict) -> str:
    pct = f"{100 * result.confidence:g} %"
    head = (f"{result.faults:,} WP faults simulated (seed {result.seed}, {result.arrivals.name} adds"
            + (f", gap from {result.gap_histogram.source}" if result.gap_histogram is not None else "")
            + f") in {result.elapsed_s:.2f} s, {result.faults_per_s:.3g} faults/s")
    lines = [head, f"intervals: {pct}; Wilson for probabilities, mean +- z sd/sqrt(n) of per-fault costs for ns"]
    if cmp["note"]:
        lines.append(cmp["note"])
    lines.append("")
    cols = f"{'policy':<20} {'output':<26} {'model':>12} {'simulated':>12}  {'interval':<27} "
    lines.append(cols)
    lines.append("-" * (len(cols) + 8))

    def line(pol, key, fmt, row):
        if row["sim"] is None:
            return f"{pol:<20} {key:<26} {_num(fmt, row['model']):>12} {'-':>12}  {'(never called)':<27}"
        interval = f"[{_num(fmt, row['low'])}, {_num(fmt, row['high'])}]"
        mark = "" if row["inside"] else "  model outside"
        return (f"{pol:<20} {key:<26} {_num(fmt, row['model']):>12} {_num(fmt, row['sim']):>12}  "
                f"{interval:<27}{mark}")

    lines.append(line("(all)", "residency", "{:.5f}", cmp["residency"]))
    for pol, rows in cmp["policies"].items():
        for key, fmt in _ROWS:
            lines.append(line(pol, key, fmt, rows[key]))
    outside = sum(1 for rows in cmp["policies"].values() for k, _ in _ROWS if rows[k]["sim"] is not None
                  and not rows[k]["inside"]) + (0 if cmp["residency"]["inside"] else 1)
    lines.append("")
    lines.append(f"model values outside the simulated interval: {outside}"
                 + ("" if result.faults >= CHUNK_FAULTS else " (short run: wide intervals)"))
    return "\n".join(lines)
