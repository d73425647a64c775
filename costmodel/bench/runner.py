"""Run the probes and write a measurement directory; read one back, validated.

Directory layout (written probe by probe, each file atomically):

    measurements/<probe>.csv   each probe's tidy summary, one row per measured configuration: its
                         own configuration keys (catalog.ProbeSpec) and the result columns
    provenance.json      machine facts (allowlist) + per-probe status, meta, sample counts
    skipped.json         what could not run here, and why ([] when everything ran)
    raw/<probe>.tsv.gz   each probe's verbatim output: every raw sample
    raw/<probe>.round<k>.tsv.gz   with ``repeat`` N > 1: round k's output (the probes interleaved:
                         round 1 of every probe, then round 2, ...; each round 1/N of the repetitions)

A probe counts as finished once provenance.json lists it as done or skipped; ``resume`` runs only
the others. Ctrl-C stops the running probe (its process group is killed and reaped) and leaves the
finished ones intact. :func:`resummarise` rebuilds the summary of a directory from its raw files
with the current summary code.

Sets written before the summary was split by probe hold one wide ``measurements.csv`` (every probe's
keys in every row). They read as before, with a note; a probe added to such a set by ``--resume``
gets its own table beside it (a probe's table wins over its rows there), and ``--resummarise
--force`` rewrites the whole set as tables.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..atomic import write_atomic
from ..errors import UserError
from . import compile as _compile
from . import provenance as _prov
from . import catalog as _catalog
from .catalog import probe_spec
from .parse import parse_probe_output, read_probe_file
from .summary import COUNT_COLUMNS, TEXT_COLUMNS, float_columns, infer_batch_size, probe_table, summarize, tidy_frame

#: the summary: one table per probe, ``measurements/<probe>.csv``
TABLES_DIR = "measurements"
#: the summary of sets written before the tables: one wide table of every probe's rows
WIDE_NAME = "measurements.csv"
PROVENANCE_NAME = "provenance.json"
SKIPPED_NAME = "skipped.json"
RAW_DIR = "raw"
SEED = 1
#: most rounds a recording may be split into
MAX_REPEAT = 16


@dataclass
class SuiteResult:
    """What run_suite did: per-probe status (done, skipped, failed, kept) and where it wrote."""

    out_dir: Path
    status: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    batch_size_found: int | None = None
    seconds: float = 0.0

    @property
    def failed(self) -> list[str]:
        return [name for name, s in self.status.items() if s == "failed"]


# ----------------------------------------------------------------------------- running one probe

def _run_binary(binary: Path, args: list[str], name: str, timeout_s: float, progress: bool) -> tuple[str, int, str]:
    """Run a compiled probe in its own process group; (stdout, exit status, stderr tail).

    The group is killed and reaped on timeout, on Ctrl-C and on any error while reading.
    """
    stderr_file = tempfile.TemporaryFile()
    proc = subprocess.Popen([str(binary), *args], stdout=subprocess.PIPE, stderr=stderr_file,
                            text=True, start_new_session=True)
    timed_out = threading.Event()

    def on_timeout() -> None:
        timed_out.set()
        _kill_group(proc)

    timer = threading.Timer(timeout_s, on_timeout)
    timer.daemon = True
    timer.start()
    chunks: list[str] = []
    bar = _Progress(name, enabled=progress)
    outcome = "stopped"
    try:
        assert proc.stdout is not None
        pending = 0
        for line in proc.stdout:
            chunks.append(line)
            if line.startswith("sample\t"):
                pending += 1
                if pending >= 256:
                    bar.update(pending)
                    pending = 0
            elif line.startswith("plan\t"):
                try:
                    bar.set_total(int(line.split("samples=", 1)[1]))
                except (IndexError, ValueError):
                    pass
        bar.update(pending)
        rc = proc.wait()
        outcome = _outcome(rc, timed_out.is_set())
    except BaseException as exc:
        outcome = "interrupted" if isinstance(exc, KeyboardInterrupt) else "stopped"
        _kill_group(proc)
        raise
    finally:
        timer.cancel()
        bar.close(outcome)
        if proc.poll() is None:
            _kill_group(proc)
        if proc.stdout:
            proc.stdout.close()
    stderr_file.seek(0)
    err = stderr_file.read().decode(errors="replace").strip()
    stderr_file.close()
    if timed_out.is_set():
        err = f"ran past its {timeout_s:.0f} s limit and was stopped. {err}".strip()
    return "".join(chunks), rc, err[-800:]


class _Progress:
    """Samples received from one probe: a tqdm bar on a terminal, else a plain line now and then
    (no carriage returns in a log file); nothing when disabled."""

    LINE_EVERY_S = 10.0

    def __init__(self, name: str, enabled: bool, stream=None):
        self.name = name
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.total: int | None = None
        self.count = 0
        self.start = time.monotonic()
        self.last_line = self.start
        self.bar = None
        isatty = getattr(self.stream, "isatty", None)
        if enabled and isatty is not None and isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=None, desc=name, unit="sample", leave=True, file=self.stream)
        elif enabled:
            self._line("started")

    def _line(self, what: str) -> None:
        of = f"/{self.total}" if self.total is not None else ""
        elapsed = time.monotonic() - self.start
        print(f"{self.name}: {what}, {self.count}{of} samples, {elapsed:.0f} s", file=self.stream, flush=True)

    def set_total(self, total: int) -> None:
        self.total = total
        if self.bar is not None:
            self.bar.total = total
            self.bar.refresh()

    def update(self, n: int) -> None:
        self.count += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.enabled and n and time.monotonic() - self.last_line >= self.LINE_EVERY_S:
            self.last_line = time.monotonic()
            self._line("running")

    def close(self, outcome: str = "finished") -> None:
        """The last line: ``outcome`` as the run ended (finished, interrupted, stopped, failed)."""
        if self.bar is not None:
            self.bar.close()
        elif self.enabled:
            self._line(outcome)


def _outcome(rc: int, timed_out: bool) -> str:
    """How a probe's run ended, as its last progress line says it."""
    if timed_out:
        return "stopped at its time limit"
    if rc == 0:
        return "finished"
    if rc < 0 and -rc == signal.SIGINT:
        return "interrupted"
    if rc < 0:
        try:
            return f"stopped by signal {signal.Signals(-rc).name}"
        except ValueError:
            return f"stopped by signal {-rc}"
    return f"failed (exit status {rc})"


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM the probe's process group, then SIGKILL; always reap the probe."""
    for sig, wait_s in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 10.0)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
    if proc.poll() is None:
        proc.wait()
    try:   # stragglers of the group (a probe's own children) once the leader is gone
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _hypervisor_vendor(binary: Path | None) -> str | None:
    if binary is None:
        return None
    try:
        out = subprocess.run([str(binary), "--facts"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.stdout.splitlines():
        parts = dict(p.partition("=")[::2] for p in line.split("\t")[1:])
        if line.startswith("fact\t") and parts.get("key") == "hypervisor_vendor":
            return parts.get("value")
    return None


def machine_facts() -> dict:
    """Provenance facts of this machine, with the hypervisor read by a probe binary (CPUID)."""
    try:
        binary = _compile.compile_probe(_catalog.PROBES[0].name)
    except UserError:
        binary = None
    return _prov.machine_facts(_hypervisor_vendor(binary))


def default_out_dir(quick: bool = False) -> Path:
    """data/measurements/<dataset id of this machine>, with -quick appended for quick runs."""
    name = machine_facts()["dataset_id"] + ("-quick" if quick else "")
    return Path("data") / "measurements" / name


# ----------------------------------------------------------------------------- the directory

def _gzip_bytes(text: str) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as gz:
        gz.write(text.encode())
    return buf.getvalue()


def _write_json(path: Path, data) -> None:
    write_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n", force=True)


def _csv_text(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False, float_format="%.10g", lineterminator="\n")


def _is_empty(out: Path) -> bool:
    """Nothing in ``out`` but, at most, an empty raw/ and an empty measurements/ (what an interrupt
    before the first probe finished leaves behind)."""
    for entry in out.iterdir():
        if entry.name in (RAW_DIR, TABLES_DIR) and entry.is_dir() and not any(entry.iterdir()):
            continue
        return False
    return True


def table_path(directory: str | Path, probe: str) -> Path:
    """Where a probe's summary table is written: ``<directory>/measurements/<probe>.csv``."""
    return Path(directory) / TABLES_DIR / f"{probe}.csv"


def table_files(directory: str | Path) -> dict[str, Path]:
    """The summary tables a directory holds, by probe name (the file name's stem)."""
    tables = Path(directory) / TABLES_DIR
    return {f.stem: f for f in sorted(tables.glob("*.csv"))} if tables.is_dir() else {}


def summary_path(directory: str | Path, probe: str) -> Path:
    """The file that holds a probe's summary rows: its table, or in a set written before the
    tables, the wide ``measurements.csv``."""
    path = table_path(directory, probe)
    wide = Path(directory) / WIDE_NAME
    return wide if not path.exists() and wide.exists() else path


def _prepare(out: Path, force: bool, resume: bool) -> dict | None:
    """Check the output directory; return the provenance to resume from, if any."""
    if force and resume:
        raise UserError("--force and --resume contradict each other: --force starts over, --resume continues")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; name a directory")
    if not out.exists() or _is_empty(out):
        return None
    prov_path = out / PROVENANCE_NAME
    if resume:
        if not prov_path.exists():
            raise UserError(f"--resume: {out} has no {PROVENANCE_NAME}, so nothing to resume; "
                            f"pass --force to start over")
        try:
            return json.loads(prov_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise UserError(f"--resume: {prov_path} cannot be read ({exc}); pass --force to start over") from None
    if not force:
        raise UserError(f"--out {out} already holds files; pass --resume to continue it or --force to start over")
    for name in (WIDE_NAME, PROVENANCE_NAME, SKIPPED_NAME):
        (out / name).unlink(missing_ok=True)
    for f in table_files(out).values():
        f.unlink()
    raw = out / RAW_DIR
    if raw.is_dir():
        for f in raw.glob("*.tsv.gz"):
            f.unlink()
    return None


def raw_name(probe: str, round_: int, rounds: int) -> str:
    """The raw file of one probe's round: ``<probe>.tsv.gz`` for a recording of one round."""
    return f"{probe}.tsv.gz" if rounds <= 1 else f"{probe}.round{round_}.tsv.gz"


def raw_files(raw_dir: Path) -> dict[str, list[Path]]:
    """A raw directory's files by probe name, rounds in order (one file for a single-round set)."""
    import re

    found: dict[str, list[tuple[int, Path]]] = {}
    for f in sorted(raw_dir.glob("*.tsv.gz")) if raw_dir.is_dir() else []:
        m = re.fullmatch(r"(.+?)(?:\.round(\d+))?\.tsv\.gz", f.name)
        if m:
            found.setdefault(m.group(1), []).append((int(m.group(2) or 0), f))
    return {name: [f for _, f in sorted(items)] for name, items in found.items()}


def new_seed() -> int:
    """An independent seed for a recording (recorded in its provenance)."""
    import secrets

    return 1 + secrets.randbelow(2 ** 31 - 2)


def run_suite(out_dir: str | Path, quick: bool = False, probes: list[str] | None = None,
              force: bool = False, resume: bool = False, progress: bool = True,
              _after_probe=None, repeat: int = 1, seed: int | None = None) -> SuiteResult:
    """Run the probes (all, or the named ones) and write the measurement directory ``out_dir``.

    quick: fewer repetitions, same configurations (under a minute). force: replace an existing
    directory's results. resume: keep the probes an earlier run finished and run the rest.
    progress: per probe on stderr, a tqdm bar on a terminal, else a plain line every few seconds;
    False for none. repeat: split the repetitions over this many rounds, the probes interleaved
    (round 1 of each, then round 2, ...), so that the host's drift averages out and its size is
    measured (``round_sd``). seed: the recording's seed (a fresh random one by default; round k of
    a probe runs with seed + k - 1), recorded in the provenance. Returns a :class:`SuiteResult`.
    """
    if not isinstance(repeat, int) or not 1 <= repeat <= MAX_REPEAT:
        raise UserError(f"--repeat {repeat}: give a whole number of rounds from 1 to {MAX_REPEAT}")
    if seed is not None and not (isinstance(seed, int) and 1 <= seed < 2 ** 62):
        raise UserError(f"--seed {seed}: give a whole number from 1 to 2^62")
    affinity = os.sched_getaffinity(0)
    try:
        return _run_suite(Path(out_dir), quick, probes, force, resume, progress, _after_probe, repeat, seed)
    finally:
        if os.sched_getaffinity(0) != affinity:
            os.sched_setaffinity(0, affinity)


def _run_suite(out: Path, quick: bool, probes, force: bool, resume: bool, progress: bool,
               _after_probe, repeat: int = 1, seed: int | None = None) -> SuiteResult:
    start = time.monotonic()
    wanted = [probe_spec(n).name for n in probes] if probes else [p.name for p in _catalog.PROBES]
    previous = _prepare(out, force, resume)

    compiler = _compile.find_compiler()
    binaries: dict[str, Path] = {}
    for name in wanted:
        binaries[name] = _compile.compile_probe(name, compiler)
    facts = machine_facts()

    if previous is not None:
        for key in ("kernel_release", "cpu_model", "online_cpus"):
            if previous.get(key) != facts.get(key):
                raise UserError(f"--resume: {out} was measured with {key}={previous.get(key)!r}, this machine "
                                f"has {facts.get(key)!r}; use another --out")
        if bool(previous.get("quick")) != bool(quick):
            raise UserError(f"--resume: {out} was a {'--quick' if previous.get('quick') else 'full'} run; "
                            f"resume it the same way")
        if int(previous.get("repeat") or 1) != repeat:
            raise UserError(f"--resume: {out} was recorded with --repeat {int(previous.get('repeat') or 1)}; "
                            f"resume it the same way")
        prov = previous
        seed = int(prov.get("seed") or SEED)
        for key in ("harness_version", "probe_sources_sha256", "compiler"):
            if prov.get(key) != facts.get(key):
                prov.setdefault("resumed_with", {})[key] = facts.get(key)
    else:
        seed = new_seed() if seed is None else seed
        prov = {**facts, "quick": bool(quick), "repeat": repeat, "seed": seed, "probes": {}}
    # the probes this bench knows, so calibration can tell a probe not run (``--probe``) from one
    # that did not exist when a set was recorded (older sets have no such list)
    if previous is None or "catalog" in prov:
        prov["catalog"] = sorted(set(prov.get("catalog") or []) | {p.name for p in _catalog.PROBES})
    prov.setdefault("probes", {})
    out.mkdir(parents=True, exist_ok=True)
    (out / RAW_DIR).mkdir(exist_ok=True)
    (out / TABLES_DIR).mkdir(exist_ok=True)

    result = SuiteResult(out_dir=out, batch_size_found=prov.get("batch_size_found"))
    order = [p.name for p in _catalog.PROBES]
    todo = []
    for name in wanted:
        entry = prov["probes"].get(name)
        if entry and entry.get("status") in ("done", "skipped"):
            result.status[name] = "kept"
            continue
        todo.append(name)
    # round r of every probe before round r + 1 of any: drift between rounds hits every probe alike
    outputs: dict[str, list] = {name: [] for name in todo}
    failed: dict[str, dict] = {}
    for round_ in range(1, repeat + 1):
        for name in todo:
            if name in failed:
                continue
            spec = probe_spec(name)
            args = ["--seed", str(seed + round_ - 1)] + (["--quick"] if quick else [])
            if repeat > 1:
                args += ["--share", str(repeat)]
            if spec.extra_args:
                args += spec.extra_args(prov)
            label = name if repeat == 1 else f"{name} {round_}/{repeat}"
            t0 = time.monotonic()
            text, rc, err = _run_binary(binaries[name], args, label,
                                        spec.timeout_quick_s if quick else spec.timeout_full_s, progress)
            seconds = round(time.monotonic() - t0, 1)
            write_atomic(out / RAW_DIR / raw_name(name, round_, repeat), _gzip_bytes(text), force=True)
            try:
                if rc != 0:
                    raise UserError(f"exit status {rc}: {err or 'no message'}")
                outputs[name].append((parse_probe_output(text, expected=name, source=f"{name} output"), args, seconds))
            except UserError as exc:
                failed[name] = {"status": "failed", "args": args, "seconds": seconds, "reason": str(exc)}
            if round_ == repeat or name in failed:
                _finish_probe(out, prov, result, name, outputs[name], failed.get(name), order, repeat)
                if _after_probe is not None:
                    _after_probe(name)

    if not (out / SKIPPED_NAME).exists():
        _write_json(out / SKIPPED_NAME, _skipped_list(prov))
    result.seconds = time.monotonic() - start
    return result


def _finish_probe(out: Path, prov: dict, result: SuiteResult, name: str, rounds: list, failure: dict | None,
                  order: list[str], repeat: int) -> None:
    """A probe's rounds pooled into its summary rows and provenance entry, written at once."""
    from .parse import merge_rounds

    spec = probe_spec(name)
    rows = None
    if failure is not None:
        entry = failure
    else:
        parsed = merge_rounds([p for p, _, _ in rounds])
        entry = {"status": "done", "args": rounds[0][1], "seconds": round(sum(sec for _, _, sec in rounds), 1)}
        if repeat > 1:
            entry["rounds"] = repeat
        try:
            rows = summarize(spec, parsed)
            _record_output(entry, parsed)
        except UserError as exc:
            entry = {"status": "failed", "args": entry["args"], "seconds": entry["seconds"], "reason": str(exc)}
    if name == "unnecessary_copy" and rows is not None:
        prov["batch_size_found"] = infer_batch_size(rows)
        result.batch_size_found = prov["batch_size_found"]
    prov["probes"][name] = entry
    result.status[name] = entry["status"]
    if entry.get("reason"):
        result.reasons[name] = entry["reason"]
    # measurements/<probe>.csv: this probe's table, and no other file, replaced (a failed probe has none)
    if rows is None:
        table_path(out, name).unlink(missing_ok=True)
    else:
        write_atomic(table_path(out, name), _csv_text(probe_table(rows, spec)), force=True)
    _write_json(out / SKIPPED_NAME, _skipped_list(prov))
    prov["probes"] = {n: prov["probes"][n] for n in order if n in prov["probes"]}
    _write_json(out / PROVENANCE_NAME, prov)


def _record_output(entry: dict, parsed) -> None:
    """A probe's provenance entry from its parsed output: status, sample count, notes, skips."""
    for key in ("reason", "notes"):
        entry.pop(key, None)
    entry["status"] = "done"
    entry.update(samples=int(len(parsed.samples)), meta=parsed.meta)
    whole = [s["reason"] for s in parsed.skips if not s["config"]]
    if parsed.skipped_whole:
        entry["status"] = "skipped"
        entry["reason"] = "; ".join(whole)
    elif whole:
        entry["notes"] = whole
    entry["skips"] = parsed.skips


def _skipped_list(prov: dict) -> list[dict]:
    items = []
    for name, entry in prov.get("probes", {}).items():
        if entry.get("status") in ("skipped", "failed"):
            items.append({"probe": name, "config": {}, "status": entry["status"], "reason": entry.get("reason", "")})
        for note in entry.get("notes", []):   # measured in part; the rest could not run
            items.append({"probe": name, "config": {}, "status": "partial", "reason": note})
        for skip in entry.get("skips", []):
            if skip["config"]:
                items.append({"probe": name, "config": skip["config"], "status": "skipped", "reason": skip["reason"]})
    return items


# ----------------------------------------------------------------------------- summary from raw/

@dataclass
class ResummaryResult:
    """What resummarise found: the changes against the summary there before, and whether it wrote."""

    directory: Path
    changes: list[str] = field(default_factory=list)
    written: bool = False
    probes: list[str] = field(default_factory=list)
    batch_size_found: int | None = None


def _row_keys(frame: pd.DataFrame) -> list[tuple]:
    cols = ["probe", *_catalog.config_columns(), "measure"]
    return [tuple("" if pd.isna(v) else str(v) for v in row) for row in frame[cols].itertuples(index=False)]


def _differs(a, b) -> bool:
    if pd.isna(a) and pd.isna(b):
        return False
    if pd.isna(a) or pd.isna(b):
        return True
    if isinstance(a, str) or isinstance(b, str):
        return str(a) != str(b)
    return abs(float(a) - float(b)) > 1e-9 * max(1.0, abs(float(a)), abs(float(b)))


def _describe_changes(old: pd.DataFrame, old_header: list[str], new: pd.DataFrame) -> list[str]:
    """Short phrases for what the rebuilt summary changes against the one on disk."""
    changes = []
    filled = [c for c in _catalog.summary_columns() if c not in old_header and new[c].notna().any()]
    if filled:
        changes.append(f"fills column{'s' if len(filled) > 1 else ''} it lacked: {', '.join(filled)}")
    old_keys, new_keys = _row_keys(old), _row_keys(new)
    old_at = {k: i for i, k in enumerate(old_keys)}
    new_at = {k: i for i, k in enumerate(new_keys)}
    added = [k for k in new_keys if k not in old_at]
    removed = [k for k in old_keys if k not in new_at]
    if added:
        changes.append(f"{len(added)} new row{'s' if len(added) > 1 else ''}")
    if removed:
        changes.append(f"{len(removed)} row{'s' if len(removed) > 1 else ''} gone")
    counts: dict[str, int] = {}
    for key, i in new_at.items():
        if key not in old_at:
            continue
        j = old_at[key]
        for col in _catalog.summary_columns():
            if col in old_header and _differs(old.at[j, col], new.at[i, col]):
                counts[col] = counts.get(col, 0) + 1
    if counts:
        listed = ", ".join(f"{col} in {n} row{'s' if n > 1 else ''}" for col, n in list(counts.items())[:6])
        more = f" and {len(counts) - 6} more columns" if len(counts) > 6 else ""
        changes.append(f"values change: {listed}{more}")
    return changes


def _header(path: Path) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return next(csv.reader(fh), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def resummarise(directory: str | Path, force: bool = False) -> ResummaryResult:
    """Rebuild ``directory``'s summary tables (``measurements/<probe>.csv``), and the provenance
    derived from them (per-probe sample counts, notes and skips, batch_size_found), from its
    raw/<probe>.tsv.gz files with the current summary code; skipped.json follows.

    Probes the provenance records as failed stay failed (their raw output is kept only to be
    read). When a summary exists and the rebuilt one differs, nothing is written unless ``force``;
    the UserError says what would change. A set in the wide layout of earlier versions (one
    ``measurements.csv``) counts as changed: with ``force`` its tables replace that file. An
    identical rebuild writes nothing.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(f"--resummarise {directory}: no such measurement directory")
    raw_dir = directory / RAW_DIR
    by_probe = raw_files(raw_dir)
    if not by_probe:
        raise UserError(f"--resummarise {directory}: {raw_dir} holds no <probe>.tsv.gz, so there is nothing "
                        f"to rebuild from; run `costmodel bench --out {directory} --force`")
    prov_path = directory / PROVENANCE_NAME
    try:
        prov = json.loads(prov_path.read_text())
    except FileNotFoundError:
        raise UserError(f"--resummarise {directory}: {PROVENANCE_NAME} is missing; the machine facts cannot be "
                        f"rebuilt from raw files, so measure again with `costmodel bench --out {directory} "
                        f"--force`") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"--resummarise {directory}: {prov_path} is not valid JSON ({exc})") from None
    if not isinstance(prov, dict):
        raise UserError(f"--resummarise {directory}: {prov_path} is not a JSON object")

    from .parse import merge_rounds

    result = ResummaryResult(directory=directory)
    entries = dict(prov.get("probes") or {})
    parts = []
    tables: dict[str, str] = {}
    batch = prov.get("batch_size_found")
    for spec in _catalog.PROBES:
        paths = by_probe.get(spec.name)
        if not paths:
            continue
        entry = dict(entries.get(spec.name) or {})
        if entry.get("status") == "failed":
            continue
        parsed = merge_rounds([read_probe_file(p, expected=spec.name) for p in paths])
        rows = summarize(spec, parsed)
        _record_output(entry, parsed)
        entries[spec.name] = entry
        parts.append(rows)
        tables[spec.name] = _csv_text(probe_table(rows, spec))
        result.probes.append(spec.name)
        if spec.name == "unnecessary_copy":
            batch = infer_batch_size(rows)
    unknown = sorted(set(by_probe) - {p.name for p in _catalog.PROBES})
    if unknown:
        result.changes.append(f"ignored raw files of probes this version does not know: {', '.join(unknown)}")
    merged = tidy_frame(pd.concat([p for p in parts if len(p)], ignore_index=True)) \
        if any(len(p) for p in parts) else tidy_frame([])
    result.batch_size_found = batch

    wide = directory / WIDE_NAME
    existing = table_files(directory)
    stale = sorted(set(existing) - set(tables))
    changes: list[str] = []
    if existing or wide.exists():
        try:
            old = _read_summary(directory)
            header = sorted({c for f in [*existing.values(), wide] if f.exists() for c in _header(f)})
            changes = _describe_changes(old, header, merged)
        except UserError as exc:
            changes = [f"the summary there cannot be read ({exc})"]
        texts = {name: _read_text(path) for name, path in existing.items()}
        rewritten = [name for name, text in tables.items() if texts.get(name) != text]
        if wide.exists():
            changes.append(f"the one wide {WIDE_NAME} of earlier versions becomes {TABLES_DIR}/<probe>.csv, "
                           f"one table per probe")
        elif not rewritten and not stale:
            changes = []
        elif not changes:
            changes.append(f"rewrites {', '.join(f'{TABLES_DIR}/{n}.csv' for n in rewritten)} in the current "
                           f"column order" if rewritten else "")
        if stale:
            changes.append(f"removes {', '.join(f'{TABLES_DIR}/{n}.csv' for n in stale)} (no raw output to rebuild "
                           f"it from)")
        changes = [c for c in changes if c]
    else:
        changes = [f"the summary ({TABLES_DIR}/<probe>.csv) was missing"]
    if batch != prov.get("batch_size_found"):
        changes.append(f"batch_size_found {prov.get('batch_size_found')} -> {batch}")
    result.changes += changes
    if not changes:
        return result
    if (existing or wide.exists()) and not force:
        raise UserError(f"--resummarise {directory}: the rebuilt summary differs from the one there "
                        f"({'; '.join(changes)}); pass --force to replace it")

    prov["probes"] = {n: entries[n] for n in [p.name for p in _catalog.PROBES] + sorted(entries) if n in entries}
    prov["batch_size_found"] = batch
    prov["resummarised"] = {
        "date": _prov.machine_date(),
        "harness_version": _prov.harness_version(),
        "probe_sources_sha256": _compile.sources_hash(),
    }
    (directory / TABLES_DIR).mkdir(exist_ok=True)
    for name, text in tables.items():
        write_atomic(table_path(directory, name), text, force=True)
    for name in stale:
        existing[name].unlink()
    wide.unlink(missing_ok=True)   # last: until now a reader still had every probe's rows
    _write_json(directory / SKIPPED_NAME, _skipped_list(prov))
    _write_json(prov_path, prov)
    result.written = True
    return result


# ----------------------------------------------------------------------------- reading back

#: Columns every measurement set has carried since the first version; any other column a set lacks
#: (one added to the catalog after it was written) reads as empty. A probe's table has no ``probe``
#: column: its file name says it.
CORE_COLUMNS = ("probe", "measure", "n", "unit")


def _check_rows(path: Path, directory: Path) -> None:
    """Every data row has the header's number of fields, and the file ends with a newline."""
    fix = f"rebuild it with `costmodel bench --resummarise {directory} --force`"
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except OSError as exc:
        raise UserError(f"{path}: cannot be read ({exc})") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); the file is damaged; "
                        f"{fix}") from None
    if not text.strip():
        raise UserError(f"{path}: empty; {fix}")
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as exc:
        raise UserError(f"{path}: not a readable CSV ({exc}); {fix}") from None
    width = len(rows[0])
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != width:
            cut = number == len(rows) and not text.endswith("\n")
            raise UserError(f"{path} line {number}: {len(row)} fields where the header has {width}"
                            f"{' (the file is cut short)' if cut else ''}; {fix}")
    if not text.endswith("\n"):
        raise UserError(f"{path} line {len(rows)}: the last line has no newline, so the file may be cut "
                        f"short; {fix}")


def _read_csv(path: Path, directory: Path, probe: str | None = None) -> pd.DataFrame:
    """One summary file as the in-memory summary (every probe's columns): ``probe``'s table, or
    with ``probe`` None, the wide table of earlier versions."""
    _check_rows(path, directory)
    config = _catalog.config_columns()
    text_columns = (*TEXT_COLUMNS, *[k for k, (t, _) in config.items() if t is str])
    try:
        frame = pd.read_csv(path, dtype={c: "string" for c in text_columns}, keep_default_na=True)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not a readable CSV ({exc}); rerun `costmodel bench`") from None
    core = CORE_COLUMNS if probe is None else tuple(c for c in CORE_COLUMNS if c != "probe")
    missing = [c for c in core if c not in frame.columns]
    if missing:
        raise UserError(f"{path}: lacks column {missing[0]!r}, so it is not a measurement summary written by "
                        f"`costmodel bench` (its columns include {', '.join(core)})")
    if probe is not None:
        if "probe" in frame.columns and (frame["probe"].notna() & (frame["probe"] != probe)).any():
            row = int((frame["probe"] != probe).fillna(True).idxmax()) + 2
            raise UserError(f"{path} line {row}: a row of probe {frame['probe'][row - 2]!r} in the table of {probe!r}; "
                            f"each probe's rows go in {TABLES_DIR}/<probe>.csv")
        frame["probe"] = probe
    for col in _catalog.summary_columns():
        if col not in frame.columns:   # a column newer than the set, or another probe's key: empty here
            frame[col] = pd.NA
    for col, (kind, _) in config.items():
        if kind is int:
            values = pd.to_numeric(frame[col], errors="coerce")
            bad = frame[col].notna() & (values.isna() | (values % 1 != 0))
            if bad.any():
                row = int(bad.idxmax()) + 2
                raise UserError(f"{path} line {row}: column {col!r} = {frame[col][bad.idxmax()]!r} "
                                f"is not a whole number")
    for col in (*COUNT_COLUMNS, *float_columns()):
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = frame[col].notna() & values.isna()
        if bad.any():
            row = int(bad.idxmax()) + 2
            raise UserError(f"{path} line {row}: column {col!r} = {frame[col][bad.idxmax()]!r} is not a number")
    for col in COUNT_COLUMNS:
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = values.notna() & (values % 1 != 0)
        if bad.any():
            row = int(bad.idxmax()) + 2
            raise UserError(f"{path} line {row}: column {col!r} = {frame[col][bad.idxmax()]!r} is not a whole number")
    frame = tidy_frame(frame)
    _validate(frame, path)
    return frame


def _validate(frame: pd.DataFrame, path: Path) -> None:
    def fail(i: int, message: str) -> None:
        raise UserError(f"{path} line {i + 2}: {message}")

    known = {p.name for p in _catalog.PROBES}
    for i, row in frame.iterrows():
        if pd.isna(row["probe"]) or row["probe"] not in known:
            fail(i, f"probe {row['probe']!r} is unknown; known: {', '.join(sorted(known))}")
        if pd.notna(row["skipped_reason"]):
            continue
        if pd.isna(row["n"]) or row["n"] <= 0:
            fail(i, "column 'n' must be a positive count on a measured row")
        if pd.isna(row["measure"]):
            fail(i, "column 'measure' is empty on a measured row")
        if pd.isna(row["unit"]) or row["unit"] not in ("ns", "fraction"):
            fail(i, f"column 'unit' = {row['unit']!r}; expected 'ns' or 'fraction'")
        if row["unit"] == "ns":
            for col in ("median_ns", "p10", "p90", "ci_low", "ci_high"):
                if pd.isna(row[col]):
                    fail(i, f"column {col!r} is empty or NaN on an ns row; rerun `costmodel bench`")
            if pd.notna(row["mean_ci_low"]) and pd.notna(row["mean_ci_high"]) \
                    and row["mean_ci_low"] > row["mean_ci_high"]:
                fail(i, "mean_ci_low exceeds mean_ci_high")
        else:
            for col in ("successes", "fraction", "ci_low", "ci_high"):
                if pd.isna(row[col]):
                    fail(i, f"column {col!r} is empty or NaN on a fraction row; rerun `costmodel bench`")
            if not 0 <= row["fraction"] <= 1:
                fail(i, f"column 'fraction' = {row['fraction']} lies outside 0..1")
            if row["successes"] > row["n"]:
                fail(i, "column 'successes' exceeds 'n'")
        if row["ci_low"] > row["ci_high"]:
            fail(i, "ci_low exceeds ci_high")


def read_measurements(directory: str | Path, notes_to=None) -> tuple[pd.DataFrame, dict]:
    """The tidy summary (every probe's rows, with every probe's configuration keys) and the
    provenance of a measurement directory, both validated. A set written in the wide layout of
    earlier versions reads as it did, with a note (once per directory; to ``notes_to``, else
    stderr)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(f"{directory}: no such measurement directory")
    prov_path = directory / PROVENANCE_NAME
    try:
        prov = json.loads(prov_path.read_text())
    except FileNotFoundError:
        raise UserError(f"{prov_path}: missing; a measurement directory needs its provenance") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{prov_path}: not valid JSON ({exc})") from None
    if not isinstance(prov, dict):
        raise UserError(f"{prov_path}: expected a JSON object")
    for key in _prov.REQUIRED_KEYS:
        if key not in prov:
            raise UserError(f"{prov_path}: lacks key {key!r}; rerun `costmodel bench` to regenerate it")
    frame = _read_summary(directory)
    if (directory / WIDE_NAME).exists():
        _note_wide(directory, notes_to)
    return frame, prov


#: directories whose wide layout has been noted in this process (one note each, not one per read)
_NOTED: set[Path] = set()


def _note_wide(directory: Path, notes_to=None) -> None:
    key = directory.resolve()
    if notes_to is None and key in _NOTED:
        return
    _NOTED.add(key)
    tables = table_files(directory)
    also = f" (beside the tables of {', '.join(tables)})" if tables else ""
    print(f"note: {directory / WIDE_NAME} is the one wide table of an earlier version (every probe's keys in "
          f"every row){also}; it reads as it always did; `costmodel bench --resummarise {directory} --force` "
          f"rewrites the set as {TABLES_DIR}/<probe>.csv", file=notes_to if notes_to is not None else sys.stderr)


def _read_summary(directory: Path) -> pd.DataFrame:
    """The summary of a measurement directory in memory, every row of every probe, validated: its
    tables (``measurements/<probe>.csv``) and, in a set written before them, the wide
    ``measurements.csv`` (a probe's table, where it has one, wins over its rows there)."""
    tables = table_files(directory)
    wide = directory / WIDE_NAME
    if not tables and not wide.exists():
        if (directory / TABLES_DIR).is_dir():
            return tidy_frame([])   # every probe failed or was skipped without a row
        raise UserError(f"{directory / TABLES_DIR}: missing; no probe finished in this directory")
    known = {p.name: i for i, p in enumerate(_catalog.PROBES)}
    for name, path in tables.items():
        if name not in known:
            raise UserError(f"{path}: probe {name!r} is unknown; known: {', '.join(sorted(known))}")
    parts = []
    if wide.exists():
        old = _read_csv(wide, directory)
        parts.append(old[~old["probe"].isin(list(tables))])
    for name in sorted(tables, key=known.get):
        parts.append(_read_csv(tables[name], directory, probe=name))
    parts = [p for p in parts if len(p)]
    return tidy_frame(pd.concat(parts, ignore_index=True)) if parts else tidy_frame([])


def read_raw(directory: str | Path, probe: str) -> pd.DataFrame:
    """Every raw sample one probe recorded in a measurement directory (config + measure + value)."""
    from .parse import merge_rounds

    spec = probe_spec(probe)
    paths = raw_files(Path(directory) / RAW_DIR).get(spec.name)
    if not paths:
        return read_probe_file(Path(directory) / RAW_DIR / f"{spec.name}.tsv.gz", expected=spec.name).samples
    return merge_rounds([read_probe_file(p, expected=spec.name) for p in paths]).samples
