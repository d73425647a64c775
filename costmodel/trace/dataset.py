"""The trace dataset: tidy tables with provenance, beside the measurement sets.

``DIR/trace.json``           kind ``costmodel-trace``, format, provenance (an allowlist of the
                             machine's facts), the recording (command, times, losses), the counts
``DIR/wp_faults.csv.gz``     one row per WP fault of the traced tree
``DIR/batch_moves.csv.gz``   one row per move of any CPU's add batch to the LRU
``DIR/drain_all.csv``        one row per drain work queued by lru_add_drain_all()
``DIR/raw/cpuN.bin``         the raw ring-buffer pages (optional: everything above is rebuilt
                             from them by ``costmodel trace --recount DIR``)
"""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import shutil
import tempfile
import tempfile as _tf
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import registry
from ..bench import provenance as bench_provenance
from ..errors import UserError
from . import count as _count
from . import ingest
from .record import Recording
from .tracefs import EventFormat

KIND = "costmodel-trace"
FORMAT = 1
META = "trace.json"
WP = "wp_faults.csv.gz"
MOVES = "batch_moves.csv.gz"
DRAIN_ALL = "drain_all.csv"
#: provenance keys kept from the machine's facts (an allowlist, as for measurement sets)
PROVENANCE_KEYS = ("cpu_model", "cpu_vendor", "cpu_family", "cpu_model_number", "cpu_stepping", "architecture",
                   "online_cpus", "hypervisor", "kernel_release", "clocksource", "thp_enabled", "page_size_bytes",
                   "memory_total_kib", "costmodel_version", "date")


@dataclass
class Trace:
    directory: Path
    meta: dict
    wp: pd.DataFrame
    moves: pd.DataFrame
    drain_all: pd.DataFrame

    @property
    def provenance(self) -> dict:
        return self.meta["provenance"]

    @property
    def duration_s(self) -> float:
        r = self.meta["recording"]
        return (r["t_end_ns"] - r["t_start_ns"]) / 1e9

    @property
    def counts(self) -> dict:
        return self.meta["counts"]


def provenance() -> dict:
    facts = bench_provenance.machine_facts()
    return {k: facts.get(k) for k in PROVENANCE_KEYS}


def batch_size_for(release: str) -> int:
    return int(registry.kernel_preset_for(release).values.get("batch_size", 31))


def counts_of(wp: pd.DataFrame, moves: pd.DataFrame, drain_all: pd.DataFrame, duration_s: float) -> dict:
    """The counts of a trace: each with its number, rate per second and share of WP faults."""
    n = int(len(wp))

    def item(k) -> dict:
        k = int(k)
        return {"count": k, "per_s": k / duration_s if duration_s > 0 else math.nan,
                "share_of_wp_faults": k / n if n else math.nan}

    anon = wp["page"] == _count.KIND_ANON
    copied = wp["copied"].astype(bool)
    held = wp["held"].astype(bool) & anon
    sharer = wp["live_sharer"].astype(bool)
    calls = int(drain_all["call"].nunique()) if len(drain_all) and "call" in drain_all else 0
    return {
        "wp_faults": item(n),
        "copies": item(copied.sum()),
        "batch_held_copies": item((copied & held & ~sharer).sum()),
        "batch_held_copies_with_live_sharer": item((copied & held & sharer).sum()),
        "copies_with_live_sharer": item((copied & sharer & anon).sum()),
        "copies_not_anon_install": item((copied & ~anon).sum()),
        "copies_other_reference": item((copied & anon & ~held & ~sharer).sum()),
        "copies_zero_or_file_page": item((copied & (wp["page"] == _count.KIND_ZERO_FILE)).sum()),
        "in_fault_drains": item(wp["in_fault_drain"].astype(bool).sum()),
        "in_fault_drains_seen": item((wp["drained_folios"] > 0).sum()),
        "shootdowns": item(wp["shootdowns"].sum()),
        "shootdown_ipis": item(wp["ipis"].sum()),
        "shootdown_ipi_targets": item(wp["ipi_targets"].sum()),
        "wp_faults_anon_installed": item(anon.sum()),
        "wp_faults_held_in_batch": item(held.sum()),
        "drain_all_calls": item(calls),
        "drain_all_works": item(len(drain_all)),
        "batch_moves": {c: item((moves["cause"] == c).sum()) for c in ("fill", "local_drain", "drain_all", "large_add")},
    }


def _frame_csv(df: pd.DataFrame, path: Path) -> None:
    if path.suffix == ".gz":
        data = gzip.compress(df.to_csv(index=False).encode(), mtime=0)
    else:
        data = df.to_csv(index=False).encode()
    path.write_bytes(data)


def build(rec, out_dir: Path, force: bool = False, keep_raw: bool = True, provenance_: dict | None = None) -> Trace:
    """Decode, count and write a dataset from a :class:`~costmodel.trace.record.Recording`
    whose raw pages are in ``rec.raw_dir``; written beside ``out_dir`` and renamed into place."""
    prov = provenance_ or provenance()
    batch = batch_size_for(prov.get("kernel_release") or "6.18")
    formats = [EventFormat.from_json(f) for f in rec.formats]
    ev, missed = ingest.read_raw_dir(rec.raw_dir, rec.page_size, formats)
    ev = ev.take((ev["t_ns"] >= rec.t_start_ns) | (ev["kind"] != 0))
    counted = _count.count(ev, set(rec.roots), rec.symbols, batch, rec.t_start_ns, rec.t_end_ns,
                           {int(k): int(v) for k, v in rec.root_tgids.items()})
    duration = (rec.t_end_ns - rec.t_start_ns) / 1e9
    lost = {c: {k: v for k, v in s.items() if k != "entries"} for c, s in (rec.stats or {}).items()}
    lost_total = sum(v.get("overrun", 0) + v.get("dropped_events", 0) + v.get("commit_overrun", 0)
                     for v in lost.values()) + sum(missed.values())
    adds = counted.adds
    cpus = {}
    for c in sorted(set(adds["cpu"].tolist()) | set(counted.moves["cpu"].tolist() if len(counted.moves) else [])):
        a = adds[adds["cpu"] == c]
        m = counted.moves[counted.moves["cpu"] == c] if len(counted.moves) else counted.moves
        cpus[str(int(c))] = {"adds": int(len(a)), "large_adds": int((a["order"] > 0).sum()),
                             **{f"moves_{k}": int((m["cause"] == k).sum()) for k in ("fill", "local_drain", "drain_all",
                                                                                       "large_add")}}
    wp = counted.wp
    meta = {
        "kind": KIND,
        "format": FORMAT,
        "provenance": prov,
        "recording": {
            "command": rec.command, "attached": rec.attached, "roots": rec.roots,
            "root_tgids": {str(k): int(v) for k, v in rec.root_tgids.items()},
            "stats": rec.stats,
            "t_start_ns": rec.t_start_ns, "t_end_ns": rec.t_end_ns, "duration_s": duration,
            "exit_status": rec.exit_status, "interrupted": rec.interrupted, "clock": "mono",
            "buffer_kb_per_cpu": rec.buffer_kb, "page_size": rec.page_size,
            "events_decoded": int(len(ev)), "missing_events": rec.missing_events,
            "lost": {"per_cpu": lost, "pages_flagged_missed": {str(k): v for k, v in missed.items()},
                     "total": lost_total},
            "complete": bool(lost_total == 0 and not rec.interrupted),
        },
        "batch_size": batch,
        "tasks": counted.tasks,
        "cpus": cpus,
        "counts": counts_of(wp, counted.moves, counted.drain_all, duration),
        "formats": rec.formats,
        "symbols": rec.symbols,
    }
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not force:
        raise UserError(f"{out_dir} already exists and is not empty; pass --force to replace it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        _frame_csv(wp, tmp / WP)
        _frame_csv(counted.moves, tmp / MOVES)
        _frame_csv(counted.drain_all, tmp / DRAIN_ALL)
        (tmp / META).write_text(json.dumps(meta, indent=1, default=_jsonable) + "\n")
        if keep_raw and Path(rec.raw_dir).resolve() != (tmp / "raw").resolve():
            shutil.copytree(rec.raw_dir, tmp / "raw")
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(out_dir, old)
            os.replace(tmp, out_dir)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return load(out_dir)


def recount(directory, force: bool = True) -> Trace:
    """Count a recorded trace again from its raw pages (``DIR/raw``) with this version's rules."""
    d = Path(directory)
    tr = load(d)
    r = tr.meta["recording"]
    if not (d / "raw").is_dir():
        raise UserError(f"{d}: no raw/ pages kept (recorded with --no-raw); record it again to recount")
    work = Path(_tf.mkdtemp(prefix=f".{d.name}.recount.", dir=d.parent))
    try:
        shutil.copytree(d / "raw", work / "raw")
        rec = Recording(work / "raw", int(r["page_size"]), tr.meta["formats"], tr.meta["symbols"], r["roots"],
                        {int(k): int(v) for k, v in r.get("root_tgids", {}).items()}, r.get("command"),
                        r.get("attached"), int(r["t_start_ns"]), int(r["t_end_ns"]), r.get("exit_status"),
                        bool(r.get("interrupted")), r.get("stats", {}), r.get("missing_events", []),
                        int(r.get("buffer_kb_per_cpu", 0)))
        return build(rec, d, force=force, keep_raw=True, provenance_=tr.provenance)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _jsonable(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(type(x).__name__)


def is_trace(directory) -> bool:
    """True when ``directory`` holds a trace dataset (its trace.json says so)."""
    p = Path(directory) / META
    if not p.is_file():
        return False
    try:
        return json.loads(p.read_text()).get("kind") == KIND
    except (OSError, ValueError, AttributeError):
        return False


def _read_table(path: Path, what: str) -> pd.DataFrame:
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
        return pd.read_csv(io.BytesIO(raw))
    except FileNotFoundError:
        raise UserError(f"{path.parent}: {path.name} is missing; the trace dataset is incomplete "
                        f"(record it again with `costmodel trace -o DIR -- COMMAND`)") from None
    except (OSError, EOFError, ValueError, pd.errors.ParserError) as e:
        raise UserError(f"{path}: the {what} table is truncated or corrupt ({type(e).__name__}); "
                        f"record the trace again") from None


WP_COLUMNS = ("t_ns", "cpu", "pid", "page", "copied", "held", "live_sharer", "install_cpu", "same_cpu", "gap_ns",
              "order", "drained_folios", "in_fault_drain", "shootdowns", "ipis", "ipi_targets", "adds_in_gap",
              "remote_cpus", "batch_held_copy")


def load(directory) -> Trace:
    """A trace dataset; a UserError (one line) for a directory that is not one, or is damaged."""
    d = Path(directory)
    if not d.is_dir():
        raise UserError(f"{d}: no such directory; give a trace dataset written by `costmodel trace -o DIR`")
    p = d / META
    if not p.is_file():
        raise UserError(f"{d} is not a trace dataset (no {META}); record one with `costmodel trace -o DIR -- COMMAND`")
    try:
        meta = json.loads(p.read_text())
    except ValueError:
        raise UserError(f"{p}: not valid JSON (truncated?); record the trace again") from None
    if not isinstance(meta, dict) or meta.get("kind") != KIND:
        raise UserError(f"{p}: not a costmodel trace (kind {meta.get('kind') if isinstance(meta, dict) else None!r}, "
                        f"expected {KIND!r}); give a directory written by `costmodel trace`")
    if int(meta.get("format", 0)) > FORMAT:
        raise UserError(f"{p}: trace format {meta.get('format')} is newer than this costmodel reads ({FORMAT}); "
                        f"upgrade costmodel")
    for key in ("provenance", "recording", "counts", "batch_size"):
        if key not in meta:
            raise UserError(f"{p}: the field {key!r} is missing; record the trace again")
    wp = _read_table(d / WP, "WP-fault")
    missing = [c for c in WP_COLUMNS if c not in wp.columns]
    if missing:
        raise UserError(f"{d / WP}: column {missing[0]!r} is missing; record the trace again")
    moves = _read_table(d / MOVES, "batch-move")
    drain_all = _read_table(d / DRAIN_ALL, "drain-all")
    return Trace(d, meta, wp, moves, drain_all)
