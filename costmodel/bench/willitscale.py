"""Read will-it-scale results, so runs of page_fault*/tlb_flush* come in as another measured source.

Two shapes are understood:

* the output of one test binary (``page_fault2_processes -t 4 -s 10``): a ``testcase:`` line, a
  ``warmup`` line, one ``min:.. max:.. total:..`` line per second, ``measurement``, more seconds,
  and ``average:<ops per second>``; several runs may follow each other in one file;
* the CSV printed by ``runtest.py``: ``tasks,processes,processes_idle,threads,threads_idle,linear``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

from ..errors import UserError

CSV_HEADER = ["tasks", "processes", "processes_idle", "threads", "threads_idle", "linear"]
_SECOND = re.compile(r"^min:(\d+) max:(\d+) total:(\d+)$")


def read_will_it_scale(path: str | Path, tasks: int | None = None, mode: str | None = None) -> pd.DataFrame:
    """Tidy will-it-scale results.

    From a run log: one row per run with ``testcase``, ``tasks`` and ``mode`` (as given, since a log
    does not say), ``average_ops_per_s`` (the ``average:`` line), ``seconds`` measured and the
    lowest and highest per-second total. From runtest.py's CSV: one row per task count and mode
    (processes, threads) with ``ops_per_s``, ``idle_percent`` and ``linear_ops_per_s``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot be read ({exc})") from None
    if not text.strip():
        raise UserError(f"{path}: empty; expected will-it-scale output or runtest.py CSV")
    first = text.strip().splitlines()[0].strip()
    if first.startswith("tasks,"):
        return _read_csv(path, text)
    return _read_log(path, text, tasks, mode)


def _read_csv(path: Path, text: str) -> pd.DataFrame:
    lines = [line.strip() for line in text.strip().splitlines()]
    header = lines[0].split(",")
    if header != CSV_HEADER:
        raise UserError(f"{path} line 1: header {lines[0]!r} is not runtest.py's "
                        f"({','.join(CSV_HEADER)})")
    testcase = path.stem
    rows = []
    for index, line in enumerate(lines[1:], start=2):
        cells = line.split(",")
        if len(cells) != len(CSV_HEADER):
            raise UserError(f"{path} line {index}: {len(cells)} fields, expected {len(CSV_HEADER)} "
                            f"(the file is malformed or cut short)")
        values = {}
        for name, cell in zip(CSV_HEADER, cells):
            try:
                values[name] = float(cell)
            except ValueError:
                raise UserError(f"{path} line {index}: field {name!r} = {cell!r} is not a number") from None
            if math.isnan(values[name]) or math.isinf(values[name]):
                raise UserError(f"{path} line {index}: field {name!r} is {cell}; expected a finite number")
        if values["tasks"] == 0:
            continue   # runtest.py's anchor row for plots
        for mode in ("processes", "threads"):
            if values[mode] < 0:
                raise UserError(f"{path} line {index}: {mode} = {cells[CSV_HEADER.index(mode)]} means that "
                                f"run printed no average; rerun it")
            rows.append({
                "testcase": testcase,
                "tasks": int(values["tasks"]),
                "mode": mode,
                "ops_per_s": values[mode],
                "idle_percent": values[f"{mode}_idle"],
                "linear_ops_per_s": values["linear"],
            })
    if not rows:
        raise UserError(f"{path}: no data rows after the header")
    frame = pd.DataFrame(rows)
    frame["tasks"] = frame["tasks"].astype("int64")
    return frame


def _read_log(path: Path, text: str, tasks: int | None, mode: str | None) -> pd.DataFrame:
    runs: list[dict] = []
    current: dict | None = None

    def finish_check(at: int) -> None:
        if current is not None and current.get("average_ops_per_s") is None:
            raise UserError(f"{path} line {at}: run of {current['testcase']!r} has no 'average:' line: it was "
                            f"cut short; rerun it with -s to print one")

    for index, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("testcase:"):
            finish_check(index)
            current = {"testcase": line.split(":", 1)[1].strip(), "phase": None, "totals": [],
                       "average_ops_per_s": None}
            runs.append(current)
            continue
        if current is None:
            raise UserError(f"{path} line {index}: {line[:40]!r} before any 'testcase:' line; "
                            f"expected will-it-scale output")
        if line in ("warmup", "measurement"):
            current["phase"] = line
        elif line.startswith("average:"):
            value = line.split(":", 1)[1].strip()
            if not value.isdigit():
                raise UserError(f"{path} line {index}: 'average:' value {value!r} is not a whole number")
            if current["average_ops_per_s"] is not None:
                raise UserError(f"{path} line {index}: a second 'average:' line for one run")
            current["average_ops_per_s"] = float(value)
        elif _SECOND.match(line):
            if current["phase"] == "measurement":
                current["totals"].append(int(_SECOND.match(line).group(3)))
        else:
            raise UserError(f"{path} line {index}: {line[:40]!r} is not will-it-scale output "
                            f"(expected testcase:, warmup, measurement, min:/max:/total: or average:)")
    finish_check(len(text.splitlines()))
    if not runs:
        raise UserError(f"{path}: no 'testcase:' line; expected will-it-scale output")
    rows = []
    for number, run in enumerate(runs):
        totals = run["totals"]
        rows.append({
            "run": number,
            "testcase": run["testcase"],
            "tasks": tasks,
            "mode": mode,
            "average_ops_per_s": run["average_ops_per_s"],
            "seconds": len(totals),
            "min_total_ops_per_s": float(min(totals)) if totals else math.nan,
            "max_total_ops_per_s": float(max(totals)) if totals else math.nan,
        })
    frame = pd.DataFrame(rows)
    frame["tasks"] = frame["tasks"].astype("Int64")
    return frame
