"""Every parameter of the model, declared once.

A :class:`Numeric` or :class:`Categorical` entry carries everything the rest of the project
needs: the sympy symbol (with assumptions), unit, default, bounds, a one-sentence description,
its kind (workload or machine) and where the default comes from. The CLI's ``--set``, the docs
table, validation, the widgets and the parameter-file schema are all generated from
:data:`PARAMS`; nothing restates it.

Values from files or the command line are parsed here as numbers or as one of a categorical's
allowed words, never evaluated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import sympy as sp

from .errors import UserError

WORKLOAD = "workload"
MACHINE = "machine"


@dataclass(frozen=True)
class Numeric:
    name: str
    unit: str
    default: float
    low: float
    high: float
    description: str
    kind: str
    source: str = "assumed"
    integer: bool = False
    probability: bool = False
    #: sliders and sweeps use a log axis when the range spans decades
    log_scale: bool = False
    #: short LaTeX name for rendered equations (the sympy symbol keeps the parameter's name)
    tex: str = ""
    #: a plausible range (low, high) and its basis, for a parameter a set leaves without an interval;
    #: None: :func:`default_interval` gives machine costs a factor PRIOR_FACTOR either way
    plausible: tuple[float, float] | None = None
    plausible_basis: str = ""
    #: the registry generation that introduced the parameter (see REGISTRY_GENERATION)
    introduced: int = 1
    symbol: sp.Symbol = field(init=False, compare=False, repr=False)

    def __post_init__(self):
        assumptions = {"real": True, "nonnegative": True}
        if self.integer:
            assumptions["integer"] = True
        if self.low > 0:
            assumptions["positive"] = True
        object.__setattr__(self, "symbol", sp.Symbol(self.name, **assumptions))

    def parse(self, raw) -> float | int:
        """Turn ``raw`` (a number, or a string holding one) into a checked value."""
        if isinstance(raw, bool):
            raise UserError(f"{self.name}: expected a number, got {raw!r}")
        if isinstance(raw, str):
            text = raw.strip()
            try:
                value = float(text)
            except ValueError:
                raise UserError(
                    f"{self.name}: {raw!r} is not a number; give a plain number in {self.unit}"
                    f" between {_fmt(self.low)} and {_fmt(self.high)}"
                ) from None
        elif isinstance(raw, (int, float)):
            value = float(raw)
        else:
            try:
                value = float(raw)  # numpy scalars
            except (TypeError, ValueError):
                raise UserError(f"{self.name}: expected a number, got {type(raw).__name__}") from None
        if math.isnan(value) or math.isinf(value):
            raise UserError(f"{self.name}: {raw!r} is not a finite number")
        if not self.low <= value <= self.high:
            raise UserError(
                f"{self.name}={_fmt(value)} is out of bounds; allowed {_fmt(self.low)} to {_fmt(self.high)} {self.unit}"
            )
        if self.integer:
            if value != int(value):
                raise UserError(f"{self.name}={raw!r} must be a whole number ({self.unit})")
            return int(value)
        return value


@dataclass(frozen=True)
class Categorical:
    name: str
    choices: tuple[str, ...]
    default: str
    description: str
    kind: str
    #: one sentence per choice
    meanings: Mapping[str, str] = field(default_factory=dict)
    source: str = "model choice"
    unit: str = ""
    introduced: int = 1

    def parse(self, raw) -> str:
        if not isinstance(raw, str) or raw not in self.choices:
            raise UserError(f"{self.name}: {raw!r} is not allowed; choose one of {', '.join(self.choices)}")
        return raw


def _fmt(x: float) -> str:
    return f"{x:g}"


def _n(name, unit, default, low, high, description, kind, source="assumed", **kw) -> Numeric:
    return Numeric(name, unit, default, low, high, description, kind, source, **kw)


def _p(name, default, description, source="assumed", tex="") -> Numeric:
    return Numeric(name, "probability", default, 0.0, 1.0, description, WORKLOAD, source, probability=True, tex=tex)


_ENTRIES: list[Numeric | Categorical] = [
    # ---- workload -------------------------------------------------------------------------
    _n("batch_size", "folios", 31, 1, 512,
       "Capacity B of the per-CPU LRU add batch; the add that fills it moves the batch to the LRU.",
       WORKLOAD, "PAGEVEC_SIZE: 31 on Linux >= 6.9 (mm: increase folio batch size), 15 before", integer=True, tex=r"B"),
    _n("batch_adds_per_s", "folios/s", 2.0e5, 1.0e-6, 1.0e9,
       "Rate at which folios enter the add batch of the CPU holding the page (above 0: the page itself"
       " is one of them, so the batch's position law is defined).",
       WORKLOAD, log_scale=True, tex=r"\lambda"),
    _n("explicit_drains_per_s", "1/s", 50.0, 0.0, 1.0e7,
       "Rate of other local lru_add_drain() calls on that CPU.", WORKLOAD, log_scale=True, tex=r"\mu"),
    _n("drain_all_per_s", "1/s", 0.1, 0.0, 1.0e5,
       "Rate of system-wide lru_add_drain_all() events.", WORKLOAD, log_scale=True, tex=r"\nu"),
    Categorical("gap_model", ("fixed_count", "fixed_time", "exponential_time"), "exponential_time",
                "How the gap between the install fault and the WP fault is given.", WORKLOAD,
                {"fixed_count": "adds_between other folios enter the batch in the gap",
                 "fixed_time": "the gap lasts exactly wp_gap_s",
                 "exponential_time": "the gap is exponential with mean wp_gap_s"}),
    _n("adds_between", "folios", 0, 0, 1_000_000,
       "With gap_model=fixed_count: number of other folios added to that batch in the gap.",
       WORKLOAD, integer=True, tex=r"k"),
    _n("wp_gap_s", "s", 1.0e-5, 0.0, 100.0,
       "With fixed_time: the gap between install and WP fault; with exponential_time: its mean.",
       WORKLOAD, log_scale=True, tex=r"t"),
    Categorical("position_model", ("stationary", "fixed"), "stationary",
                "Where in its batch the page landed.", WORKLOAD,
                {"stationary": "drawn from the stationary law of the batch fill (uniform without explicit drains)",
                 "fixed": "exactly batch_position folios were already in the batch"}),
    _n("batch_position", "folios", 0, 0, 511,
       "With position_model=fixed: folios already in the batch when the page was added (0 = right after a drain).",
       WORKLOAD, integer=True, tex=r"J_0"),
    _p("p_same_cpu", 0.5, "Probability the WP fault runs on the CPU whose batch holds the page.", tex=r"p_{s}"),
    _n("p_cold_fault", "probability", 0.0, 0.0, 1.0,
       "Share of WP faults that are cold: the first fault after the task forked, moved to another CPU or ran"
       " other code for a while (its fault path is not in this CPU's caches), rather than one of a burst of"
       " faults in a row. 1/n for bursts of n faults; 1 for a program that writes one page after each fork.",
       WORKLOAD, "assumed 0 (faults in bursts, the microbenchmarks' context); a traced program gives its own",
       probability=True, tex=r"p_{c}", introduced=4),
    _p("p_exclusive", 0.0,
       "Probability the folio is still marked exclusive and is reused without a refcount test (0 before Linux 5.19).",
       "assumed: the faults at issue are those on pages that lost exclusivity (fork, KSM, swap-in)", tex=r"p_{x}"),
    _p("p_other_ref", 0.01, "Probability of another transient reference that forces a copy anyway.", tex=r"p_{o}"),
    # ---- references the kernel allows for or copies on at once --------------------
    _p("p_swapcache", 0.0,
       "Share of the small, non-exclusive folios at a WP fault that sit in the swap cache (read back"
       " through it): its reference is allowed for by the refcount test, and a reuse frees the swap entry.",
       "assumed: 0 outside swap-heavy workloads", tex=r"p_{sc}"),
    _p("p_swap_shared", 0.0,
       "Given the swap cache (p_swapcache), the probability that another process still holds the folio's"
       " swap entry (a child forked while the page was swapped out, still alive): its reference is on the"
       " entry, not the folio, so the refcount test passes and a drain may run, yet folio_free_swap()"
       " cannot free the entry and the fault copies.",
       "assumed: 0 (a swapped-out page whose sharer lives on is rare outside fork-heavy swapping)",
       tex=r"p_{ss}"),
    _p("p_forked_on_writer", 0.0,
       "Of the WP faults on another CPU than the one that added the page to its batch (1 - p_same_cpu), the"
       " share that follow a fork made on the faulting CPU itself. That fork copied the PTEs and took the"
       " folio's references there, so such a fault pays no cross_cpu_fault_ns; a copy still pays"
       " cross_cpu_copy_ns (the page's data is in the other CPU's cache).",
       "assumed: 0 (every such fault's lines come from the installer's cache, as when the fork ran there)",
       tex=r"p_{fw}"),
    _p("p_more_refs", 0.0,
       "Given another reference (p_other_ref), the probability of a second one (a second live sharer, a"
       " pin): with the batch's reference the refcount is above 3 and the kernel copies without a drain.",
       "assumed", tex=r"p_{o2}"),
    _p("p_large_folio", 0.0, "Share of WP faults on large folios, which are never held in a batch.", tex=r"p_{L}"),
    _n("large_folio_cow_reuse", "flag", 1, 0, 1,
       "1: a WP fault reuses a non-exclusive large folio when all its references are from this mapping"
       " (c3edd36ad29b 'mm: Copy-on-Write (COW) reuse support for PTE-mapped THP', Linux 6.15);"
       " 0: it always copies (older kernels).", WORKLOAD,
       "kernel behaviour: set by the kernel presets", integer=True, tex=r"u_{L}"),
    _p("p_large_add", 0.0,
       "Share of the adds into the batch that are large folios: each moves the whole batch to the LRU at once.",
       tex=r"p_{La}"),
    _p("p_holder_busy", 0.0,
       "Probability that the CPU holding the page runs a normal-priority task when it must be drained remotely.",
       tex=r"p_{b}"),
    _p("p_holder_rt", 0.0,
       "Probability that the CPU holding the page runs a real-time task when it must be drained remotely.",
       tex=r"p_{rt}"),
    _p("p_cpu_needs_drain", 1.0,
       "Share of the other CPUs (neither the faulting one nor the holder) whose batches are non-empty when"
       " lru_add_drain_all() runs: each gets drain work queued.", tex=r"p_{n}"),
    _n("pageout_tlb_flushes", "flushes", 2, 0, 16,
       "TLB shootdowns that one MADV_PAGEOUT of a mapped, written anon page sends to each other CPU running"
       " the mm.", WORKLOAD,
       "kernel behaviour, measured on Linux 6.18: the swap_cow loop counts 2 TLB IPIs per pageout on a CPU"
       " spinning in the mm, none on the swap-in or the write", integer=True, tex=r"n_{\mathrm{po}}",
       introduced=3),
    _n("swap_loop_base_ns", "ns", 12000.0, 0.0, 1.0e9,
       "A swap-out / swap-in / write loop of one page: the time per iteration with no other CPU in the mm"
       " (the swap I/O itself, which the model takes as given).", WORKLOAD,
       "assumed: about the one-thread loop on zram in this project's guests", log_scale=True,
       tex=r"c_{\mathrm{loop}}", introduced=3),
    _n("loop_peers", "CPUs", 0, 0, 4096,
       "Other CPUs running the same swap loop in the mm: each sends this CPU its pageout shootdowns.",
       WORKLOAD, integer=True, tex=r"q", introduced=3),
    _n("remote_cpus", "CPUs", 3, 0, 4096,
       "Other CPUs currently running the mm: the targets of a TLB shootdown.", WORKLOAD, integer=True, tex=r"r"),
    _n("cpus", "CPUs", 8, 1, 4096, "CPUs in the system.", WORKLOAD, integer=True, tex=r"N"),
    _n("wp_faults_per_s", "1/s", 1.0e5, 0.0, 1.0e9,
       "WP fault rate, to turn the cost per fault into CPU time per second.", WORKLOAD, log_scale=True, tex=r"f"),
    # ---- machine --------------------------------------------------------------------------
    _n("fault_entry_ns", "ns", 500.0, 0.0, 1.0e6,
       "Cost common to reuse and copy: trap, locking, page-table walk.", MACHINE, tex=r"c_{\mathrm{entry}}"),
    _n("reuse_ns", "ns", 100.0, 0.0, 1.0e6, "Extra cost of making the PTE writable on reuse.", MACHINE, tex=r"c_{\mathrm{reuse}}"),
    _n("sibling_fault_ns", "ns", 0.0, 0.0, 1.0e6,
       "Extra cost of every WP fault, reuse or copy, while other CPUs run the mm (remote_cpus >= 1): the"
       " shared mm's cache lines bounce between the CPUs.", MACHINE,
       "assumed 0 until measured (a reuse fault with a sibling thread spinning, against one without)",
       tex=r"c_{\mathrm{sib}}", plausible=(0.0, 2000.0),
       plausible_basis="0 to about 2 us: a few cache-line transfers in a guest", introduced=2),
    _n("cross_cpu_fault_ns", "ns", 0.0, 0.0, 1.0e6,
       "Extra cost of a WP fault on a CPU other than the one that installed the page (p_same_cpu's other"
       " side), reuse or copy: its PTE, struct page and mapping come from the other CPU's cache.", MACHINE,
       "assumed 0 until measured (a reuse written on the other CPU, against the same reuse on the installing one)",
       tex=r"c_{\mathrm{x}}", plausible=(0.0, 3000.0),
       plausible_basis="a few cache-line transfers between cores: 0.1 to 1 us, more across sockets", introduced=3),
    _n("cross_cpu_copy_ns", "ns", 0.0, 0.0, 1.0e6,
       "Further cost of a copy made on a CPU other than the one that installed the page: the source page's"
       " lines come from the other CPU's cache rather than this one's.", MACHINE,
       "assumed 0 until measured (a live child's copy written on the other CPU, against the same copy on the"
       " installing one)",
       tex=r"c_{\mathrm{xc}}", plausible=(0.0, 5000.0),
       plausible_basis="64 cache lines from another core: up to a few us across sockets", introduced=3),
    _n("cold_fault_ns", "ns", 0.0, 0.0, 1.0e6,
       "Extra cost of a cold WP fault (p_cold_fault), reuse or copy: the first fault after a fork, a move to"
       " another CPU or other work, whose kernel path, page-table walk and mm lines miss this CPU's caches;"
       " a fault right after another one does not pay it.", MACHINE,
       "assumed 0 until measured (the first write after a fork, against the later writes of the same round)",
       tex=r"c_{\mathrm{cold}}", plausible=(0.0, 2000.0),
       plausible_basis="0.19 to 0.34 us after a fork on a Zen 4 guest (fault_cost, three recordings), about 0.8 us"
                       " right after a move to another CPU",
       introduced=4),
    # ---- the 2026 proposals and the swap cache (registry generation 4) ----------------
    _n("swap_free_ns", "ns", 1000.0, 0.0, 1.0e6,
       "Extra cost of a reuse of a folio in the swap cache: the fault frees its swap entry"
       " (folio_free_swap: out of the swap cache, the slot freed).", MACHINE,
       "assumed until measured (swap_cow op=swap_fault: a reuse through the swap cache less the same reuse"
       " of a page that stayed in memory); predict's unpriced gap on reuse through the swap cache (Zen 5"
       " guest, 2026-12-02) was 0.7 to 1.7 us", tex=r"c_{\mathrm{swf}}", plausible=(200.0, 3000.0),
       plausible_basis="swap_cow op=swap_fault on a Zen 4 guest with zram: 0.4 to 0.6 us (2026-12-07);"
       " the older gap between swap_cow's and fault_cost's reuses: 0.7 to 1.7 us on the Zen 5 guest",
       introduced=4),
    _n("swap_shared_copy_ns", "ns", 200.0, 0.0, 1.0e5,
       "Extra cost of a copy of a folio in the swap cache whose swap entry another process still holds"
       " (p_swap_shared), past the refcount test: folio_free_swap() tried and failed under the folio lock,"
       " before the copy and again after it, and the old folio kept by the swap cache (an early copy at"
       " refcount > 3 skips it).", MACHINE,
       "assumed until measured (swap_cow op=swap_fault: a copy of a swapped-in page whose entry a live"
       " child holds less the same copy of a page the child maps)", tex=r"c_{\mathrm{ssh}}",
       plausible=(0.0, 1000.0),
       plausible_basis="swap_cow op=swap_fault on a Zen 4 guest with zram: about 0.2 us (2026-12-07)",
       introduced=5),
    _n("cacheline_transfer_ns", "ns", 100.0, 0.0, 1.0e5,
       "One modified cache line moved from another CPU's cache to this one's (a lock handed between two"
       " CPUs): what taking another CPU's batch lock costs, per line.", MACHINE,
       "assumed until measured (lock_transfer probe: a lock handed between the two CPUs)",
       tex=r"c_{\mathrm{line}}", plausible=(30.0, 1000.0),
       plausible_basis="40 to 100 ns between cores of one socket, a few hundred across sockets or vCPUs",
       introduced=4),
    _n("drain_per_remote_folio_ns", "ns", 120.0, 0.0, 1.0e6,
       "Cost per folio moved to the LRU by a drain whose folios were last written by another CPU (their"
       " struct folio lines in that CPU's cache): the per-folio price of draining another CPU's batch.",
       MACHINE, "assumed until measured (lock_transfer probe: a local drain of folios the other CPU just"
       " referenced)", tex=r"c_{\mathrm{d,x}}", plausible=(20.0, 1000.0),
       plausible_basis="the local per-folio cost plus one to a few cache-line transfers per folio",
       introduced=4),
    _n("alloc_ns", "ns", 300.0, 0.0, 1.0e6, "Allocate and memcg-charge the new page on copy.", MACHINE, tex=r"c_{\mathrm{alloc}}"),
    _n("page_bytes", "bytes", 4096, 1024, 2097152, "Bytes copied by one WP-fault copy.", MACHINE,
       "x86-64 base page", integer=True, tex=r"S_{\mathrm{page}}", plausible=(4096, 4096),
       plausible_basis="the base page size is a fact of the machine, not a cost"),
    _n("copy_bandwidth_gbps", "GB/s", 18.65, 0.1, 1000.0,
       "Copy bandwidth for one page with a cache-cold source (GB/s = bytes/ns).", MACHINE,
       "Shivank Garg, RFC 'mm: batch page copies in folio_copy()', May 2026: 18.65 GB/s for 4 KiB copies, EPYC 9655",
       log_scale=True, tex=r"W"),
    _n("local_flush_ns", "ns", 100.0, 0.0, 1.0e5, "Local TLB invalidation of one page.", MACHINE,
       "commit a5102476a24b: 'each single flush is about 100 ns'", tex=r"c_{\mathrm{flush}}"),
    _n("free_ns", "ns", 150.0, 0.0, 1.0e6, "Freeing the old page after a copy, amortised.", MACHINE, tex=r"c_{\mathrm{free}}"),
    Categorical("shootdown_model", ("linear", "log2", "broadcast"), "linear",
                "How the TLB shootdown cost grows with the number of target CPUs.", MACHINE,
                {"linear": "base + per_cpu x targets (IPI to each target, wait for all)",
                 "log2": "base + per_cpu x log2(1 + targets) (tree-like fan-out)",
                 "broadcast": "base only (broadcast flush hardware: AMD INVLPGB, Arm TLBI IS)"}),
    _n("shootdown_base_ns", "ns", 500.0, 0.0, 1.0e7,
       "Shootdown cost paid once when at least one CPU is targeted.", MACHINE,
       "assumed split of ~2100 cycles per remote shootdown (Nadav Amit, LKML 2022-07-18) at ~2.3 GHz", tex=r"c_{\mathrm{sd},0}"),
    _n("shootdown_per_cpu_ns", "ns", 400.0, 0.0, 1.0e7,
       "Shootdown cost added per target CPU (its scale per shootdown_model).", MACHINE,
       "assumed split of ~2100 cycles per remote shootdown (Nadav Amit, LKML 2022-07-18) at ~2.3 GHz", tex=r"c_{\mathrm{sd}}"),
    _n("shootdown_receive_ns", "ns", 2000.0, 0.0, 1.0e7,
       "Time a CPU running the mm loses to each TLB-shootdown IPI it receives: the interrupt, the flush"
       " and the return (in a guest, also the exits to the host). The sender's wait is in the shootdown cost.",
       MACHINE, "assumed until measured (the shootdown probe: a spinning sibling's lost time per IPI)",
       tex=r"c_{\mathrm{rcv}}", plausible=(200.0, 20000.0),
       plausible_basis="well under 1 us on bare metal; several us in a guest whose IPIs exit to the host",
       introduced=3),
    _n("drain_base_ns", "ns", 200.0, 0.0, 1.0e7,
       "Fixed cost of a local lru_add_drain(), as a WP fault pays it (fault_cost's reuse_drain_first; a set"
       " recorded before it holds madvise's line intercept, system call included).", MACHINE,
       tex=r"c_{\mathrm{d},0}"),
    _n("drain_per_folio_ns", "ns", 40.0, 0.0, 1.0e6,
       "Cost per folio moved from the local batch to the LRU.", MACHINE, tex=r"c_{\mathrm{d}}"),
    _n("remote_drain_ns", "ns", 4000.0, 0.0, 1.0e9,
       "Drain the batch of the one other CPU that holds the page and wait, when that CPU is idle"
       " (lru_add_drain_all() with exactly one CPU needing a drain, less its base).", MACHINE,
       "assumed from ~2 us per on_each_cpu_cond IPI round (Marcelo Tosatti, 2023-03-30) plus the drain",
       tex=r"c_{\mathrm{rd}}", plausible=(1000.0, 100000.0),
       plausible_basis="an IPI round trip in a guest is ~2 us (Tosatti 2023) to ~15 us (this project's KVM guests)"),
    _n("remote_drain_busy_ns", "ns", 8000.0, 0.0, 1.0e9,
       "As remote_drain_ns, when the holding CPU runs a normal-priority task (its kworker must preempt it).",
       MACHINE, "assumed: twice the idle cost", tex=r"c_{\mathrm{rd,busy}}", plausible=(1000.0, 4.0e6),
       plausible_basis="from an IPI round trip up to a few scheduler ticks (CFS wakeup preemption)", introduced=2),
    _n("remote_drain_rt_ns", "ns", 5.0e7, 0.0, 1.0e10,
       "As remote_drain_ns, when the holding CPU runs a real-time task: the kworker waits for RT throttling.",
       MACHINE, "assumed: sched_rt_runtime_us 950000 of 1000000 leaves the fair class 50 ms per second",
       tex=r"c_{\mathrm{rd,rt}}", plausible=(1.0e5, 1.0e9),
       plausible_basis="up to the RT period (1 s); hundreds of ms reported on busy CPUs (Minchan Kim, 2022)", introduced=2),
    _n("drain_all_base_ns", "ns", 2000.0, 0.0, 1.0e10,
       "Fixed cost of lru_add_drain_all() when no CPU needs a drain: global mutex, drain generation, a"
       " scan of the online CPUs, the local drain of an empty batch.", MACHINE,
       "assumed", tex=r"c_{\mathrm{da},0}", plausible=(100.0, 50000.0),
       plausible_basis="a mutex, a per-CPU scan and an empty local drain: 0.1 to 50 us"),
    _n("drain_all_per_cpu_ns", "ns", 500.0, 0.0, 1.0e9,
       "lru_add_drain_all() cost added per further CPU that needs a drain, beyond the one holding the page"
       " (the queued works run in parallel; at most a whole remote drain each).",
       MACHINE, "Marcelo Tosatti, fs/buffer.c bh_lru RCU patch v4, 2023-03-30: 8 us + 500 ns per CPU",
       tex=r"c_{\mathrm{da}}", plausible=(0.0, 20000.0),
       plausible_basis="0 (waits fully overlapped) to a whole remote drain per CPU (no overlap)"),
]

#: Parameter files record the generation of the registry that wrote them; a machine parameter
#: introduced in a later generation than a file's migrates into it as its assumed default, while one
#: the file's own generation already had must be there. Raise it with every new machine parameter.
#: 1: the first registry; 2: remote_drain_busy_ns, remote_drain_rt_ns, sibling_fault_ns;
#: 3: shootdown_receive_ns, cross_cpu_fault_ns, cross_cpu_copy_ns;
#: 4: cold_fault_ns, swap_free_ns, cacheline_transfer_ns, drain_per_remote_folio_ns;
#: 5: swap_shared_copy_ns.
REGISTRY_GENERATION = 5

#: the command that rebuilds everything generated from this registry (schema, README table, shipped
#: sets): a stale generated file's message names it
REGENERATE = "costmodel regenerate"

#: name -> entry, in declaration order
PARAMS: dict[str, Numeric | Categorical] = {e.name: e for e in _ENTRIES}
NUMERIC: dict[str, Numeric] = {n: e for n, e in PARAMS.items() if isinstance(e, Numeric)}
CATEGORICAL: dict[str, Categorical] = {n: e for n, e in PARAMS.items() if isinstance(e, Categorical)}
#: the sympy symbols, by name (the model's only way to refer to a parameter)
S: dict[str, sp.Symbol] = {n: e.symbol for n, e in NUMERIC.items()}


def defaults() -> dict[str, float | int | str]:
    return {name: entry.default for name, entry in PARAMS.items()}


#: an assumed machine cost without a stated range is given this factor either way as its interval
PRIOR_FACTOR = 3.0


def default_interval(name: str, value: float | None = None) -> tuple[float, float, str] | None:
    """(low, high, basis) of a parameter that a set leaves without an interval: its declared
    plausible range, else for a machine cost a factor :data:`PRIOR_FACTOR` either way of ``value``
    (within the bounds). Workload parameters describe the scenario, not a measurement: None."""
    spec = NUMERIC[name]
    if spec.plausible is not None:
        return float(spec.plausible[0]), float(spec.plausible[1]), spec.plausible_basis
    if spec.kind != MACHINE:
        return None
    v = float(spec.default if value is None else value)
    lo, hi = max(spec.low, v / PRIOR_FACTOR), min(spec.high, v * PRIOR_FACTOR)
    return lo, hi, f"no stated range: a factor {PRIOR_FACTOR:g} either way of {_fmt(v)} {spec.unit}"


def unknown_parameter(name: str) -> UserError:
    import difflib

    close = difflib.get_close_matches(name, PARAMS, n=1)
    hint = f"; did you mean {close[0]}?" if close else "; run `costmodel params` for the list"
    return UserError(f"unknown parameter {name!r}{hint}")


def parse_value(name: str, raw):
    """Check one value against its registry entry and return it in its proper type."""
    if name not in PARAMS:
        raise unknown_parameter(name)
    return PARAMS[name].parse(raw)


@dataclass(frozen=True)
class Constraint:
    """A linear rule between parameters, ``sum(coeff * value) <= limit``, declared once.

    Every consumer derives its form from this: the vectorised predicate (:meth:`holds`), the
    message when it fails, the narrowing of one parameter's range given the others
    (:meth:`narrow`, for break-even scans) and the browser's expression of one parameter's
    feasible value given the others (:meth:`vega_clamp`)."""

    terms: Mapping[str, float]
    limit: float
    #: one sentence for a person, formatted with the values: what must hold and how to fix it
    explain: str
    #: the parameter that yields where independent controls (sliders, a chart axis) break the rule:
    #: it is held at the bound the others put on it
    held: str = ""

    def __post_init__(self):
        if self.held not in self.terms:
            raise ValueError(f"constraint {self.explain!r}: held={self.held!r} is not one of its terms")

    @property
    def partners(self) -> tuple[str, ...]:
        """The terms other than :attr:`held`."""
        return tuple(n for n in self.terms if n != self.held)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.terms)

    def _total(self, v, skip: str | None = None):
        return sum(c * np.asarray(v[n], dtype=float) for n, c in self.terms.items() if n != skip)

    def holds(self, v):
        # a small slack: probabilities that sum to 1 may round to 1 + 1e-16
        return self._total(v) <= self.limit + 1e-12 * max(1.0, abs(self.limit))

    def message(self, v) -> str:
        shown = {n: _fmt(float(np.asarray(v[n]).flat[0])) if np.ndim(v[n]) == 0 else "..." for n in self.terms}
        return self.explain.format(**shown)

    def bound_for(self, name: str, v) -> tuple[str, float]:
        """The bound the rule puts on ``name`` given the other values: ("max", x) or ("min", x)."""
        c = self.terms[name]
        x = (self.limit - float(self._total(v, skip=name))) / c
        return ("max", x) if c > 0 else ("min", x)

    def narrow(self, name: str, v, lo: float, hi: float) -> tuple[float, float]:
        if name not in self.terms:
            return lo, hi
        side, x = self.bound_for(name, v)
        spec = NUMERIC.get(name)
        if spec is not None and spec.integer:
            x = math.floor(x + 1e-9) if side == "max" else math.ceil(x - 1e-9)
        return (lo, min(hi, x)) if side == "max" else (max(lo, x), hi)

    def vega_clamp(self, name: str, value: str, field) -> str:
        """A Vega expression: ``value`` (an expression of ``name``) kept inside this rule, the other
        parameters read by ``field(other_name)``."""
        c = self.terms[name]
        rest = " + ".join(f"({-k / c!r}) * {field(n)}" for n, k in self.terms.items() if n != name) or "0"
        bound = f"({self.limit / c!r} + {rest})"
        return f"min({value}, {bound})" if c > 0 else f"max({value}, {bound})"


#: every rule between parameters, once; the CLI, sweeps, break-even, charts, the browser and the
#: report all derive from these
CONSTRAINTS: tuple[Constraint, ...] = (
    Constraint({"batch_position": 1, "batch_size": -1}, -1,
               "batch_position={batch_position} must be below batch_size={batch_size}"
               " (at most batch_size - 1 folios can precede the page)", held="batch_position"),
    Constraint({"remote_cpus": 1, "cpus": -1}, -1,
               "remote_cpus={remote_cpus} must be at most cpus - 1 (cpus={cpus});"
               " raise cpus or lower remote_cpus", held="cpus"),
    # with one CPU the page can only sit in the writer's own batch: p_same_cpu + cpus >= 2
    Constraint({"p_same_cpu": -1, "cpus": -1}, -2,
               "p_same_cpu={p_same_cpu} needs another CPU to write on, but cpus={cpus};"
               " raise cpus or set p_same_cpu=1", held="p_same_cpu"),
    Constraint({"p_holder_busy": 1, "p_holder_rt": 1}, 1,
               "p_holder_busy={p_holder_busy} + p_holder_rt={p_holder_rt} must be at most 1"
               " (the holding CPU is idle, busy or real-time)", held="p_holder_rt"),
)


def check_consistency(values: Mapping[str, object]) -> None:
    """Constraints between parameters (each single value has been checked already)."""
    for c in CONSTRAINTS:
        if not np.all(c.holds(values)):
            raise UserError(c.message(values))


def feasible(values: Mapping[str, object]) -> np.ndarray:
    """Elementwise: which points of a grid (values and arrays mixed) satisfy every constraint."""
    ok = np.asarray(True)
    for c in CONSTRAINTS:
        ok = ok & c.holds(values)
    return ok


def feasible_range(name: str, values: Mapping[str, object], lo: float | None = None,
                   hi: float | None = None) -> tuple[float, float]:
    """The range of ``name`` (its bounds, or ``lo``..``hi``) that every rule allows, the other
    parameters held at ``values``. A UserError when nothing is left."""
    spec = NUMERIC[name]
    lo = spec.low if lo is None else lo
    hi = spec.high if hi is None else hi
    for c in CONSTRAINTS:
        lo, hi = c.narrow(name, values, lo, hi)
    if lo > hi:
        limits = "; ".join(c.message(values) for c in CONSTRAINTS if name in c.terms)
        raise UserError(f"{name}: no value in its range is consistent with the other parameters ({limits})")
    return lo, hi


def partners(name: str) -> tuple[str, ...]:
    """Parameters that share a rule with ``name``."""
    return tuple(dict.fromkeys(n for c in CONSTRAINTS if name in c.terms for n in c.terms if n != name))


def raise_cpus(values: Mapping[str, object]) -> dict:
    """``values`` with ``cpus`` raised to ``remote_cpus + 1`` where that is too few (arrays too):
    what charts that sweep ``remote_cpus`` past a set's CPU count do, and say."""
    out = dict(values)
    if np.ndim(out["remote_cpus"]) or np.ndim(out["cpus"]):
        out["cpus"] = np.maximum(np.asarray(out["cpus"], dtype=float), np.asarray(out["remote_cpus"], dtype=float) + 1)
    else:
        out["cpus"] = max(out["cpus"], int(out["remote_cpus"]) + 1)
    return out


#: the origin of a value no layer set
DEFAULT_ORIGIN = "default"
#: the origin of a value handed over in a plain mapping (:func:`as_point`)
GIVEN_ORIGIN = "given"


class Point(dict):
    """A checked parameter point: every parameter's value, parsed against its registry entry and
    consistent with :data:`CONSTRAINTS`, and for each the layer it came from (its origin:
    ``"default"`` for the registry's, else the name of the layer that set it, such as a parameter
    set, a workload, a kernel preset or ``"--set"``).

    Built once at an edge of the program (a command's options, a notebook's or the report's
    starting values, a file read in) by :func:`resolve` or :func:`resolve_layers`, then passed
    along: what computes takes it through :func:`as_point`, which does not check it again.

    It is a read-only dict: ``point[name]``, ``dict(point)``, ``**point``, ``dict(point, x=1)``,
    JSON encoding and ``isinstance(point, dict)`` work as for the plain dict :func:`resolve` once
    returned, but every way of changing it in place raises; the only way to another point is
    :meth:`with_values` / :meth:`replace` (or :func:`changed`), which check the new values.
    (A dict rather than a bare Mapping so that the JSON encoders, pandas and every reader of the
    old dict see exactly what they saw.)"""

    __slots__ = ("_origins",)

    def __init__(self, values: Mapping[str, object], origins: Mapping[str, str]):
        # only the functions of this module build one, from values they have checked
        dict.__init__(self, values)
        self._origins = dict(origins)

    def _read_only(self, *_args, **_kw):
        raise TypeError("a Point is read-only: point.with_values(name=value) gives a checked point with a value"
                        " changed, dict(point) a plain dict to change")

    __setitem__ = __delitem__ = __ior__ = _read_only
    update = pop = popitem = clear = setdefault = _read_only

    def __repr__(self) -> str:
        changed_ = {n: v for n, v in self.items() if self._origins[n] != DEFAULT_ORIGIN}
        return f"Point({changed_!r}, {len(self) - len(changed_)} defaults)"

    def __reduce__(self):
        return Point, (dict(self), self._origins)

    def __copy__(self):
        return self

    def __deepcopy__(self, _memo):
        return self

    def as_dict(self) -> dict:
        """The values as a plain (mutable) dict, for code that builds arrays or grids from them."""
        return dict(self)

    @property
    def origins(self) -> dict[str, str]:
        """name -> origin of every value (a copy)."""
        return dict(self._origins)

    def origin(self, name: str) -> str:
        """Where the value of ``name`` came from: ``"default"`` or the name of the layer that set it."""
        if name not in self._origins:
            raise unknown_parameter(name)
        return self._origins[name]

    def replace(self, changes: Mapping[str, object], origin: str = "changed") -> "Point":
        """A new point: these values (each parsed) over this one's, checked; the changed names take
        ``origin``."""
        return changed(self, changes, origin)

    def with_values(self, **changes) -> "Point":
        """:meth:`replace` by keyword: ``point.with_values(remote_cpus=16)``."""
        return self.replace(changes)


def resolve_layers(*layers: tuple[str | None, Mapping[str, object] | None]) -> Point:
    """The registry defaults, then each ``(origin, values)`` layer in turn (a later one wins), every
    value parsed and the whole checked once: a :class:`Point` whose values know their origin. A
    layer that is a :class:`Point` is not parsed again, and with origin None keeps its own origins
    (a plain mapping with origin None: ``"given"``)."""
    values = defaults()
    origins = dict.fromkeys(values, DEFAULT_ORIGIN)
    for origin, layer in layers:
        if isinstance(layer, Point):   # parsed when it was built
            values.update(layer)
            origins.update(layer._origins if origin is None else dict.fromkeys(layer, origin))
            continue
        for name, raw in (layer or {}).items():
            values[name] = parse_value(name, raw)
            origins[name] = GIVEN_ORIGIN if origin is None else origin
    check_consistency(values)
    return Point(values, origins)


def resolve(overrides: Mapping[str, object] | None = None, base: Mapping[str, object] | None = None, *,
            base_origin: str = "base", override_origin: str = "override") -> Point:
    """Defaults, then ``base`` (a preset or parameter file), then ``overrides``; all checked, once:
    the :class:`Point` an edge of the program builds and passes along. Called only at the edges
    (``EDGES`` in ``tests/test_point.py``); what computes takes :func:`as_point`."""
    return resolve_layers((base_origin, base), (override_origin, overrides))


def as_point(values: Mapping[str, object] | None) -> Point:
    """``values`` as a checked :class:`Point`: a Point unchanged (it was checked when built), anything
    else (a plain dict from a notebook, a point changed by hand) resolved once over the defaults,
    its values' origin ``"given"``."""
    if isinstance(values, Point):
        return values
    return resolve_layers((None, values))


def changed(values: Mapping[str, object], changes: Mapping[str, object], origin: str = "changed") -> Point:
    """A checked point: ``changes`` over ``values`` (a :class:`Point`, whose values are not parsed
    again, or a plain mapping), the rules checked once over the result, so a change may mend what
    ``values`` alone broke, as ``resolve(dict(values, **changes))`` would."""
    return resolve_layers((None, values), (origin, changes))


def parse_assignments(items: list[str] | None) -> dict[str, object]:
    """``["NAME=VALUE", ...]`` from the command line, checked; strings are never evaluated."""
    out: dict[str, object] = {}
    for item in items or []:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UserError(f"--set {item!r}: expected NAME=VALUE, e.g. --set remote_cpus=16")
        out[name] = parse_value(name, raw)
    return out


# ---- presets ------------------------------------------------------------------------------


@dataclass(frozen=True)
class KernelPreset:
    name: str
    policy: str
    values: Mapping[str, object]
    note: str
    #: first Linux (major, minor) that behaves like this preset
    since: tuple[int, int] = (0, 0)


KERNEL_PRESETS: dict[str, KernelPreset] = {
    p.name: p
    for p in [
        KernelPreset("linux-5.8", "mapcount", {"batch_size": 15, "p_exclusive": 0.0, "large_folio_cow_reuse": 0},
                     "do_wp_page() reuses unless the page is mapped more than once; no unnecessary copy",
                     (0, 0)),
        KernelPreset("linux-5.13", "copy_if_referenced",
                     {"batch_size": 15, "p_exclusive": 0.0, "large_folio_cow_reuse": 0},
                     "refcount test since 09854ba94c6a (5.9): any batch reference forces a copy", (5, 9)),
        KernelPreset("linux-5.18", "drain_local", {"batch_size": 15, "p_exclusive": 0.0, "large_folio_cow_reuse": 0},
                     "d4c470970d45: drain the local batch if the page is not on an LRU, then test", (5, 18)),
        KernelPreset("linux-6.8", "drain_local", {"batch_size": 15, "large_folio_cow_reuse": 0},
                     "PageAnonExclusive (5.19) reuses exclusive pages at once; batch still 15", (5, 19)),
        KernelPreset("linux-6.12", "drain_local", {"batch_size": 31, "large_folio_cow_reuse": 0},
                     "batch raised to 31 in 6.9; a non-exclusive large folio is still always copied", (6, 9)),
        KernelPreset("linux-6.18", "drain_local", {"batch_size": 31, "large_folio_cow_reuse": 1},
                     "COW reuse of PTE-mapped large folios (c3edd36ad29b, 6.15) when every reference is"
                     " from this mapping; batch 31", (6, 15)),
    ]
}


def preset(name: str) -> KernelPreset:
    try:
        return KERNEL_PRESETS[name]
    except KeyError:
        raise UserError(f"unknown preset {name!r}; choose one of {', '.join(KERNEL_PRESETS)}") from None


def kernel_preset_for(release: str) -> KernelPreset:
    """The preset that describes a kernel release string such as ``6.18.44-fc``: the one with
    the latest ``since`` not after it."""
    import re

    m = re.match(r"(\d+)\.(\d+)", str(release))
    if not m:
        raise UserError(f"kernel release {release!r} is not a Linux version such as 6.18.44")
    version = (int(m.group(1)), int(m.group(2)))
    return max((p for p in KERNEL_PRESETS.values() if p.since <= version), key=lambda p: p.since)


def table_rows() -> list[dict[str, str]]:
    """The registry as rows for a docs table or ``costmodel params``."""
    rows = []
    for e in PARAMS.values():
        if isinstance(e, Numeric):
            bounds = f"{_fmt(e.low)} .. {_fmt(e.high)}"
            default = _fmt(e.default)
        else:
            bounds = " | ".join(e.choices)
            default = e.default
        rows.append({"name": e.name, "kind": e.kind, "unit": e.unit, "default": default,
                     "bounds": bounds, "description": e.description, "source": e.source})
    return rows
