"""The raw ring-buffer decoder against pages packed here record by record (an independent writer of
the kernel's format: ``events/header_page`` and ``events/header_event``), and the counting rules on
hand-made event streams."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from costmodel.trace import count, derive, ingest
from costmodel.trace.tracefs import EventFormat, Field, parse_format

PAGE = 4096
ALLOC = EventFormat("kmem", "mm_page_alloc", 301, {
    "pfn": Field("pfn", 8, 8, False), "order": Field("order", 16, 4, False),
    "gfp_flags": Field("gfp_flags", 24, 8, False), "migratetype": Field("migratetype", 32, 4, True)})
FAULT = EventFormat("exceptions", "page_fault_user", 302, {
    "address": Field("address", 8, 8, False), "ip": Field("ip", 16, 8, False),
    "error_code": Field("error_code", 24, 8, False)})
MASK = EventFormat("ipi", "ipi_send_cpumask", 303, {
    "cpumask": Field("cpumask", 8, 4, False), "callsite": Field("callsite", 16, 8, False),
    "callback": Field("callback", 24, 8, False)})


def _payload(fmt: EventFormat, pid: int, **values) -> bytes:
    size = max(f.offset + f.size for f in fmt.fields.values())
    buf = bytearray(size)
    struct.pack_into("<HBBi", buf, 0, fmt.id, 0, 0, pid)
    for name, v in values.items():
        f = fmt.fields[name]
        struct.pack_into({8: "<Q", 4: "<I"}[f.size], buf, f.offset, v)
    return bytes(buf)


class PageWriter:
    """Records into pages as the kernel lays them out."""

    def __init__(self):
        self.pages: list[bytes] = []
        self.cur = bytearray()
        self.ts0 = None
        self.last = None

    def _header(self, type_len: int, delta: int) -> bytes:
        return struct.pack("<I", (delta << 5) | type_len)

    def event(self, t: int, payload: bytes, force_long: bool = False):
        if self.ts0 is None:
            self.ts0, self.last = t, t
        delta = t - self.last
        rec = b""
        if delta >= 1 << 27:   # time extend
            rec += self._header(30, delta & ((1 << 27) - 1)) + struct.pack("<I", delta >> 27)
            delta = 0
        payload = payload + bytes((-len(payload)) % 4)
        if force_long or len(payload) > 28 * 4:
            rec += self._header(0, delta) + struct.pack("<I", len(payload) + 4) + payload
        else:
            rec += self._header(len(payload) // 4, delta) + payload
        if len(self.cur) + len(rec) > PAGE - 16:
            self.flush()
            self.ts0, self.last = t, t
            return self.event(t, payload, force_long)
        self.cur += rec
        self.last = t

    def padding(self, nbytes: int):
        self.cur += self._header(29, 1) + struct.pack("<I", nbytes) + bytes(nbytes - 4)

    def flush(self):
        if self.ts0 is None:
            return
        hdr = struct.pack("<QQ", self.ts0, len(self.cur))
        self.pages.append(hdr + self.cur + bytes(PAGE - 16 - len(self.cur)))
        self.cur = bytearray()
        self.ts0 = None

    def data(self) -> bytes:
        self.flush()
        return b"".join(self.pages)


def test_decode_matches_what_was_packed():
    rng = np.random.default_rng(3)
    w = PageWriter()
    t = 1_000_000_000
    expected = []
    for i in range(3000):
        t += int(rng.choice([1, 50, 3000, 1 << 28]))   # some deltas need a time extend
        if i % 3 == 0:
            pfn, order, gfp = int(rng.integers(1, 1 << 30)), int(rng.integers(0, 10)), 0x140dca
            w.event(t, _payload(ALLOC, 1000 + i % 7, pfn=pfn, order=order, gfp_flags=gfp), force_long=i % 2 == 0)
            expected.append((t, 1000 + i % 7, ingest.K["mm_page_alloc"], pfn, order, gfp))
        elif i % 3 == 1:
            addr, err = int(rng.integers(1, 1 << 46)), int(rng.integers(0, 8))
            w.event(t, _payload(FAULT, 2000 + i % 5, address=addr, ip=addr + 1, error_code=err))
            expected.append((t, 2000 + i % 5, ingest.K["page_fault_user"], addr, err, 0))
        else:
            mask = int(rng.integers(0, 1 << 16))
            body = bytearray(_payload(MASK, 7, callsite=0xFFFFFFFF81451CD0))
            loc_off = len(body)
            body += struct.pack("<Q", mask)
            struct.pack_into("<I", body, 8, (8 << 16) | loc_off)
            w.event(t, bytes(body))
            expected.append((t, 7, ingest.K["ipi_send_cpumask"], bin(mask).count("1"), 0xFFFFFFFF81451CD0 - (1 << 64), 0))
        if i % 500 == 0:
            w.padding(24)   # a discarded record: no time, skipped
    ev, missed = ingest.decode_pages(w.data(), PAGE, [ALLOC, FAULT, MASK], cpu=1)
    assert missed == 0
    assert len(ev) == len(expected)
    got = list(zip(ev["t_ns"].tolist(), ev["pid"].tolist(), ev["kind"].tolist(), ev["f0"].tolist(),
                   ev["f1"].tolist(), ev["f2"].tolist()))
    assert got == expected
    assert set(ev["cpu"].tolist()) == {1}


def test_text_baseline_reads_the_same_event():
    line = ("              tt-25491   (  25491) [001] d....   418.574049: mm_page_alloc: page=000000008f218b06 "
            "pfn=0x1d6078 order=0 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_COMP")
    t, cpu, pid, kind, fields = ingest.decode_text_line(line)
    assert (t, cpu, pid, kind) == (418_574_049_000, 1, 25491, ingest.K["mm_page_alloc"])
    assert fields["pfn"] == "0x1d6078" and fields["order"] == "0"


def test_format_parser():
    text = """name: mm_page_alloc
ID: 301
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned long pfn;\toffset:8;\tsize:8;\tsigned:0;
\tfield:unsigned int order;\toffset:16;\tsize:4;\tsigned:0;
\tfield:char comm[16];\toffset:20;\tsize:16;\tsigned:0;
"""
    fmt = parse_format("kmem", "mm_page_alloc", text)
    assert fmt.id == 301 and fmt.fields["pfn"].offset == 8 and fmt.fields["order"].size == 4
    assert "comm" in fmt.fields


def _events(rows):
    cols = {k: [] for k in ingest.COLUMN_NAMES}
    for t, cpu, pid, kind, f0, f1, f2 in rows:
        for k, v in zip(ingest.COLUMN_NAMES, (t, cpu, pid, ingest.K[kind], f0, f1, f2)):
            cols[k].append(v)
    dt = {"t_ns": np.int64, "cpu": np.int16, "pid": np.int32, "kind": np.int8, "f0": np.int64, "f1": np.int64,
          "f2": np.int64}
    return ingest.Events({k: np.asarray(v, dtype=dt[k]) for k, v in cols.items()})


A = 0x7F0000001000
ZEROED = 0x140DCA
COPY = 0x140CCA


def test_counting_rules_on_a_hand_made_stream():
    """Install on CPU 0 (anonymous, inserted later), fork a child that exits, a write on CPU 1
    copies while the frame is still in CPU 0's batch: one batch-held copy; the same with the child
    alive: a copy with a live sharer; a write after the frame left the batch: no copy."""
    rows = [
        (10, 0, 100, "page_fault_user", A, 0x6, 0),
        (11, 0, 100, "mm_page_alloc", 500, 0, ZEROED),
        (15, 0, 300, "mm_page_alloc", 700, 0, ZEROED),      # another task's add on CPU 0
        (20, 0, 100, "task_newtask", 101, 0x11, 0),          # fork (SIGCHLD), no CLONE_VM
        (25, 0, 101, "sched_process_exit", 101, 1, 0),
        (30, 1, 100, "page_fault_user", A, 0x7, 0),          # WP fault on CPU 1
        (31, 1, 100, "mm_page_alloc", 600, 0, COPY),
        (32, 1, 100, "tlb_flush", 3, 1, 0),
        (40, 0, 100, "page_fault_user", A + 4096, 0x6, 0),   # second page
        (41, 0, 100, "mm_page_alloc", 501, 0, ZEROED),
        (45, 0, 100, "task_newtask", 102, 0x11, 0),          # child stays alive
        (50, 1, 100, "page_fault_user", A + 4096, 0x7, 0),
        (51, 1, 100, "mm_page_alloc", 601, 0, COPY),
        (52, 1, 100, "tlb_flush", 3, 1, 0),
        (60, 0, 100, "page_fault_user", A + 8192, 0x6, 0),   # third page, moved to the LRU before its write
        (61, 0, 100, "mm_page_alloc", 502, 0, ZEROED),
        (70, 0, 300, "mm_lru_insertion", 500, 0x33, 0),
        (70, 0, 300, "mm_lru_insertion", 501, 0x33, 0),
        (70, 0, 300, "mm_lru_insertion", 502, 0x33, 0),
        (70, 0, 300, "mm_lru_insertion", 700, 0x33, 0),
        (80, 1, 100, "page_fault_user", A + 8192, 0x7, 0),   # reused: no allocation
        (90, 1, 300, "mm_lru_insertion", 600, 0x33, 0),
        (90, 1, 300, "mm_lru_insertion", 601, 0x33, 0),
        (95, 0, 102, "sched_process_exit", 102, 1, 0),
    ]
    c = count.count(_events(rows), {100}, {}, 31, 0, 100)
    wp = c.wp.sort_values("t_ns").reset_index(drop=True)
    assert list(wp["copied"]) == [True, True, False]
    assert list(wp["held"]) == [True, True, False]
    assert list(wp["live_sharer"]) == [False, True, False]
    assert list(wp["batch_held_copy"]) == [True, False, False]
    assert list(wp["same_cpu"]) == [0, 0, 0]
    assert list(wp["gap_ns"]) == [19, 9, 19]
    # adds to CPU 0's batch between install and write: the other task's, in the first gap only
    assert list(wp["adds_in_gap"]) == [1, 0, 0]
    assert list(c.moves["folios"]) == [4, 2] and list(c.moves["cause"]) == ["local_drain", "local_drain"]
    # a held page written on another CPU drained that CPU's (empty) batch by the kernel's rule
    assert list(wp["in_fault_drain"]) == [True, True, False]


def _hand_trace():
    """A hand-made dataset: CPU 0's batch (size 4), four model pages, and its moves.

    page a: installed t=0, position 0, WP fault at t=100; a local drain at t=40 takes 3 folios
            -> waits 40 ns, ended by a local drain, 2 adds behind it
    page b: installed t=50, position 0, WP fault at t=60 (its own in-fault drain at t=60 is not
            in its gap) -> waits 10 ns, ended by the fault, 0 adds
    page c: installed t=200, position 1, WP fault at t=500; the batch fills at t=300 (4 folios)
            -> waits 100 ns, ended by filling, 2 adds behind it
    page d: installed t=310, position 0, WP fault at t=400; a drain-all at t=350 takes 1 folio
            -> waits 40 ns, ended by a drain-all, 0 adds
    """
    import pandas as pd

    from costmodel.trace.dataset import Trace

    wp = pd.DataFrame({"t_ns": [100, 60, 500, 400], "install_cpu": [0, 0, 0, 0], "gap_ns": [100, 10, 300, 90],
                       "page": ["anon"] * 4, "batch_position": [0, 0, 1, 0], "adds_in_gap": [2, 0, 3, 0],
                       "held": [False, True, False, False]})
    moves = pd.DataFrame({"t_ns": [40, 60, 300, 350], "cpu": [0, 0, 0, 0], "pid": [1, 1, 1, 1],
                          "folios": [3, 1, 4, 1], "cause": ["local_drain", "local_drain", "fill", "drain_all"]})
    meta = {"batch_size": 4, "recording": {"t_start_ns": 0, "t_end_ns": 10**9},
            "cpus": {"0": {"adds": 100, "large_adds": 0, "moves_local_drain": 2, "moves_drain_all": 1,
                           "moves_fill": 1}}}
    return Trace(None, meta, wp, moves, pd.DataFrame())


def test_residency_rates_count_the_waits_by_hand():
    """The model's batch rates are per second a page waited in its batch: from the hand count in
    _hand_trace, 190 ns of waiting, 1 local drain, 1 drain-all, 4 adds behind the pages; the
    wall-time rates (per second of the 1 s recording) are kept beside them."""
    tr = _hand_trace()
    w = derive.residency_windows(tr)
    assert w["residency_ns"].tolist() == [40, 10, 100, 40]
    assert w["ended_by"].tolist() == ["local_drain", "fault", "fill", "drain_all"]
    assert w["adds_in_wait"].tolist() == [2, 0, 2, 0]
    r = derive.per_cpu_rates(tr).iloc[0]
    assert r["explicit_drains_per_s"] == pytest.approx(1 / 190e-9)
    assert r["drain_all_per_s"] == pytest.approx(1 / 190e-9)
    assert r["batch_adds_per_s"] == pytest.approx(4 / 190e-9)
    assert r["explicit_drains_per_s_wall"] == pytest.approx(2.0)
    assert r["batch_adds_per_s_wall"] == pytest.approx(100.0)
    assert r["explicit_drains_per_s_low"] <= r["explicit_drains_per_s"] <= r["explicit_drains_per_s_high"]


def test_cold_faults_by_hand():
    """A task's first WP fault and its first on another CPU are cold; the rest follow a fault."""
    import pandas as pd

    wp = pd.DataFrame({"t_ns": [5, 1, 2, 3, 4, 6], "pid": [7, 7, 7, 7, 8, 8], "cpu": [0, 0, 0, 1, 1, 1]})
    # pid 7 in time order: t1 cpu0 (first), t2 cpu0, t3 cpu1 (moved), t5 cpu0 (moved); pid 8: t4 (first), t6
    assert derive.cold_faults(wp).tolist() == [True, True, False, True, True, False]
