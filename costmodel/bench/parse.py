"""Read and validate what a probe printed (the line format is described in probes/harness.h).

Every defect a person could meet in a file — a malformed line, a missing field, NaN, a cut-off
output — is a :class:`~costmodel.errors.UserError` naming the file, the line and the fix.
"""

from __future__ import annotations

import gzip
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import UserError
from . import catalog as _catalog
from .catalog import BINARY_MEASURES, COUNTERS, MEASURES, ProbeSpec

FORMAT = 1
RECORD_TYPES = ("probe", "meta", "plan", "sample", "counter", "skip", "end")
_KEY = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass
class ProbeOutput:
    """One probe run, parsed: samples and counters as DataFrames, plus what it said about itself."""

    probe: str
    meta: dict[str, str] = field(default_factory=dict)
    samples: pd.DataFrame | None = None   # config columns + measure + value
    counters: pd.DataFrame | None = None  # config columns + name + total + ops
    skips: list[dict] = field(default_factory=list)  # {"config": {...}, "reason": str}
    plan: int | None = None

    @property
    def skipped_whole(self) -> bool:
        """True when the probe measured nothing and said why."""
        return len(self.samples) == 0 and any(not s["config"] for s in self.skips)


def _fields(parts: list[str], where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in parts:
        key, sep, value = part.partition("=")
        if not sep:
            raise UserError(f"{where}: field {part!r} is not key=value; the line is malformed")
        if not _KEY.match(key):
            raise UserError(f"{where}: field name {key!r} is not a lower-case identifier")
        if key in out:
            raise UserError(f"{where}: field {key!r} appears twice")
        out[key] = value
    return out


def _number(value: str, key: str, where: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise UserError(f"{where}: field {key!r} = {value!r} is not a number") from None
    if math.isnan(x) or math.isinf(x):
        raise UserError(f"{where}: field {key!r} is {value}; a valid measurement is a finite number")
    return x


def _config(values: dict[str, str], spec: ProbeSpec, where: str, partial: bool) -> dict:
    """Typed configuration fields; all required ones present unless ``partial``."""
    out: dict = {}
    for key in spec.required_config:
        if key not in values:
            if partial:
                continue
            raise UserError(f"{where}: lacks field {key!r}, which every {spec.name} sample carries")
    for key, raw in values.items():
        if key not in spec.all_config:
            raise UserError(f"{where}: unknown field {key!r} for {spec.name}; "
                            f"expected {', '.join(spec.all_config)}")
        kind = spec.keys[key].kind
        if kind is int:
            x = _number(raw, key, where)
            if x != int(x):
                raise UserError(f"{where}: field {key!r} = {raw!r} is not a whole number")
            out[key] = int(x)
        else:
            if not raw:
                raise UserError(f"{where}: field {key!r} is empty")
            out[key] = raw
    return out


def parse_probe_output(text: str, expected: str | None = None, source: str = "probe output") -> ProbeOutput:
    """Parse and validate one probe's output; ``expected`` names the probe it must come from."""
    if not text.strip():
        raise UserError(f"{source}: empty; the probe printed nothing (did it crash? see its stderr)")
    lines = text.split("\n")
    complete_last_line = text.endswith("\n")
    if complete_last_line:
        lines = lines[:-1]
    elif not lines[-1].startswith("end\t"):
        raise UserError(f"{source}: line {len(lines)} stops mid-line without an 'end' record: truncated "
                        f"(the probe was interrupted or the file cut short); run the probe again")

    first = lines[0].split("\t")
    if first[0] != "probe":
        raise UserError(f"{source} line 1: expected the 'probe' header, got {lines[0][:60]!r}")
    head = _fields(first[1:], f"{source} line 1")
    name = head.get("name")
    if name is None:
        raise UserError(f"{source} line 1: the 'probe' header lacks field 'name'")
    if expected is not None and name != expected:
        raise UserError(f"{source} line 1: output of probe {name!r}, expected {expected!r}")
    if name not in _catalog.PROBES_BY_NAME:
        raise UserError(f"{source} line 1: unknown probe {name!r}; known: {', '.join(_catalog.PROBES_BY_NAME)}")
    if head.get("format") != str(FORMAT):
        raise UserError(f"{source} line 1: format {head.get('format')!r} is not supported "
                        f"(this reader knows format {FORMAT}); recompile the probes or upgrade costmodel")
    spec = _catalog.PROBES_BY_NAME[name]
    out = ProbeOutput(probe=name)
    sample_rows: list[dict] = []
    counter_rows: list[dict] = []
    end_count: int | None = None

    for index, line in enumerate(lines[1:], start=2):
        where = f"{source} line {index}"
        if end_count is not None:
            raise UserError(f"{where}: text after the 'end' record; the file was damaged or concatenated")
        if not line:
            raise UserError(f"{where}: empty line; the output is malformed")
        parts = line.split("\t")
        kind = parts[0]
        if kind not in RECORD_TYPES or kind == "probe":
            raise UserError(f"{where}: unknown record type {kind[:30]!r}; expected one of "
                            f"{', '.join(RECORD_TYPES[1:])}")
        values = _fields(parts[1:], where)
        if kind == "meta":
            if "key" not in values or "value" not in values:
                raise UserError(f"{where}: a 'meta' record needs fields 'key' and 'value'")
            out.meta[values["key"]] = values["value"]
        elif kind == "plan":
            if "samples" not in values:
                raise UserError(f"{where}: a 'plan' record needs field 'samples'")
            out.plan = int(_number(values["samples"], "samples", where))
        elif kind == "sample":
            measures = [k for k in values if k in MEASURES]
            if len(measures) != 1:
                if not measures:
                    raise UserError(f"{where}: sample has no measure; expected one of "
                                    f"{', '.join(spec.measures)}")
                raise UserError(f"{where}: sample has several measures {measures}; one per line")
            measure = measures[0]
            if measure not in spec.measures:
                raise UserError(f"{where}: measure {measure!r} is not one {spec.name} reports "
                                f"({', '.join(spec.measures)})")
            value = _number(values.pop(measure), measure, where)
            if measure in BINARY_MEASURES and value not in (0.0, 1.0):
                raise UserError(f"{where}: field {measure!r} = {value:g} must be 0 or 1")
            row = _config(values, spec, where, partial=False)
            row["measure"] = measure
            row["value"] = value
            sample_rows.append(row)
        elif kind == "counter":
            for key in ("name", "total", "ops"):
                if key not in values:
                    raise UserError(f"{where}: a 'counter' record needs field {key!r}")
            cname = values.pop("name")
            if cname not in spec.counters or cname not in COUNTERS:
                raise UserError(f"{where}: counter {cname!r} is not one {spec.name} reports")
            total = _number(values.pop("total"), "total", where)
            ops = _number(values.pop("ops"), "ops", where)
            if ops <= 0:
                raise UserError(f"{where}: counter 'ops' must be positive, got {ops:g}")
            row = _config(values, spec, where, partial=False)
            row.update(name=cname, total=total, ops=ops)
            counter_rows.append(row)
        elif kind == "skip":
            if "reason" not in values:
                raise UserError(f"{where}: a 'skip' record needs field 'reason'")
            reason = values.pop("reason")
            out.skips.append({"config": _config(values, spec, where, partial=True), "reason": reason})
        elif kind == "end":
            if "samples" not in values:
                raise UserError(f"{where}: the 'end' record needs field 'samples'")
            end_count = int(_number(values["samples"], "samples", where))
            if end_count != len(sample_rows):
                raise UserError(f"{where}: 'end' says {end_count} samples but {len(sample_rows)} were read; "
                                f"the output is damaged")

    if end_count is None:
        raise UserError(f"{source}: ends after line {len(lines)} without an 'end' record: truncated "
                        f"(the probe was interrupted or the file cut short); run the probe again")

    columns = list(spec.all_config)
    out.samples = pd.DataFrame(sample_rows, columns=[*columns, "measure", "value"])
    out.counters = pd.DataFrame(counter_rows, columns=[*columns, "name", "total", "ops"])
    for frame in (out.samples, out.counters):
        for col in columns:
            if spec.keys[col].kind is int:
                frame[col] = frame[col].astype("Int64")
    return out


def read_probe_file(path: str | Path, expected: str | None = None) -> ProbeOutput:
    """Parse a probe's raw output stored as text or gzip (``.gz``)."""
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                text = fh.read()
        else:
            text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot be read ({exc}); the file is damaged or truncated") from None
    return parse_probe_output(text, expected=expected, source=str(path))


#: meta keys of the workload probe that carry a mean per configuration: pooled over rounds
_POOLED_META = re.compile(r"^gap_adds_")


def merge_rounds(outputs: list[ProbeOutput]) -> ProbeOutput:
    """One probe's runs of several rounds (``costmodel bench --repeat N``) as one output: the
    samples and counters of every round, each sample with its ``round`` (1..N); the first round's
    meta, with the per-configuration gap means of the workload probe pooled over the rounds (weighted
    by their trials) and each round's meta kept under ``round<k>_<key>`` where it differs; the skips
    every round reported. A single output comes back with round 1."""
    if not outputs:
        raise ValueError("no rounds to merge")
    first = outputs[0]
    samples, counters = [], []
    for k, out in enumerate(outputs, start=1):
        if out.samples is not None and len(out.samples):
            samples.append(out.samples.assign(round=k))
        if out.counters is not None and len(out.counters):
            counters.append(out.counters.assign(round=k))
    meta = dict(first.meta)
    for key in [k for k in meta if _POOLED_META.match(k)]:
        parts = []
        for out in outputs:
            raw = out.meta.get(key)
            if raw:
                f = dict(p.partition("=")[::2] for p in raw.split())
                try:
                    parts.append((float(f["mean"]), float(f["var"]), float(f["gap_ns"]), float(f["trials"])))
                except (KeyError, ValueError):
                    parts = []
                    break
        if len(parts) == len(outputs) and len(parts) > 1:
            n = sum(p[3] for p in parts)
            mean = sum(p[0] * p[3] for p in parts) / n
            second = sum((p[1] + p[0] ** 2) * p[3] for p in parts) / n
            gap = sum(p[2] * p[3] for p in parts) / n
            meta[key] = f"mean={mean:.3f} var={max(second - mean ** 2, 0.0):.3f} gap_ns={gap:.0f} trials={n:.0f}"
    for k, out in enumerate(outputs[1:], start=2):
        for key, value in out.meta.items():
            if not _POOLED_META.match(key) and meta.get(key) != value:
                meta[f"round{k}_{key}"] = value
    if len(outputs) > 1:
        meta["rounds"] = str(len(outputs))
    seen, skips = set(), []
    for out in outputs:
        for s in out.skips:
            key = (tuple(sorted(s["config"].items())), s["reason"])
            if key not in seen:
                seen.add(key)
                skips.append(s)
    empty = first.samples.iloc[0:0].assign(round=pd.Series(dtype="int64")) if first.samples is not None else None
    merged_samples = pd.concat(samples, ignore_index=True) if samples else empty
    merged_counters = pd.concat(counters, ignore_index=True) if counters else first.counters
    return ProbeOutput(first.probe, meta, merged_samples, merged_counters, skips,
                       sum(o.plan or 0 for o in outputs) or None)
