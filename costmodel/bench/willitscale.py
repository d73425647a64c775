"""Read will-it-scale results, so runs of page_fault*/tlb_flush* come in as another measured source.

Three shapes are understood:

* the output of one test binary (``page_fault2_processes -t 4 -s 10``): a ``testcase:`` line, a
  ``warmup`` line, one ``min:.. max:.. total:..`` line per second, ``measurement``, more seconds,
  and ``average:<ops per second>``; several runs may follow each other in one file. It does not
  record the task count, so it is read as one configuration (``tasks``/``mode`` as given);
* the CSV printed by ``runtest.py``: ``tasks,processes,processes_idle,threads,threads_idle,linear``,
  named after its test by convention (``./runtest.py tlb_flush2 > tlb_flush2.csv``);
* this project's CSV of a published curve (``data/reference/milan72_tlb_flush2.csv``):
  ``flush,threads,ops_per_s,citation``, one row per thread count of each flush mechanism, the
  citation naming the test and mode (``will-it-scale tlb_flush2_threads``).

:func:`read_tlb_flush2` is the reader for the shootdown: it takes only a ``tlb_flush2`` thread
sweep (the one test whose op flushes a page on every CPU running a sibling thread) from the two
CSV shapes, and refuses a log (no thread counts) or another test.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

from ..errors import UserError

CSV_HEADER = ["tasks", "processes", "processes_idle", "threads", "threads_idle", "linear"]
#: the project's CSV of a published curve
PUBLISHED_HEADER = ["flush", "threads", "ops_per_s", "citation"]
#: the will-it-scale test that gives a TLB shootdown per op (threads share the mm)
SHOOTDOWN_TEST = "tlb_flush2"
#: the curve of a published file taken unless told: the IPI shootdown, the kernel's default
#: mechanism and the one the shootdown parameters describe
DEFAULT_FLUSH = "ipi"
_SECOND = re.compile(r"^min:(\d+) max:(\d+) total:(\d+)$")
_CITED_TEST = re.compile(r"will-it-scale\s+([a-z][a-z0-9_]*?)_(threads|processes)\b")


def read_will_it_scale(path: str | Path, tasks: int | None = None, mode: str | None = None,
                       flush: str | None = DEFAULT_FLUSH) -> pd.DataFrame:
    """Tidy will-it-scale results.

    From a run log: one row per run with ``testcase``, ``tasks`` and ``mode`` (as given, since a log
    does not say), ``average_ops_per_s`` (the ``average:`` line), ``seconds`` measured and the
    lowest and highest per-second total. From runtest.py's CSV: one row per task count and mode
    (processes, threads) with ``ops_per_s``, ``idle_percent`` and ``linear_ops_per_s``; the
    ``testcase`` is the file's name. From a published curve: one row per thread count with
    ``testcase`` and ``mode`` from the citation, ``ops_per_s``, ``flush`` and ``citation``, of the
    curve ``flush`` only (default :data:`DEFAULT_FLUSH`; None keeps every curve).
    """
    path = Path(path)
    text = _read_text(path)
    first = text.strip().splitlines()[0].strip()
    if first.startswith("tasks,"):
        return _read_csv(path, text)
    if first.startswith("flush,"):
        return _read_published(path, text, flush)
    return _read_log(path, text, tasks, mode)


def read_tlb_flush2(path: str | Path, flush: str | None = DEFAULT_FLUSH) -> pd.DataFrame:
    """A will-it-scale ``tlb_flush2`` thread sweep, for the shootdown: rows ``testcase``,
    ``tasks`` (threads), ``mode`` ("threads"), ``ops_per_s``, and ``flush``/``citation`` from a
    published curve (the curve ``flush``, by default :data:`DEFAULT_FLUSH`).

    Takes runtest.py's CSV, whose test is told by its file name (``tlb_flush2.csv``,
    ``tlb_flush2_milan.csv``), and the project's published-curve CSV, whose citation names it.
    Refuses another test (``page_fault2`` flushes nothing on other CPUs), the processes mode
    (separate mm: no shootdown) and a binary's log (it does not record the thread count).
    """
    path = Path(path)
    text = _read_text(path)
    first = text.strip().splitlines()[0].strip()
    sweep = "runtest.py's CSV (./runtest.py tlb_flush2 > tlb_flush2.csv) or a published curve CSV " \
            f"({','.join(PUBLISHED_HEADER)})"
    if not (first.startswith("tasks,") or first.startswith("flush,")):
        log = _read_log(path, text, None, None)
        raise UserError(f"{path}: the log of {len(log)} will-it-scale run(s) of {log['testcase'].iloc[0]!r}, which"
                        f" does not record thread counts; give {sweep}")
    frame = read_will_it_scale(path, flush=flush)
    if first.startswith("tasks,") and not _names_test(path.stem, SHOOTDOWN_TEST):
        raise UserError(f"{path}: runtest.py's CSV is named after its test, and {path.name!r} is not {SHOOTDOWN_TEST};"
                        f" only {SHOOTDOWN_TEST} flushes a page on every CPU running a sibling thread, so only it"
                        f" gives a shootdown (rename the file {SHOOTDOWN_TEST}.csv if it is such a run)")
    if first.startswith("flush,"):
        other = sorted(set(frame["testcase"]) - {SHOOTDOWN_TEST})
        if other:
            raise UserError(f"{path}: the citation names will-it-scale {other[0]}, not {SHOOTDOWN_TEST}; only"
                            f" {SHOOTDOWN_TEST} gives a shootdown")
    threads = frame[frame["mode"] == "threads"].reset_index(drop=True)
    if threads.empty:
        raise UserError(f"{path}: no threads run; {SHOOTDOWN_TEST}'s processes mode has one mm per task and so"
                        " no shootdown")
    return threads


def _read_text(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory; give a will-it-scale output file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot be read ({exc})") from None
    if not text.strip():
        raise UserError(f"{path}: empty; expected will-it-scale output or runtest.py CSV")
    return text


def _names_test(stem: str, test: str) -> bool:
    """Whether a file name holds ``test`` as a word (``milan72_tlb_flush2``, not ``tlb_flush21``)."""
    return re.search(rf"(?<![a-z0-9]){re.escape(test)}(?![0-9])", stem.lower()) is not None


def _read_published(path: Path, text: str, flush: str | None) -> pd.DataFrame:
    import csv
    import io

    reader = csv.reader(io.StringIO(text.strip()))
    header = [h.strip() for h in next(reader)]
    if header != PUBLISHED_HEADER:
        raise UserError(f"{path} line 1: header {','.join(header)!r} is not a published curve's"
                        f" ({','.join(PUBLISHED_HEADER)})")
    rows = []
    for index, cells in enumerate(reader, start=2):
        if not cells or not "".join(cells).strip():
            continue
        if len(cells) != len(PUBLISHED_HEADER):
            raise UserError(f"{path} line {index}: {len(cells)} fields, expected {len(PUBLISHED_HEADER)}")
        name, threads_raw, ops_raw, citation = (c.strip() for c in cells)
        if not name:
            raise UserError(f"{path} line {index}: field 'flush' is empty; name the flush mechanism (ipi, invlpgb)")
        try:
            threads, ops = float(threads_raw), float(ops_raw)
        except ValueError:
            raise UserError(f"{path} line {index}: threads {threads_raw!r} or ops_per_s {ops_raw!r} is not a number")\
                from None
        if not (math.isfinite(threads) and threads >= 1 and threads == int(threads)):
            raise UserError(f"{path} line {index}: threads = {threads_raw}; expected a whole number >= 1")
        if not (math.isfinite(ops) and ops > 0):
            raise UserError(f"{path} line {index}: ops_per_s = {ops_raw}; expected a finite number above 0")
        cited = _CITED_TEST.search(citation)
        if cited is None:
            raise UserError(f"{path} line {index}: the citation does not name the will-it-scale test and mode"
                            " (e.g. 'will-it-scale tlb_flush2_threads'); it must, to say what was run")
        rows.append({"testcase": cited.group(1), "tasks": int(threads), "mode": cited.group(2), "ops_per_s": ops,
                     "flush": name, "citation": citation})
    if not rows:
        raise UserError(f"{path}: no data rows after the header")
    frame = pd.DataFrame(rows)
    if flush is not None:
        curves = list(dict.fromkeys(frame["flush"]))
        if flush not in curves:
            raise UserError(f"{path}: no {flush!r} curve; it has {', '.join(curves)}")
        frame = frame[frame["flush"] == flush].reset_index(drop=True)
    dup = frame.duplicated(["flush", "mode", "tasks"])
    if dup.any():
        r = frame[dup].iloc[0]
        raise UserError(f"{path}: {r['tasks']} threads appear twice in the {r['flush']!r} curve")
    frame["tasks"] = frame["tasks"].astype("int64")
    return frame


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
