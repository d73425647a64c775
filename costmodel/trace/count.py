"""What the kernel did, from the decoded events: one row per WP fault of the traced tree, one row
per batch move of every CPU, and the counts.

How each fact is read (x86; checked on Linux 6.18 with a program that counts its own copies):

- a **WP fault** is ``page_fault_user`` (or ``page_fault_kernel`` on a user address: a syscall
  writing user memory) with error code bits 0 and 1 set (present, write);
- it **copied** when the same task's first movable allocation after it is of order 0 and a
  one-page TLB flush of the task follows it (``wp_page_copy``: allocate, copy, ``ptep_clear_flush``)
  before the task's next fault; the allocation's frame is the page's new frame;
- a copy whose new page is zeroed (``__GFP_ZERO``) copied the zero page;
- a not-present fault followed by an allocation **installed** a page at that address: an
  anonymous page when the frame later enters the LRU as anonymous (the insertion's flags); a
  read fault with no allocation mapped the zero page or a file page;
- an **add** to a CPU's LRU batch is a movable allocation whose frame is next seen leaving a batch
  (``mm_lru_insertion``) before it is allocated again; the page of a WP fault was **held in a
  batch** when its frame's insertion comes after the fault;
- a **batch move** is a run of insertions on one CPU with no other event of that CPU between
  (the move holds the LRU lock with interrupts off): a run of the batch's size is the add that
  filled it, one ending with a large folio a large add, one inside the drain-all work
  (``lru_add_drain_per_cpu``) a drain-all, any other a local ``lru_add_drain()``;
- an **in-fault drain**: on a page whose install was traced, the kernel's rule (it drains when
  the folio is on no LRU list, i.e. held in a batch; the move is seen when the local batch held
  anything, and a move before the allocation of a page not held is reclaim inside the
  allocation); on other pages, a move by the faulting task on its CPU before the copy's
  allocation;
- a **live sharer** is another address space (a forked child or parent, not yet exited or
  exec'd) still mapping the frame: its copy is necessary;
- **shootdown IPIs** are the IPIs the task sends from ``on_each_cpu_cond_mask`` /
  ``smp_call_function_many_cond`` after the copy's allocation and before its local flush
  (``flush_tlb_mm_range`` asks the other CPUs first), and their target CPUs; a remote flush
  requested (``tlb_flush`` reason "remote IPI send") sends none to a CPU in lazy TLB mode.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .ingest import K, Events

CLONE_VM = 0x100
CLONE_THREAD = 0x10000
GFP_ZERO = 0x100
GFP_MOVABLE = 0x8
PAGEMAP_ANONYMOUS = 0x2
TLB_LOCAL_MM_SHOOTDOWN = 3
TLB_REMOTE_SEND_IPI = 4
USER_ADDRESS_LIMIT = 1 << 47
PAGE_SHIFT = 12
ZERO_OR_FILE = -1

#: the kinds of WP fault by what the page was
KIND_ANON, KIND_ZERO_FILE, KIND_UNTRACKED = "anon", "zero_or_file", "untracked"


@dataclass
class Page:
    pfn: int
    t_install: int
    cpu: int
    t_lru: int        # when the frame left its add batch (a large number: not within the trace)
    order: int
    position: int = -1   # folios ahead of it in its batch (-1: not moved within the trace)


@dataclass
class _Fault:
    i: int            # row index of the event
    t: int
    cpu: int
    pid: int
    mm: int
    address: int
    wp: bool
    write: bool
    kernel: bool
    alloc: int = -1   # event index of the first movable allocation in the window
    flushed: bool = False
    shootdowns: int = 0
    ipis: int = 0
    ipi_targets: int = 0
    drained: int = 0
    drained_own: bool = False
    old: Page | None = None
    old_state: str = KIND_UNTRACKED
    sharer: bool = False      # another live address space mapped the frame at the fault


@dataclass
class Counted:
    wp: pd.DataFrame
    moves: pd.DataFrame
    adds: pd.DataFrame
    drain_all: pd.DataFrame
    tasks: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)


def _signed(x: int) -> int:
    """A kernel address as the events' int64 columns hold it."""
    x = int(x)
    return x - (1 << 64) if x >= 1 << 63 else x


def _in_ranges(values: np.ndarray, ranges) -> np.ndarray:
    ok = np.zeros(len(values), dtype=bool)
    for lo, hi in ranges:
        lo, hi = _signed(lo), _signed(hi)
        ok |= (values >= lo) & (values < hi)
    return ok


def _next_insertion(ev: Events) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For every event that is an allocation: the time, CPU and flags of its frame's next
    insertion before the frame is allocated again (time -1 when none), and that insertion's
    event index (-1 when none)."""
    n = len(ev)
    kind = ev["kind"]
    sel = np.flatnonzero((kind == K["mm_page_alloc"]) | (kind == K["mm_lru_insertion"]))
    pfn, t, is_ins = ev["f0"][sel], ev["t_ns"][sel], kind[sel] == K["mm_lru_insertion"]
    order = np.lexsort((sel, t, pfn))
    s_sel, s_pfn, s_ins = sel[order], pfn[order], is_ins[order]
    m = len(order)
    pos = np.arange(m)
    # next insertion at or after each position, and next allocation strictly after it
    nxt_ins = np.where(s_ins, pos, m)
    nxt_ins = np.minimum.accumulate(nxt_ins[::-1])[::-1]
    nxt_alloc = np.where(~s_ins, pos, m)
    nxt_alloc_after = np.append(np.minimum.accumulate(nxt_alloc[::-1])[::-1][1:], m)
    t_ins = np.full(n, -1, np.int64)
    cpu_ins = np.full(n, -1, np.int16)
    flags_ins = np.zeros(n, np.int64)
    at_ins = np.full(n, -1, np.int64)
    a = np.flatnonzero(~s_ins)
    j = nxt_ins[a]
    ok = (j < m) & (j < nxt_alloc_after[a])
    ok[ok] &= s_pfn[j[ok]] == s_pfn[a[ok]]
    src = s_sel[a[ok]]
    dst = s_sel[j[ok]]
    t_ins[src] = ev["t_ns"][dst]
    cpu_ins[src] = ev["cpu"][dst]
    flags_ins[src] = ev["f1"][dst]
    at_ins[src] = dst
    return t_ins, cpu_ins, flags_ins, at_ins


def positions_in_moves(ev: Events) -> np.ndarray:
    """For every insertion event: how many folios its batch move inserted before it, which is
    the folio's position in its batch (the folios ahead of it when it was added); -1 elsewhere."""
    out = np.full(len(ev), -1, np.int64)
    kind = ev["kind"]
    for cpu in np.unique(ev["cpu"]):
        idx = np.flatnonzero(ev["cpu"] == cpu)
        ins = kind[idx] == K["mm_lru_insertion"]
        if not ins.any():
            continue
        pid = ev["pid"][idx]
        start = ins & ~np.append(False, ins[:-1] & (pid[1:] == pid[:-1]))
        run_id = np.cumsum(start) - 1
        r = run_id[ins]
        first = np.searchsorted(r, r, side="left")
        out[idx[ins]] = np.arange(len(r)) - first
    return out


def batch_moves(ev: Events, batch_size: int, drain_work: list) -> pd.DataFrame:
    """One row per batch move of any CPU: time, CPU, task, folios moved and its cause."""
    rows = []
    kind = ev["kind"]
    for cpu in np.unique(ev["cpu"]):
        idx = np.flatnonzero(ev["cpu"] == cpu)
        k = kind[idx]
        ins = k == K["mm_lru_insertion"]
        if not ins.any():
            continue
        pid = ev["pid"][idx]
        start = ins & ~np.append(False, ins[:-1] & (pid[1:] == pid[:-1]))
        run_id = np.cumsum(start) - 1
        r = run_id[ins]
        ins_idx = idx[ins]
        sizes = np.bincount(r)
        first = ins_idx[np.searchsorted(r, np.arange(len(sizes)))]
        last = ins_idx[np.searchsorted(r, np.arange(len(sizes)), side="right") - 1]
        # inside a drain-all work on this CPU: the last drain-work event before the move is a start
        wq = idx[((k == K["workqueue_execute_start"]) | (k == K["workqueue_execute_end"]))
                 & _in_ranges(ev["f0"][idx], drain_work)]
        in_work = np.zeros(len(sizes), dtype=bool)
        if len(wq):
            j = np.searchsorted(ev["t_ns"][wq], ev["t_ns"][first], side="right") - 1
            in_work = (j >= 0) & (kind[wq][np.maximum(j, 0)] == K["workqueue_execute_start"])
        rows.append(pd.DataFrame({"t_ns": ev["t_ns"][first], "cpu": int(cpu), "pid": ev["pid"][first],
                                  "folios": sizes, "last_pfn": ev["f0"][last], "in_drain_all": in_work}))
    if not rows:
        return pd.DataFrame(columns=["t_ns", "cpu", "pid", "folios", "cause"])
    moves = pd.concat(rows, ignore_index=True)
    # a large folio ends its move: its frame's allocation had order > 0
    alloc = np.flatnonzero(kind == K["mm_page_alloc"])
    large_pfns = set(ev["f0"][alloc][ev["f1"][alloc] > 0].tolist())
    large_last = moves["last_pfn"].isin(large_pfns).to_numpy()
    cause = np.where(moves["in_drain_all"], "drain_all",
                     np.where(moves["folios"] >= batch_size, "fill",
                              np.where(large_last, "large_add", "local_drain")))
    moves["cause"] = cause
    return moves.drop(columns=["last_pfn", "in_drain_all"]).sort_values("t_ns", ignore_index=True)


def count(ev: Events, roots: set[int], symbols: dict, batch_size: int, t_start: int, t_end: int,
          root_tgids: dict[int, int] | None = None) -> Counted:
    """Walk the tree's events in time order; see the module's description of each fact."""
    kind, t_all, cpu_all, pid_all = ev["kind"], ev["t_ns"], ev["cpu"], ev["pid"]
    f0, f1, f2 = ev["f0"], ev["f1"], ev["f2"]
    ipi_sites = [tuple(symbols[s]) for s in ("on_each_cpu_cond_mask", "smp_call_function_many_cond") if s in symbols]
    drain_work = [tuple(symbols["lru_add_drain_per_cpu"])] if "lru_add_drain_per_cpu" in symbols else []
    t_ins, cpu_ins, flags_ins, at_ins = _next_insertion(ev)
    pos_ev = positions_in_moves(ev)
    position = np.where(at_ins >= 0, pos_ev[np.maximum(at_ins, 0)], -1)

    # ---- the tree: tasks, their address spaces (mm), in time order ------------------------
    task_kinds = (K["task_newtask"], K["sched_process_exec"], K["sched_process_exit"])
    mm_of: dict[int, int] = {}
    tgid_of: dict[int, int] = {}
    mm_tasks: dict[int, set] = {}
    next_mm = [0]

    def new_mm() -> int:
        next_mm[0] += 1
        mm_tasks[next_mm[0]] = set()
        return next_mm[0]

    root_tgids = root_tgids or {}
    by_tgid: dict[int, int] = {}
    for p in sorted(roots):
        g = root_tgids.get(p, p)
        if g not in by_tgid:
            by_tgid[g] = new_mm()
        mm_of[p] = by_tgid[g]
        tgid_of[p] = g
        mm_tasks[by_tgid[g]].add(p)

    mm_pages: dict[int, dict[int, Page | int]] = {m: {} for m in mm_tasks}
    mappers: dict[int, set] = {}
    dead_mm_at: dict[int, int] = {}
    forks = []

    def drop_mm(m: int, t: int) -> None:
        for rec in mm_pages.pop(m, {}).values():
            if isinstance(rec, Page):
                s = mappers.get(rec.pfn)
                if s is not None:
                    s.discard(m)
        dead_mm_at[m] = t

    def leave(pid: int, t: int) -> None:
        m = mm_of.pop(pid, None)
        if m is None:
            return
        tasks = mm_tasks.get(m)
        if tasks is not None:
            tasks.discard(pid)
            if not tasks:
                drop_mm(m, t)

    # events of interest: the tree's (decided on the fly) plus task events
    interesting = np.isin(kind, [K["page_fault_user"], K["page_fault_kernel"], K["mm_page_alloc"],
                                 K["mm_lru_insertion"], K["tlb_flush"], K["ipi_send_cpu"],
                                 K["ipi_send_cpumask"], *task_kinds])
    idx_all = np.flatnonzero(interesting)
    # allocations and insertions of tasks never in the tree are skipped cheaply: the tree's pids
    # are known only on the way, so keep every task event and every event whose pid ever joins
    tree_pids = set(roots)
    for i in idx_all[np.isin(kind[idx_all], [K["task_newtask"]])]:
        if int(pid_all[i]) in tree_pids:
            tree_pids.add(int(f0[i]))
    keep = np.isin(pid_all[idx_all], np.fromiter(tree_pids, dtype=np.int64)) | np.isin(kind[idx_all], task_kinds)
    idx_all = idx_all[keep]
    is_ipi_site = np.zeros(len(ev), dtype=bool)
    ipi_idx = np.flatnonzero((kind == K["ipi_send_cpu"]) | (kind == K["ipi_send_cpumask"]))
    is_ipi_site[ipi_idx] = _in_ranges(f1[ipi_idx], ipi_sites)

    open_fault: dict[int, _Fault] = {}
    rows: list[tuple] = []
    notes: list[str] = []
    K_FU, K_FK, K_AL, K_IN, K_TLB = (K["page_fault_user"], K["page_fault_kernel"], K["mm_page_alloc"],
                                     K["mm_lru_insertion"], K["tlb_flush"])
    K_IPI1, K_IPIM, K_NEW, K_EXEC, K_EXIT = (K["ipi_send_cpu"], K["ipi_send_cpumask"], K["task_newtask"],
                                             K["sched_process_exec"], K["sched_process_exit"])
    NEVER = np.iinfo(np.int64).max

    def finish(f: _Fault) -> None:
        pages = mm_pages.get(f.mm)
        if pages is None:
            return
        page_addr = f.address >> PAGE_SHIFT
        a = f.alloc
        if f.wp:
            copied = a >= 0 and f.flushed and int(f1[a]) == 0
            rec = f.old
            state = f.old_state
            if copied and int(f2[a]) & GFP_ZERO:
                # a zeroed copy is the copy of the zero page (mapped without a fault we saw, e.g. by
                # MADV_POPULATE_READ), whatever our map of the address says
                rec, state = None, KIND_ZERO_FILE
            held = sharer = False
            same = install_cpu = -1
            gap = -1
            order = 0
            pos = -1
            if isinstance(rec, Page):
                held = f.t < rec.t_lru
                sharer = f.sharer
                install_cpu = rec.cpu
                same = int(rec.cpu == f.cpu)
                gap = f.t - rec.t_install
                order = rec.order
                pos = rec.position
            drain_seen = f.drained if (f.drained and (copied or f.drained_own)) else 0
            if isinstance(rec, Page):
                # the kernel drains when the folio is on no LRU list: exactly when it is held; a
                # move before the allocation of a page not held is reclaim inside the allocation
                drain_seen = drain_seen if held else 0
                in_fault = held
            else:
                in_fault = bool(drain_seen)
            rows.append((f.t, f.cpu, f.pid, f.mm, f.address, state, copied, held, sharer, install_cpu, same, gap,
                         order, drain_seen, in_fault, f.shootdowns if copied else 0,
                         f.ipis if copied else 0, f.ipi_targets if copied else 0, f.kernel, pos))
            if copied:
                if isinstance(rec, Page):
                    s = mappers.get(rec.pfn)
                    if s is not None:
                        s.discard(f.mm)
                new = Page(int(f0[a]), int(t_all[a]), int(cpu_all[a]),
                           int(t_ins[a]) if t_ins[a] >= 0 else NEVER, 0, int(position[a]))
                pages[page_addr] = new
                mappers[new.pfn] = {f.mm}
            return
        # not present: an install, the zero page or a file page
        if a >= 0:
            if t_ins[a] >= 0:   # the frame's insertion says what it is
                anon = bool(flags_ins[a] & PAGEMAP_ANONYMOUS)
            else:               # still in a batch at the end: a zeroed page, or a write's private copy
                anon = bool(f2[a] & GFP_ZERO) or f.write
            old = pages.get(page_addr)
            if isinstance(old, Page):
                s = mappers.get(old.pfn)
                if s is not None:
                    s.discard(f.mm)
            if anon:
                rec = Page(int(f0[a]), int(t_all[a]), int(cpu_all[a]),
                           int(t_ins[a]) if t_ins[a] >= 0 else NEVER, int(f1[a]), int(position[a]))
                if rec.order > 0:   # every page of the large folio
                    base = page_addr & ~((1 << rec.order) - 1)
                    for p in range(base, base + (1 << rec.order)):
                        pages[p] = rec
                else:
                    pages[page_addr] = rec
                mappers[rec.pfn] = {f.mm}
            else:
                pages[page_addr] = ZERO_OR_FILE
        elif not f.write:   # a read fault with no allocation: the zero page or a file page is mapped now
            old = pages.get(page_addr)
            if isinstance(old, Page):
                s = mappers.get(old.pfn)
                if s is not None:
                    s.discard(f.mm)
            pages[page_addr] = ZERO_OR_FILE

    for i in idx_all:
        k = kind[i]
        pid = int(pid_all[i])
        if k == K_NEW:
            if pid not in mm_of:
                continue
            f = open_fault.pop(pid, None)   # the fault before the fork has ended: its page is mapped
            if f:
                finish(f)
            child, flags = int(f0[i]), int(f1[i])
            if flags & CLONE_VM:
                m = mm_of[pid]
            else:
                m = new_mm()
                parent = mm_of[pid]
                src = mm_pages.get(parent, {})
                mm_pages[m] = dict(src)
                for rec in src.values():
                    if isinstance(rec, Page):
                        mappers.setdefault(rec.pfn, set()).add(m)
                forks.append((int(t_all[i]), pid, child, parent, m))
            mm_of[child] = m
            tgid_of[child] = tgid_of[pid] if flags & CLONE_THREAD else child
            mm_tasks[m].add(child)
            continue
        if k in (K_EXEC, K_EXIT):
            if pid not in mm_of:
                continue
            f = open_fault.pop(pid, None)   # the task's open fault ends, and it leaves its mm
            if f:
                finish(f)
            leave(pid, int(t_all[i]))
            if k == K_EXEC:                 # a fresh mm of its own
                m = new_mm()
                mm_pages[m] = {}
                mm_of[pid] = m
                mm_tasks[m].add(pid)
            continue
        m = mm_of.get(pid)
        if m is None:
            continue
        if k == K_FU or k == K_FK:
            addr = int(f0[i])
            if k == K_FK and addr >= USER_ADDRESS_LIMIT:
                continue
            f = open_fault.pop(pid, None)
            if f:
                finish(f)
            err = int(f1[i])
            nf = _Fault(int(i), int(t_all[i]), int(cpu_all[i]), pid, m, addr, bool(err & 1) and bool(err & 2),
                        bool(err & 2), k == K_FK)
            if nf.wp:
                rec = mm_pages.get(m, {}).get(addr >> PAGE_SHIFT)
                if isinstance(rec, Page):
                    nf.old, nf.old_state = rec, KIND_ANON
                    nf.sharer = any(o != m for o in mappers.get(rec.pfn, ()))
                elif rec == ZERO_OR_FILE:
                    nf.old_state = KIND_ZERO_FILE
            open_fault[pid] = nf
            continue
        f = open_fault.get(pid)
        if f is None:
            continue
        if k == K_AL:
            if f.alloc < 0:
                f.alloc = int(i)
        elif k == K_IN:
            if f.alloc < 0 and int(cpu_all[i]) == f.cpu:
                f.drained += 1
                if f.old is not None and int(f0[i]) == f.old.pfn:
                    f.drained_own = True
        elif k == K_TLB:
            if f.alloc >= 0 and not f.flushed and int(f1[i]) == 1:
                reason = int(f0[i])
                if reason == TLB_LOCAL_MM_SHOOTDOWN:
                    f.flushed = True
                elif reason == TLB_REMOTE_SEND_IPI:
                    f.shootdowns += 1
        elif k == K_IPI1 or k == K_IPIM:
            # the copy's shootdown: after its allocation, before its own local flush
            # (only once it asked for the remote flush: reclaim inside the allocation's memcg
            # charge flushes other address spaces' TLBs from the same call sites)
            if f.alloc >= 0 and not f.flushed and f.shootdowns and is_ipi_site[i]:
                f.ipis += 1
                f.ipi_targets += int(f0[i])
    for f in list(open_fault.values()):
        finish(f)

    wp = pd.DataFrame(rows, columns=["t_ns", "cpu", "pid", "mm", "address", "page", "copied", "held", "live_sharer",
                                     "install_cpu", "same_cpu", "gap_ns", "order", "drained_folios", "in_fault_drain",
                                     "shootdowns", "ipis", "ipi_targets", "kernel_mode", "batch_position"])
    wp["batch_held_copy"] = wp["copied"] & wp["held"] & ~wp["live_sharer"] & (wp["page"] == KIND_ANON)

    # ---- adds per CPU, adds in each gap, CPUs running the mm --------------------------------
    alloc_idx = np.flatnonzero((kind == K_AL) & (t_ins >= 0))
    adds = pd.DataFrame({"t_ns": t_all[alloc_idx], "cpu": cpu_ins[alloc_idx].astype(int),
                         "order": f1[alloc_idx].astype(int), "t_lru_ns": t_ins[alloc_idx]})
    adds = adds.sort_values("t_ns", ignore_index=True)
    gaps = np.full(len(wp), -1, np.int64)
    anon_rows = np.flatnonzero(wp["page"].to_numpy() == KIND_ANON)
    if len(anon_rows):
        for c, grp in adds.groupby("cpu"):
            tc = grp["t_ns"].to_numpy()
            sel = anon_rows[wp["install_cpu"].to_numpy()[anon_rows] == c]
            if not len(sel):
                continue
            t_f = wp["t_ns"].to_numpy()[sel]
            t_i = t_f - wp["gap_ns"].to_numpy()[sel]
            gaps[sel] = np.searchsorted(tc, t_f, side="left") - np.searchsorted(tc, t_i, side="right")
    wp["adds_in_gap"] = gaps
    wp["remote_cpus"] = _running_elsewhere(ev, wp, mm_of_all=tgid_of)

    moves = batch_moves(ev, batch_size, drain_work)
    qi = np.flatnonzero((kind == K["workqueue_queue_work"]) & _in_ranges(f0, drain_work)) if drain_work else np.zeros(0, int)
    drain_all = pd.DataFrame({"t_ns": t_all[qi], "pid": pid_all[qi], "target_cpu": f1[qi].astype(int)})
    drain_all["call"] = np.zeros(len(drain_all), np.int64)
    if len(drain_all):   # one lru_add_drain_all() queues its works within a few microseconds
        call = np.cumsum(np.append(True, (np.diff(drain_all["t_ns"].to_numpy()) > 200_000)
                                   | (np.diff(drain_all["pid"].to_numpy()) != 0)))
        drain_all["call"] = call
    tasks = {"tree_tasks": len(tree_pids), "forks": len(forks), "address_spaces": next_mm[0]}
    return Counted(wp, moves, adds, drain_all, tasks, notes)


def _running_elsewhere(ev: Events, wp: pd.DataFrame, mm_of_all: dict[int, int]) -> np.ndarray:
    """For each WP fault: how many other CPUs were running a task of the same process (from
    ``sched_switch``; 0 where the switches were not recorded)."""
    out = np.zeros(len(wp), np.int64)
    sw = np.flatnonzero(ev["kind"] == K["sched_switch"])
    if not len(sw) or not len(wp):
        return out
    tg = np.array([mm_of_all.get(int(p), -1) for p in ev["f1"][sw]], dtype=np.int64)
    # process of each faulting task
    fault_tg = np.array([mm_of_all.get(int(p), -2) for p in wp["pid"]], dtype=np.int64)
    t_f = wp["t_ns"].to_numpy()
    c_f = wp["cpu"].to_numpy()
    for c in np.unique(ev["cpu"][sw]):
        sel = ev["cpu"][sw] == c
        ts, cur = ev["t_ns"][sw][sel], tg[sel]
        j = np.searchsorted(ts, t_f, side="right") - 1
        running = np.where(j >= 0, cur[np.maximum(j, 0)], -3)
        out += ((running == fault_tg) & (c_f != c)).astype(np.int64)
    return out
