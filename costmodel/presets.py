"""Workload presets: named bundles of registry values for the scenarios the project is about.

Each says where its numbers come from. They set workload parameters only; a kernel preset
(:data:`costmodel.registry.KERNEL_PRESETS`) or a parameter file supplies the machine. Applied in
the order parameter file < workload preset < kernel preset < explicit settings, so a kernel that
has no exclusive marker (``p_exclusive = 0`` before 5.19) overrides a workload's share.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from . import registry
from .errors import UserError


@dataclass(frozen=True)
class WorkloadPreset:
    name: str
    title: str
    values: Mapping[str, object]
    #: where the numbers come from, in one or two sentences
    source: str


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
    try:
        return WORKLOAD_PRESETS[name]
    except KeyError:
        raise UserError(f"unknown workload preset {name!r}; choose one of {', '.join(WORKLOAD_PRESETS)}") from None


def compose(paramfile_values: Mapping[str, object] | None = None, workload: str | None = None,
            kernel: str | None = None, overrides: Mapping[str, object] | None = None) -> tuple[dict, str | None]:
    """Registry defaults < parameter file < workload preset < kernel preset < overrides, checked:
    the one implementation of this layering (the commands' --params/--workload/--preset/--set and
    the explorer's pickers both come here). Returns the values and the kernel preset's policy (or
    None)."""
    base: dict = dict(paramfile_values or {})
    if workload:
        base.update(workload_preset(workload).values)
    policy = None
    if kernel:
        kp = registry.preset(kernel)
        base.update(kp.values)
        policy = kp.policy
    return registry.resolve(overrides, base=base), policy


def workload_table():
    """The workload presets as a table: name, title, the values they set, where they come from."""
    import pandas as pd

    return pd.DataFrame([{"name": p.name, "title": p.title,
                          "sets": ", ".join(f"{k}={v}" for k, v in p.values.items()), "source": p.source}
                         for p in WORKLOAD_PRESETS.values()])


# ---- parameter sets as starting points -----------------------------------------------------------


def parameter_sets() -> dict:
    """name -> loaded ParamSet for every committed file (:func:`paramfile.committed_sets`)."""
    from .paramfile import committed_sets, load

    return {name: load(path) for name, path in committed_sets().items()}


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


def default_values() -> tuple[dict, object, str]:
    """The starting point of the notebooks: the calibrated set of this project's machine if it
    is committed, else the registry defaults. Returns (values, ParamSet or None, a sentence)."""
    from .paramfile import default_params_path, load

    try:
        path = default_params_path()
    except UserError as exc:
        return registry.resolve(), None, f"registry defaults ({exc})"
    ps = load(path)
    return registry.resolve(ps.values()), ps, f"parameter set {ps.name} from {path.name}"
