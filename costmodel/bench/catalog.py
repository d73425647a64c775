"""The one table of probes, and the columns their measurements use.

A new probe is one C file in ``probes/`` plus one :class:`ProbeSpec` entry in :data:`PROBES`.
Configuration columns and measures are declared once here; the parser, the summary, the CSV
column order and the README's column table all follow from these tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

#: Configuration columns: name -> (type, description). Order here is the CSV column order.
CONFIG_COLUMNS: dict[str, tuple[type, str]] = {
    "op": (str, "what was timed or counted (per probe; see the probe table)"),
    "adds_between": (int, "fresh pages first-touched on the holding CPU between the target's first touch and its WP fault (k)"),
    "drained_first": (int, "1: the holding CPU's batch was emptied just before the target's first touch (position 0); 0: position unknown"),
    "same_cpu": (int, "1: the WP fault (or the uffd monitor) ran on the CPU whose batch holds the page; 0: on another CPU"),
    "pages": (int, "target pages first-touched and written in a row"),
    "huge": (int, "1: target in a MADV_HUGEPAGE 2 MiB THP; 0: MADV_NOHUGEPAGE 4 KiB pages"),
    "target_cpus": (int, "other CPUs running sibling threads of the process during the flush"),
    "siblings": (str, "what those threads did: spinning, asleep, or none"),
    "folios": (int, "fresh folios in the LRU batch when it was drained: the local batch (drain_cost), or the "
                    "remote CPU's batch besides the trigger folio (remote_drain)"),
    "size_bytes": (int, "bytes per copy"),
    "cache_state": (str, "hot (in cache), cold (clflushed) or repeated (same large buffers copied again)"),
    "remote_state": (str, "what the CPU holding the remote batch did meanwhile: idle, busy (a normal-priority "
                          "busy loop pinned there) or rt (a SCHED_FIFO busy loop there, capped at 2 s)"),
    "same_cpu_percent": (int, "share of the configuration's trials (in %, split exactly) that wrote on the CPU holding the page"),
    "adds_per_s": (int, "rate of the background adder's first touches on the holding CPU during a timed gap"),
    "gap_us": (int, "time from the target's first touch to its WP fault (timed gap), in microseconds"),
    "sharing": (str, "the page before swap-out: exclusive, forked (a fork+exit child took exclusivity) or child_alive (a child still maps it through swap-in)"),
    "swap_path": (str, "how the page came back: direct (read fault; zram skips the swap cache) or readahead (MADV_WILLNEED into the swap cache, then the read)"),
    "threads": (int, "threads of the process running the loop, one per CPU"),
}

#: Measures a sample line may carry: name -> unit of its summary row.
MEASURES: dict[str, str] = {
    "ns": "ns",          # a duration per operation, empty timer pair already subtracted
    "copied": "fraction",    # 1 if the page frame changed across the write
    "available": "fraction",  # 1 if the feature could be used
    "verified": "fraction",   # 1 if the trial checked out as what it claims (see the probe's notes)
    "faulted": "fraction",    # 1 if the write took a page fault (minor-fault count of the thread)
}
BINARY_MEASURES = frozenset(m for m, unit in MEASURES.items() if unit == "fraction")

#: Counters a probe may report over a block of operations: name -> summary column.
COUNTERS: dict[str, str] = {"tlb_ipis": "tlb_ipis_per_op"}

#: Summary (tidy CSV) columns after the configuration columns, with descriptions.
RESULT_COLUMNS: dict[str, str] = {
    "measure": "what each raw sample recorded: ns, or a 0/1 measure (copied, available, verified, ...)",
    "n": "number of raw samples summarised in the row",
    "successes": "fraction rows: samples that were 1",
    "fraction": "fraction rows: successes / n",
    "median_ns": "ns rows: median of the samples",
    "p10": "10th percentile of the samples (ns rows), in `unit`",
    "p90": "90th percentile of the samples (ns rows), in `unit`",
    "p99": "ns rows: 99th percentile of the samples (linear interpolation)",
    "ci_low": "95% interval, low end: bootstrap of the median (ns) or Wilson score (fraction)",
    "ci_high": "95% interval, high end",
    "mean_ns": "ns rows: arithmetic mean of the samples (an expected cost; heavy tails pull it above the median)",
    "mean_ci_low": "ns rows: 95% percentile-bootstrap interval of the mean, low end",
    "mean_ci_high": "ns rows: 95% percentile-bootstrap interval of the mean, high end",
    "unit": "unit of median/fraction, the percentiles, the mean and the intervals: ns or fraction",
    "bandwidth_gbps": "size_bytes / median_ns, in GB/s (10^9 bytes per second), where size_bytes is set",
    "tlb_ipis_per_op": "TLB shootdown interrupts counted on the target CPUs per operation of the block "
                       "(swap_loop: on the loop's CPUs per iteration)",
    "rounds": "rounds the samples came from (`costmodel bench --repeat N`, the probes interleaved); empty: one",
    "round_sd": "standard deviation between the rounds' means (ns rows) or fractions, in `unit`: how far the "
                "host moved between rounds; empty with one round",
    "skipped_reason": "set when this configuration could not run here; the other columns are then empty",
}

SUMMARY_COLUMNS: list[str] = ["probe", *CONFIG_COLUMNS, *RESULT_COLUMNS]


@dataclass(frozen=True)
class ProbeSpec:
    """One probe: its C source, what its samples carry, and what the machine must offer."""

    name: str
    summary: str
    config: tuple[str, ...]
    measures: tuple[str, ...]
    optional_config: tuple[str, ...] = ()
    counters: tuple[str, ...] = ()
    #: Extra command-line arguments from what the suite knows so far (e.g. the batch size).
    extra_args: Callable[[dict], list[str]] | None = field(default=None, compare=False)
    timeout_quick_s: float = 120.0
    timeout_full_s: float = 600.0

    @property
    def source(self) -> str:
        return f"{self.name}.c"

    @property
    def all_config(self) -> tuple[str, ...]:
        return self.config + self.optional_config


def _drain_args(known: dict) -> list[str]:
    batch = known.get("batch_size_found")
    return ["--max-folios", str(int(batch) - 1)] if batch else []


def _remote_drain_args(known: dict) -> list[str]:
    """Largest remote fill besides the trigger folio: B - 2, so the batch (B - 1 folios) never fills."""
    batch = known.get("batch_size_found")
    return ["--max-folios", str(int(batch) - 2)] if batch and int(batch) > 2 else []


PROBES: list[ProbeSpec] = [
    ProbeSpec(
        "unnecessary_copy",
        "fraction of WP faults that copy (PFN from /proc/self/pagemap), by adds_between, "
        "drained_first, same_cpu, pages, huge; gives the batch size",
        config=("op", "adds_between", "drained_first", "same_cpu", "pages", "huge"),
        measures=("copied",),
    ),
    ProbeSpec(
        "fault_cost",
        "ns per fault: first touch, zero page read and write, reuse, local-drain reuse, copies",
        config=("op",),
        measures=("ns",),
    ),
    ProbeSpec(
        "copy_bandwidth",
        "4 KiB copy hot and cold, and large copies (bandwidth)",
        config=("op", "cache_state", "size_bytes"),
        measures=("ns",),
    ),
    ProbeSpec(
        "shootdown",
        "one-page mprotect / MADV_DONTNEED with 0..N-1 other CPUs spinning or asleep; TLB IPIs; what each "
        "IPI costs the spinning CPUs that receive it (op=ipi_receive)",
        config=("op", "target_cpus", "siblings"),
        measures=("ns",),
        counters=("tlb_ipis",),
    ),
    ProbeSpec(
        "drain_cost",
        "MADV_COLD (starts with lru_add_drain) with 0..B-1 fresh folios in the local batch",
        config=("op", "folios"),
        measures=("ns",),
        extra_args=_drain_args,
    ),
    ProbeSpec(
        "userfaultfd",
        "availability, missing and write-protect round trips, and whether the unprotected page copies",
        config=("op",),
        optional_config=("same_cpu",),
        measures=("ns", "copied", "available"),
    ),
    ProbeSpec(
        "remote_drain",
        "lru_add_drain_all() draining one remote CPU (memfd write seal; fadvise DONTNEED) against its base and "
        "controls, by remote fill and remote CPU state; the anon copy it prevents; each trial verified",
        config=("op", "remote_state"),
        optional_config=("folios",),
        measures=("ns", "copied", "verified"),
        extra_args=_remote_drain_args,
        timeout_quick_s=60.0,
        timeout_full_s=300.0,
    ),
    ProbeSpec(
        "workload",
        "a controlled mix of WP faults (share written on the holding CPU, fixed adds or a Poisson adder "
        "over a timed gap, known or uniform position, a spinning sibling or none): ns per fault and copies",
        config=("op", "drained_first", "same_cpu_percent", "target_cpus", "siblings"),
        optional_config=("adds_between", "adds_per_s", "gap_us"),
        measures=("ns", "copied"),
        extra_args=_drain_args,
    ),
    ProbeSpec(
        "swap_cow",
        "zram swap (set up and restored by the probe where no swap is active): whether a write after "
        "swap-in faults and copies, by sharing, swap_path, same_cpu, siblings; the swap-out/in/write loop "
        "with one thread against two, and the TLB IPIs its CPUs get per iteration",
        config=("op", "swap_path", "target_cpus", "siblings"),
        optional_config=("sharing", "same_cpu", "threads"),
        measures=("ns", "faulted", "copied"),
        counters=("tlb_ipis",),
    ),
]

PROBES_BY_NAME: dict[str, ProbeSpec] = {p.name: p for p in PROBES}


def probe_spec(name: str) -> ProbeSpec:
    """The spec for ``name``; a UserError naming the known probes otherwise."""
    from ..errors import UserError

    try:
        return PROBES_BY_NAME[name]
    except KeyError:
        known = ", ".join(PROBES_BY_NAME)
        raise UserError(f"--probe {name!r} is not a probe; choose from: {known}") from None
