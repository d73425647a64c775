"""Decode the ring buffer's raw pages (``per_cpu/cpuN/trace_pipe_raw``) into columns, vectorised.

A page is a 16-byte header (the page's time stamp, the committed size with two "missed events"
flags) and a chain of records, each a 32-bit header (type_len: 5 bits, time_delta: 27) and its
payload: type_len 1..28 is a data record of type_len * 4 bytes, 0 a data record whose length
is in the next word, 29 padding (or the page's end when its delta is 0), 30 a time extend,
31 an absolute time stamp (the kernel's ``events/header_event`` says the same).

The chain is walked for every page at once: each 32-bit word gets the index of the record that
would follow if a record started there, and pointer doubling (ten rounds of ``next = next[next]``)
marks every word reachable from the pages' first records: exactly the record starts. Time stamps
are a cumulative sum of the records' deltas from the page's stamp. Fields are gathered per event
type from the offsets in each event's ``format``. No Python loop runs per event.

:func:`decode_text_line` is the straightforward line-by-line reader of the formatted ``trace``
text, kept as the benchmark's baseline.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from .tracefs import EventFormat

#: event kinds, the ``kind`` column
KINDS = {
    ("exceptions", "page_fault_user"): 1,
    ("exceptions", "page_fault_kernel"): 2,
    ("kmem", "mm_page_alloc"): 3,
    ("pagemap", "mm_lru_insertion"): 4,
    ("tlb", "tlb_flush"): 5,
    ("ipi", "ipi_send_cpu"): 6,
    ("ipi", "ipi_send_cpumask"): 7,
    ("workqueue", "workqueue_queue_work"): 8,
    ("workqueue", "workqueue_execute_start"): 9,
    ("workqueue", "workqueue_execute_end"): 10,
    ("task", "task_newtask"): 11,
    ("sched", "sched_process_exit"): 12,
    ("sched", "sched_process_exec"): 13,
    ("sched", "sched_switch"): 14,
}
K = {name: code for (_, name), code in KINDS.items()}
#: which fields of each event land in the columns f0, f1, f2 (None: left 0)
COLUMNS: dict[str, tuple[str | None, str | None, str | None]] = {
    "page_fault_user": ("address", "error_code", None),
    "page_fault_kernel": ("address", "error_code", None),
    "mm_page_alloc": ("pfn", "order", "gfp_flags"),
    "mm_lru_insertion": ("pfn", "flags", "lru"),
    "tlb_flush": ("reason", "pages", None),
    "ipi_send_cpu": (None, "callsite", "cpu"),
    "ipi_send_cpumask": ("cpumask", "callsite", None),
    "workqueue_queue_work": ("function", "cpu", "work"),
    "workqueue_execute_start": ("function", None, "work"),
    "workqueue_execute_end": ("function", None, "work"),
    "task_newtask": ("pid", "clone_flags", None),
    "sched_process_exit": ("pid", "group_dead", None),
    "sched_process_exec": ("pid", "old_pid", None),
    "sched_switch": ("prev_pid", "next_pid", "prev_state"),
}
COLUMN_NAMES = ("t_ns", "cpu", "pid", "kind", "f0", "f1", "f2")
RB_MISSED_EVENTS = 1 << 31
RB_MISSED_STORED = 1 << 30
_DOUBLINGS = 10


class Events(dict):
    """Columns of equal length: t_ns (int64), cpu (int16), pid (int32), kind (int8), f0..f2 (int64)."""

    def __len__(self) -> int:
        return len(self["t_ns"]) if "t_ns" in self else 0

    def take(self, idx) -> "Events":
        return Events({k: v[idx] for k, v in self.items()})


def empty() -> Events:
    return Events(t_ns=np.zeros(0, np.int64), cpu=np.zeros(0, np.int16), pid=np.zeros(0, np.int32),
                  kind=np.zeros(0, np.int8), f0=np.zeros(0, np.int64), f1=np.zeros(0, np.int64),
                  f2=np.zeros(0, np.int64))


def _u64(words: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return words[idx].astype(np.uint64) | (words[idx + 1].astype(np.uint64) << np.uint64(32))


def _popcount64(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint64)
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return ((x * np.uint64(0x0101010101010101)) >> np.uint64(56)).astype(np.int64)


def decode_pages(buf: bytes | np.ndarray, page_size: int, formats: Iterable[EventFormat], cpu: int) -> tuple[Events, int]:
    """Every event of a run of raw pages of one CPU, and the number of pages flagged as having
    lost events before them."""
    words = np.frombuffer(buf, dtype="<u4") if not isinstance(buf, np.ndarray) else buf
    wpp = page_size // 4
    npages = len(words) // wpp
    if npages == 0:
        return empty(), 0
    words = words[: npages * wpp]
    hdr = words.reshape(npages, wpp)
    ts0 = hdr[:, 0].astype(np.int64) | (hdr[:, 1].astype(np.int64) << 32)
    commit = hdr[:, 2].astype(np.int64)
    missed = int(np.count_nonzero(commit & RB_MISSED_EVENTS))
    size = commit & (RB_MISSED_STORED - 1)
    end_local = np.minimum(4 + (size + 3) // 4, wpp)          # first word past the page's data

    W = npages * wpp
    w64 = words.astype(np.int64)
    tl = w64 & 31
    td = w64 >> 5
    nextw = np.empty(W, np.int64)
    nextw[:-1] = w64[1:]
    nextw[-1] = 0
    step = np.where(tl <= 28, 1 + tl, 2)
    with_len = (tl == 0) | ((tl == 29) & (td != 0))
    step = np.where(with_len, 1 + nextw // 4, step)
    step = np.maximum(step, 1)
    idx = np.arange(W, dtype=np.int64)
    page = idx // wpp
    local = idx - page * wpp
    page_end = end_local[page]
    nxt = idx + step
    dead = (local + step >= page_end) | ((tl == 29) & (td == 0)) | (local >= page_end)
    nxt[dead] = W
    J = np.append(nxt, W)
    mark = np.zeros(W + 1, dtype=bool)
    starts = np.flatnonzero(size > 0) * wpp + 4
    mark[starts] = True
    for _ in range(_DOUBLINGS):
        pos = np.flatnonzero(mark)
        mark[J[pos]] = True
        J = J[J]
    mark[W] = False
    P = np.flatnonzero(mark[:W])
    tlP, tdP = tl[P], td[P]
    delta = np.where(tlP == 30, tdP + (nextw[P] << 27), np.where(tlP <= 28, tdP, 0))
    pageP = page[P]
    cum = np.cumsum(delta)
    first = np.searchsorted(pageP, pageP, side="left")
    base = cum[first] - delta[first]
    t = ts0[pageP] + (cum - base)
    absolute = np.flatnonzero(tlP == 31)
    if absolute.size:   # rare: an absolute stamp restarts the page's clock (59 bits, top from the page)
        for i in absolute:
            pg = pageP[i]
            stamp = int(tdP[i] + (nextw[P[i]] << 27))
            stamp |= int(ts0[pg]) & ~((1 << 59) - 1)
            j = i
            offset = stamp - int(t[i])
            while j < len(P) and pageP[j] == pg:
                t[j] += offset
                j += 1
    data = tlP <= 28
    P, t, tlP = P[data], t[data], tlP[data]
    D = np.where(tlP == 0, P + 2, P + 1)
    ok = D + 2 < W
    D, t = D[ok], t[ok]
    etype = w64[D] & 0xFFFF
    pid = words[D + 1].view(np.int32)

    out_parts, positions = [], []
    for fmt in formats:
        code = KINDS.get((fmt.system, fmt.name))
        if code is None:
            continue
        sel = np.flatnonzero(etype == fmt.id)
        if sel.size == 0:
            continue
        d = D[sel]
        cols = []
        for fname in COLUMNS[fmt.name]:
            if fname is None or fname not in fmt.fields:
                cols.append(np.zeros(sel.size, np.int64))
                continue
            f = fmt.fields[fname]
            wi = d + f.offset // 4
            shift = (f.offset % 4) * 8
            if fname == "cpumask":   # __data_loc: offset (low 16 bits) and length of a bitmap
                loc = w64[wi]
                bits_at = d + (loc & 0xFFFF) // 4
                nbytes = loc >> 16
                lo = w64[np.minimum(bits_at, W - 1)]
                hi = np.where(nbytes > 4, w64[np.minimum(bits_at + 1, W - 1)], 0)
                cols.append(_popcount64((hi << 32) | lo))
                continue
            if f.size == 8:
                v = _u64(words, wi).view(np.int64)
            else:
                v = (w64[wi] >> shift) & ((1 << (8 * f.size)) - 1)
                if f.signed and f.size < 8:
                    sign = 1 << (8 * f.size - 1)
                    v = (v ^ sign) - sign
            cols.append(v.astype(np.int64))
        if fmt.name == "ipi_send_cpu":
            cols[0] = np.ones(sel.size, np.int64)
        out_parts.append(Events(t_ns=t[sel], cpu=np.full(sel.size, cpu, np.int16), pid=pid[sel].astype(np.int32),
                                kind=np.full(sel.size, code, np.int8), f0=cols[0], f1=cols[1], f2=cols[2]))
        positions.append(sel)
    out = concat(out_parts)
    if positions:   # back in the order the CPU wrote them (ties in time keep it)
        out = out.take(np.argsort(np.concatenate(positions), kind="stable"))
    return out, missed


def concat(parts: list[Events]) -> Events:
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty()
    return Events({k: np.concatenate([p[k] for p in parts]) for k in COLUMN_NAMES})


def sort_by_time(ev: Events) -> Events:
    order = np.argsort(ev["t_ns"], kind="stable")
    return ev.take(order)


#: pages decoded at once: bounds the memory of the decoder, whatever the trace's length
CHUNK_PAGES = 16384


def read_raw_dir(raw_dir: Path, page_size: int, formats: Iterable[EventFormat]) -> tuple[Events, dict[int, int]]:
    """Every event of ``raw_dir/cpuN.bin``, merged by time; and per CPU the pages flagged with
    lost events. Each file is decoded in chunks of :data:`CHUNK_PAGES` pages."""
    formats = list(formats)
    parts, missed = [], {}
    for path in sorted(Path(raw_dir).glob("cpu*.bin")):
        cpu = int(path.stem[3:])
        missed[cpu] = 0
        with open(path, "rb") as f:
            while True:
                buf = f.read(CHUNK_PAGES * page_size)
                if not buf:
                    break
                ev, m = decode_pages(buf, page_size, formats, cpu)
                missed[cpu] += m
                parts.append(ev)
    return sort_by_time(concat(parts)), missed


# ---- the baseline: a straightforward reader of the formatted text, one line at a time -----

_LINE = re.compile(r"^\s*(?P<comm>.+?)-(?P<pid>\d+)\s+(?:\(\s*[\d-]+\)\s+)?\[(?P<cpu>\d+)\]\s+(?:\S+\s+)?"
                   r"(?P<ts>\d+\.\d+):\s+(?P<event>\w+):\s*(?P<rest>.*)$")
_KV = re.compile(r"(\w+)[=:]\s*(\S+)")


def decode_text_line(line: str, names: Mapping[str, int] = K) -> tuple | None:
    """One line of the formatted ``trace`` file as (t_ns, cpu, pid, kind, fields dict), or None."""
    m = _LINE.match(line)
    if not m or m.group("event") not in names:
        return None
    sec, _, frac = m.group("ts").partition(".")
    t_ns = int(sec) * 1_000_000_000 + int(frac.ljust(9, "0")[:9])
    fields = dict(_KV.findall(m.group("rest")))
    return t_ns, int(m.group("cpu")), int(m.group("pid")), names[m.group("event")], fields
