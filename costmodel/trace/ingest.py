"""Decode the ring buffer's raw pages (``per_cpu/cpuN/trace_pipe_raw``) into columns, vectorised.

A page is a 16-byte header (the page's time stamp, the committed size with two "missed events"
flags) and a chain of records, each a 32-bit header (type_len: 5 bits, time_delta: 27) and its
payload: type_len 1..28 is a data record of type_len * 4 bytes, 0 a data record whose length
is in the next word, 29 padding (or the page's end when its delta is 0), 30 a time extend,
31 an absolute time stamp (the kernel's ``events/header_event`` says the same).

The chains of all pages are walked in lockstep: each step reads one record header of every page
still active and advances it by that record's length, so a step is a few vectorised operations
and there are as many steps as records in the fullest page. Time stamps are a cumulative sum of
the records' deltas from the page's stamp. Fields are gathered per event type from the offsets
in each event's ``format``. No Python loop runs per event.

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
    """The 8-byte little-endian values starting at 32-bit word ``idx`` (4-byte aligned)."""
    even = words[: len(words) // 2 * 2].view("<u8")
    odd = words[1: 1 + (len(words) - 1) // 2 * 2].view("<u8")
    return np.where(idx % 2 == 0, even[np.minimum(idx // 2, len(even) - 1)],
                    odd[np.minimum((idx - 1) // 2, max(len(odd) - 1, 0))])


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
    # walk every page's chain in lockstep: one step advances each page by one record, so the
    # work is the number of records plus a few vectorised operations per step; each page's clock
    # advances with its records' deltas on the way
    cur = np.full(npages, 4, dtype=np.int64)
    clock = ts0.copy()
    active = (size > 0) & (cur < end_local)
    found, stamps, kinds = [], [], []
    page_base = np.arange(npages, dtype=np.int64) * wpp
    while True:
        idx = np.flatnonzero(active)
        if not idx.size:
            break
        g = page_base[idx] + cur[idx]
        w = words[g].astype(np.int64)
        tl = w & 31
        td = w >> 5
        nw = words[np.minimum(g + 1, W - 1)].astype(np.int64)
        with_len = (tl == 0) | ((tl == 29) & (td != 0))
        step = np.where(with_len, 1 + nw // 4, np.where(tl <= 28, 1 + tl, 2))
        end_of_page = (tl == 29) & (td == 0)
        delta = np.where(tl == 30, td + (nw << 27), np.where(tl <= 28, td, 0))
        stamp = tl == 31
        if stamp.any():   # rare: an absolute stamp (59 bits, the top ones from the page's)
            absolute = td[stamp] + (nw[stamp] << 27)
            pages = idx[stamp]
            clock[pages] = (clock[pages] & ~((1 << 59) - 1)) | absolute
        clock[idx] += delta
        data = tl <= 28
        found.append(g[data])
        stamps.append(clock[idx][data])
        kinds.append(tl[data])
        nxt = cur[idx] + np.maximum(step, 1)
        cur[idx] = nxt
        active[idx] = ~end_of_page & (nxt < end_local[idx])
    P = np.concatenate(found) if found else np.zeros(0, np.int64)
    t = np.concatenate(stamps) if stamps else np.zeros(0, np.int64)
    tlP = np.concatenate(kinds) if kinds else np.zeros(0, np.int64)
    D = np.where(tlP == 0, P + 2, P + 1)
    ok = D + 2 < W
    D, t = D[ok], t[ok]
    etype = words[D].astype(np.int64) & 0xFFFF
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
                loc = words[wi].astype(np.int64)
                bits_at = d + (loc & 0xFFFF) // 4
                nbytes = loc >> 16
                lo = words[np.minimum(bits_at, W - 1)].astype(np.int64)
                hi = np.where(nbytes > 4, words[np.minimum(bits_at + 1, W - 1)].astype(np.int64), 0)
                cols.append(_popcount64((hi << 32) | lo))
                continue
            if f.size == 8:
                v = _u64(words, wi).view(np.int64)
            else:
                v = (words[wi].astype(np.int64) >> shift) & ((1 << (8 * f.size)) - 1)
                if f.signed and f.size < 8:
                    sign = 1 << (8 * f.size - 1)
                    v = (v ^ sign) - sign
            cols.append(v.astype(np.int64))
        if fmt.name == "ipi_send_cpu":
            cols[0] = np.ones(sel.size, np.int64)
        out_parts.append(Events(t_ns=t[sel], cpu=np.full(sel.size, cpu, np.int16), pid=pid[sel].astype(np.int32),
                                kind=np.full(sel.size, code, np.int8), f0=cols[0], f1=cols[1], f2=cols[2]))
        positions.append(d)
    out = concat(out_parts)
    if positions:   # in the order the CPU wrote them (pages as read, records in each page)
        out = out.take(np.argsort(np.concatenate(positions)))
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
