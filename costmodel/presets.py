"""Workload presets: named bundles of registry values for the scenarios the project is about.

Each says where its numbers come from. They set workload parameters only; a kernel preset
(:data:`costmodel.registry.KERNEL_PRESETS`) or a parameter file supplies the machine. Applied in
the order parameter file < workload preset < kernel preset < explicit settings, so a kernel that
has no exclusive marker (``p_exclusive = 0`` before 5.19) overrides a workload's share.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import pandas as pd

from . import paramfile, registry
from .errors import UserError
from .paramfile import default_params_path, load


@dataclass(frozen=True)
class WorkloadPreset:
    name: str
    title: str
    values: Mapping[str, object]
    #: where the numbers come from, in one or two sentences
    source: str
    #: name -> (low, high): ranges a workload file gives, drawn like --vary-range NAME=LO:HI
    intervals: Mapping[str, tuple[float, float]] = field(default_factory=dict)


WORKLOAD_PRESETS: dict[str, WorkloadPreset] = {
    p.name: p
    for p in [
        WorkloadPreset(
            "uffd-live-migration", "userfaultfd live-migration monitor",
            {"gap_model": "exponential_time", "wp_gap_s": 2e-5, "position_model": "stationary",
             "batch_adds_per_s": 2.5e5, "explicit_drains_per_s": 10.0, "drain_all_per_s": 0.1,
             "p_same_cpu": 0.1, "p_exclusive": 0.0, "p_other_ref": 0.01, "p_large_folio": 0.0,
             "remote_cpus": 7, "cpus": 16, "wp_faults_per_s": 2.5e5},
            "The scenario of the seed report (Nadav Amit, linux-mm, 2021-10-13): a monitor thread installs each "
            "page with UFFDIO_COPY on its own CPU and the vCPU thread writes it shortly after on another, so the "
            "page usually sits in a remote batch (p_same_cpu 0.1). Rates assumed for a post-copy stream of "
            "about 1 GB/s of 4 KiB pages (~250k installs/s) and a wake-up gap of ~20 us; 8 vCPU threads."),
        WorkloadPreset(
            "fork-snapshot", "fork-based snapshot",
            {"gap_model": "exponential_time", "wp_gap_s": 1e-4, "position_model": "stationary",
             "batch_adds_per_s": 5e4, "explicit_drains_per_s": 50.0, "drain_all_per_s": 0.1,
             "p_same_cpu": 0.9, "p_exclusive": 0.0, "p_other_ref": 0.02, "p_large_folio": 0.0,
             "remote_cpus": 3, "cpus": 8, "wp_faults_per_s": 2e4},
            "A process forks (Redis-like BGSAVE, CRIU-style dump) and its recently faulted pages lose the "
            "exclusive marker (PageAnonExclusive, Linux 5.19); once the child is gone, the parent's writes to those pages "
            "take WP faults, mostly on the CPU that faulted them in (p_same_cpu 0.9, as the project's probe "
            "forks from the writing CPU). Rates and the 4-thread parent are assumed."),
        WorkloadPreset(
            "swap-fast-device", "swap on a fast device",
            {"gap_model": "exponential_time", "wp_gap_s": 5e-6, "position_model": "stationary",
             "batch_adds_per_s": 5e5, "explicit_drains_per_s": 20.0, "drain_all_per_s": 0.1,
             "p_same_cpu": 0.8, "p_exclusive": 0.5, "p_other_ref": 0.01, "p_large_folio": 0.0,
             "remote_cpus": 1, "cpus": 2, "wp_faults_per_s": 3e5},
            "Nadav Amit's reproducer (linux-mm, 2021-11-10): two threads in a KVM guest with swap on emulated "
            "pmem (SWP_SYNCHRONOUS_IO), a swap-in fault followed at once by a write, 1606 -> 10534 cycles per "
            "operation on 5.13; one other CPU runs the mm. The share of swap-ins that keep the exclusive marker "
            "(0.5) and the rates are assumed."),
    ]
}


def workload_preset(name: str) -> WorkloadPreset:
    """A built-in workload by name, or a workload file (:func:`load_workload_file`) by path."""
    if name in WORKLOAD_PRESETS:
        return WORKLOAD_PRESETS[name]
    if Path(name).suffix.lower() == ".json" or Path(name).exists() or "/" in name:
        return load_workload_file(name)
    raise UserError(f"--workload {name!r}: no such workload; give one of {', '.join(WORKLOAD_PRESETS)}, or a "
                    "workload file (JSON; `costmodel params workload -o FILE` writes one to edit)")


#: the ``kind`` a workload file declares, and the format this version writes and reads
WORKLOAD_KIND, WORKLOAD_FORMAT = "costmodel-workload", 1


def _workload_names() -> list[str]:
    return [n for n, e in registry.PARAMS.items() if e.kind == registry.WORKLOAD]


def load_workload_file(path: str | Path) -> WorkloadPreset:
    """A user's own workload: a JSON file of workload parameters, each a value or
    ``{"value": v, "low": lo, "high": hi}`` (the range is drawn uniformly, log-uniformly where it
    spans a factor 3, like ``--vary-range``), with a ``name`` and a ``source`` saying where the
    numbers come from. Every value is checked by the registry; strings are never evaluated."""
    p = Path(path)
    where = f"workload file {p}"
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UserError(f"{where}: no such file; give one of {', '.join(WORKLOAD_PRESETS)} or a workload file "
                        "(`costmodel params workload -o FILE` writes one)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{where}: cannot read it ({exc.__class__.__name__}); give a UTF-8 JSON file") from None
    try:
        doc = json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(f"{c} is not a number")))
    except ValueError as exc:
        pos = f" (line {exc.lineno}, column {exc.colno})" if hasattr(exc, "lineno") else ""
        raise UserError(f"{where}: not valid JSON{pos}: {getattr(exc, 'msg', exc)}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("parameters"), dict):
        raise UserError(f"{where}: expected an object with \"parameters\": {{NAME: value or {{\"value\": v, "
                        "\"low\": lo, \"high\": hi}}}} (`costmodel params workload` writes one)")
    if doc.get("kind", WORKLOAD_KIND) != WORKLOAD_KIND:
        raise UserError(f"{where}: kind {doc.get('kind')!r} is not a workload file; a parameter file goes to --params")
    fmt = doc.get("format", WORKLOAD_FORMAT)
    if fmt != WORKLOAD_FORMAT:
        raise UserError(f"{where}: format {fmt!r} is not known to this version (it reads format {WORKLOAD_FORMAT})")
    values: dict = {}
    intervals: dict = {}
    workload = set(_workload_names())
    for name, raw in doc["parameters"].items():
        if name not in registry.PARAMS:
            raise registry.unknown_parameter(name)
        if name not in workload:
            raise UserError(f"{where}: {name} is a machine parameter, not a workload one; put it in a parameter "
                            f"file (--params) or --set {name}=...")
        field_ = f"{where}: parameters.{name}"
        if isinstance(raw, dict):
            unknown = set(raw) - {"value", "low", "high", "note"}
            if unknown or "value" not in raw:
                raise UserError(f"{field_}: give {{\"value\": v}} with optional \"low\", \"high\", \"note\""
                                + (f" (not {', '.join(sorted(unknown))})" if unknown else ""))
            value = _checked(field_, name, raw["value"])
            if ("low" in raw) != ("high" in raw):
                raise UserError(f"{field_}: give both \"low\" and \"high\", or neither")
            if "low" in raw:
                if name not in registry.NUMERIC:
                    raise UserError(f"{field_}: a choice has no range; drop low and high")
                lo, hi = _checked(field_ + ".low", name, raw["low"]), _checked(field_ + ".high", name, raw["high"])
                if not lo <= value <= hi:
                    raise UserError(f"{field_}: low {lo:g} .. high {hi:g} must hold the value {value:g}")
                if hi > lo:
                    intervals[name] = (float(lo), float(hi))
        else:
            value = _checked(field_, name, raw)
        values[name] = value
    title = str(doc.get("name") or p.stem)
    source = str(doc.get("source") or f"a user's workload file ({p.name}) that does not say where its numbers come from")
    registry.resolve(values)  # the rules between the parameters it sets, with defaults for the rest
    return WorkloadPreset(str(p), title, values, source, intervals)


def _checked(field_: str, name: str, raw):
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise UserError(f"{field_}: give a number (or a choice's name), not {type(raw).__name__}")
    if isinstance(raw, float) and not math.isfinite(raw):
        raise UserError(f"{field_}: give a finite number")
    try:
        return registry.parse_value(name, raw)
    except UserError as exc:
        raise UserError(f"{field_}: {exc}") from None


def workload_document(values: Mapping[str, object], name: str = "my-workload",
                      intervals: Mapping[str, tuple[float, float]] | None = None, source: str = "") -> dict:
    """A workload file's content for the workload parameters of ``values`` (what
    ``costmodel params workload`` writes), each with its range where ``intervals`` gives one."""
    intervals = intervals or {}
    params = {}
    for n in _workload_names():
        v = values[n]
        v = v.item() if hasattr(v, "item") else v
        params[n] = {"value": v, "low": intervals[n][0], "high": intervals[n][1]} if n in intervals else v
    return {"kind": WORKLOAD_KIND, "format": WORKLOAD_FORMAT, "name": name,
            "source": source or "where these numbers come from (a trace, a measurement, an assumption)",
            "parameters": params}


def workload_intervals(workload: str | None) -> dict[str, tuple[float, float]]:
    """The ranges a workload file gives (none for a built-in workload or none given)."""
    return dict(workload_preset(workload).intervals) if workload else {}


def compose(paramfile_values: Mapping[str, object] | None = None, workload: str | None = None,
            kernel: str | None = None, overrides: Mapping[str, object] | None = None, *,
            paramfile_origin: str = "parameter set", overrides_origin: str = "--set") -> tuple[registry.Point, str | None]:
    """Registry defaults < parameter file < workload preset < kernel preset < overrides, checked
    once: the one implementation of this layering (the commands' --params/--workload/--preset/--set
    and the explorer's pickers both come here). Returns the :class:`registry.Point` (each value's
    origin: ``"default"``, ``paramfile_origin``, ``"workload NAME"``, ``"preset NAME"`` or
    ``overrides_origin``) and the kernel preset's policy (or None)."""
    layers: list = [(paramfile_origin, paramfile_values)]
    if workload:
        layers.append((f"workload {workload}", workload_preset(workload).values))
    policy = None
    if kernel:
        kp = registry.preset(kernel)
        layers.append((f"preset {kp.name}", kp.values))
        policy = kp.policy
    layers.append((overrides_origin, overrides))
    return registry.resolve_layers(*layers), policy


def workload_table():
    """The workload presets as a table: name, title, the values they set, where they come from."""
    return pd.DataFrame([{"name": p.name, "title": p.title,
                          "sets": ", ".join(f"{k}={v}" for k, v in p.values.items()), "source": p.source}
                         for p in WORKLOAD_PRESETS.values()])


# ---- parameter sets as starting points -----------------------------------------------------------


def parameter_sets() -> dict:
    """name -> loaded ParamSet for every committed file (:func:`paramfile.committed_sets`)."""
    return {name: load(path) for name, path in paramfile.committed_sets().items()}


def parameter_sets_summary(sets: Mapping[str, object]) -> str:
    """A Markdown list of the sets with their description and how many values were measured."""
    if not sets:
        return "_No parameter sets are committed yet: `costmodel calibrate` writes one to data/params._"
    lines = []
    for name, ps in sets.items():
        counts: dict[str, int] = {}
        for e in ps.parameters.values():
            counts[e.source] = counts.get(e.source, 0) + 1
        src = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        lines.append(f"- **{name}**: {ps.description} ({src}; {len(ps.fit)} fit records)")
    return "\n".join(lines)


def default_values() -> tuple[registry.Point, object, str]:
    """The starting point of the notebooks: the calibrated set of this project's machine if it
    is committed, else the registry defaults. Returns (the checked point, ParamSet or None, a
    sentence); the set's values have the set's name as their origin."""
    try:
        path = default_params_path()
    except UserError as exc:
        return registry.resolve(), None, f"registry defaults ({exc})"
    ps = load(path)
    return ps.point(), ps, f"parameter set {ps.name} from {path.name}"
