"""The one table of probes, and the columns their measurements use.

A new probe is one C file in ``probes/`` plus one :class:`ProbeSpec` entry in :data:`PROBES`. Each
entry declares its configuration keys: by name for the few keys several probes share
(:data:`SHARED_KEYS`), as a :class:`ConfigKey` in the entry itself for a key of its own. A probe's
summary table on disk (``measurements/<probe>.csv``) has its own keys and the result columns, so a
key added to one probe widens no other probe's table. The parser, the summary, the column order of
each table and of the in-memory summary (:func:`summary_columns`, every probe's keys) follow from
these declarations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

@dataclass(frozen=True)
class ConfigKey:
    """One configuration key a probe's samples carry: its name (a column of that probe's table),
    its type (``int`` or ``str``) and what it means."""

    name: str
    kind: type
    description: str


#: Keys several probes carry, declared once here; a probe names them by string. A key only one probe
#: has is declared in that probe's own entry (a :class:`ConfigKey` in its ``config``).
SHARED_KEYS: dict[str, ConfigKey] = {k.name: k for k in (
    ConfigKey("op", str, "what was timed or counted (per probe; see the probe table)"),
    ConfigKey("adds_between", int, "fresh pages first-touched on the holding CPU between the target's first touch "
                                   "and its WP fault (k)"),
    ConfigKey("drained_first", int, "1: the holding CPU's batch was emptied just before the target's first touch "
                                    "(position 0); 0: position unknown"),
    ConfigKey("same_cpu", int, "1: the WP fault (or the uffd monitor) ran on the CPU whose batch holds the page; "
                               "0: on another CPU"),
    ConfigKey("target_cpus", int, "other CPUs running sibling threads of the process during the flush"),
    ConfigKey("siblings", str, "what those threads did: spinning, asleep, or none"),
    ConfigKey("folios", int, "fresh folios in the LRU batch when it was drained: the local batch (drain_cost), or "
                             "the remote CPU's batch besides the trigger folio (remote_drain)"),
)}


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

#: Column names a configuration key cannot take: the summary's own.
_RESERVED = frozenset({"probe", "value", "name", "total", "ops", "round"})
_KEY_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class ProbeSpec:
    """One probe: its C source, the configuration keys and measures its samples carry, and what the
    machine must offer.

    ``config`` (keys every sample carries) and ``optional_config`` (keys some samples carry) hold
    names of :data:`SHARED_KEYS` or :class:`ConfigKey` declarations of the probe's own keys.
    """

    name: str
    summary: str
    config: tuple[str | ConfigKey, ...]
    measures: tuple[str, ...]
    optional_config: tuple[str | ConfigKey, ...] = ()
    counters: tuple[str, ...] = ()
    #: Extra command-line arguments from what the suite knows so far (e.g. the batch size).
    extra_args: Callable[[dict], list[str]] | None = field(default=None, compare=False)
    timeout_quick_s: float = 120.0
    timeout_full_s: float = 600.0

    def __post_init__(self) -> None:
        seen = set()
        for key in self.config + self.optional_config:
            if isinstance(key, str):
                if key not in SHARED_KEYS:
                    raise ValueError(f"probe {self.name}: configuration key {key!r} is not one of SHARED_KEYS; "
                                     f"declare it in the entry: ConfigKey({key!r}, int or str, 'what it means')")
                key = SHARED_KEYS[key]
            if not isinstance(key, ConfigKey):
                raise ValueError(f"probe {self.name}: configuration key {key!r} is neither a name nor a ConfigKey")
            if not _KEY_NAME.match(key.name) or key.name in _RESERVED or key.name in RESULT_COLUMNS \
                    or key.name in MEASURES:
                raise ValueError(f"probe {self.name}: {key.name!r} cannot name a configuration key (a lower-case "
                                 f"identifier that is not a result column, a measure or one of {sorted(_RESERVED)})")
            if key.kind not in (int, str):
                raise ValueError(f"probe {self.name}: configuration key {key.name!r} has kind {key.kind!r}; "
                                 f"use int or str")
            if key.name in seen:
                raise ValueError(f"probe {self.name}: configuration key {key.name!r} is declared twice")
            seen.add(key.name)

    @property
    def source(self) -> str:
        return f"{self.name}.c"

    @property
    def keys(self) -> dict[str, ConfigKey]:
        """The probe's configuration keys by name, required ones first."""
        return {k.name: k for k in (SHARED_KEYS[k] if isinstance(k, str) else k
                                    for k in self.config + self.optional_config)}

    @property
    def required_config(self) -> tuple[str, ...]:
        """Names of the keys every sample carries."""
        return tuple(k if isinstance(k, str) else k.name for k in self.config)

    @property
    def all_config(self) -> tuple[str, ...]:
        """Names of all its keys, required ones first: the configuration columns of its table."""
        return tuple(self.keys)

    @property
    def table_columns(self) -> list[str]:
        """The columns of its summary table on disk (``measurements/<probe>.csv``)."""
        return [*self.all_config, *RESULT_COLUMNS]


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
        config=("op", "adds_between", "drained_first", "same_cpu",
                ConfigKey("pages", int, "target pages first-touched and written in a row"),
                ConfigKey("huge", int, "1: target in a MADV_HUGEPAGE 2 MiB THP; 0: MADV_NOHUGEPAGE 4 KiB pages")),
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
        config=("op",
                ConfigKey("cache_state", str, "hot (in cache), cold (clflushed) or repeated (same large buffers "
                                              "copied again)"),
                ConfigKey("size_bytes", int, "bytes per copy")),
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
        config=("op",
                ConfigKey("remote_state", str, "what the CPU holding the remote batch did meanwhile: idle, busy (a "
                                               "normal-priority busy loop pinned there) or rt (a SCHED_FIFO busy "
                                               "loop there, capped at 2 s)")),
        optional_config=("folios",),
        measures=("ns", "copied", "verified"),
        extra_args=_remote_drain_args,
        timeout_quick_s=60.0,
        timeout_full_s=300.0,
    ),
    ProbeSpec(
        "lock_transfer",
        "a lock word handed between two CPUs (one modified line moved) against the same lock on one CPU; a local "
        "drain of 0..30 folios whose lines the other CPU wrote last, against the same drain with them local",
        config=("op",),
        optional_config=("folios",),
        measures=("ns", "verified"),
        extra_args=_drain_args,
    ),
    ProbeSpec(
        "workload",
        "a controlled mix of WP faults (share written on the holding CPU, fixed adds or a Poisson adder "
        "over a timed gap, known or uniform position, a spinning sibling or none): ns per fault and copies",
        config=("op", "drained_first",
                ConfigKey("same_cpu_percent", int, "share of the configuration's trials (in %, split exactly) "
                                                   "that wrote on the CPU holding the page"),
                "target_cpus", "siblings"),
        optional_config=("adds_between",
                         ConfigKey("adds_per_s", int, "rate of the background adder's first touches on the "
                                                      "holding CPU during a timed gap"),
                         ConfigKey("gap_us", int, "time from the target's first touch to its WP fault (timed "
                                                  "gap), in microseconds")),
        measures=("ns", "copied"),
        extra_args=_drain_args,
    ),
    ProbeSpec(
        "swap_cow",
        "zram swap (set up and restored by the probe where no swap is active): whether a write after "
        "swap-in faults and copies, by sharing, swap_path, same_cpu, siblings; the swap-out/in/write loop "
        "with one thread against two, and the TLB IPIs its CPUs get per iteration",
        config=("op",
                ConfigKey("swap_path", str, "how the page came back: direct (read fault; zram skips the swap "
                                            "cache) or readahead (MADV_WILLNEED into the swap cache, then the read)"),
                "target_cpus", "siblings"),
        optional_config=(ConfigKey("sharing", str, "the page before swap-out: exclusive, forked (a fork+exit child "
                                                   "took exclusivity) or child_alive (a child still maps it through "
                                                   "swap-in)"),
                         "same_cpu",
                         ConfigKey("threads", int, "threads of the process running the loop, one per CPU")),
        measures=("ns", "faulted", "copied"),
        counters=("tlb_ipis",),
    ),
]

PROBES_BY_NAME: dict[str, ProbeSpec] = {p.name: p for p in PROBES}


def config_columns(probes: list[ProbeSpec] | None = None) -> dict[str, tuple[type, str]]:
    """Every probe's configuration keys: name -> (type, description), in table order (each key
    where a probe first declares it). One name means one thing: a key two probes declare
    differently is an error (declare it once, in :data:`SHARED_KEYS`)."""
    out: dict[str, tuple[type, str]] = {}
    owner: dict[str, str] = {}
    for spec in PROBES if probes is None else probes:
        for key in spec.keys.values():
            if key.name in out and out[key.name] != (key.kind, key.description):
                raise ValueError(f"configuration key {key.name!r} is declared by probes {owner[key.name]} and "
                                 f"{spec.name} with different meanings; declare it once, in SHARED_KEYS")
            if key.name not in out:
                out[key.name] = (key.kind, key.description)
                owner[key.name] = spec.name
    return out


def summary_columns(probes: list[ProbeSpec] | None = None) -> list[str]:
    """The columns of the summary in memory (``read_measurements``): every probe's rows in one
    frame, so every probe's keys (empty where a key is not the row's probe's)."""
    return ["probe", *config_columns(probes), *RESULT_COLUMNS]


#: Every probe's keys, name -> (type, description), and the in-memory summary's columns, as the table
#: stands at import (code that must see a probe added later calls the functions above).
CONFIG_COLUMNS: dict[str, tuple[type, str]] = config_columns()
SUMMARY_COLUMNS: list[str] = summary_columns()


def probe_spec(name: str) -> ProbeSpec:
    """The spec for ``name``; a UserError naming the known probes otherwise."""
    from ..errors import UserError

    try:
        return PROBES_BY_NAME[name]
    except KeyError:
        known = ", ".join(PROBES_BY_NAME)
        raise UserError(f"--probe {name!r} is not a probe; choose from: {known}") from None
