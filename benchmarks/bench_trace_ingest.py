"""Speed of the trace ingest, and the tracer's overhead on a traced program.

1. Ingest: records a real program (Debian's stress-ng: threads, forks, clones) through the
   project's tracefs instance into a ring buffer large enough to hold it all, then reads the
   same buffer twice: as formatted text (the ``trace`` file, which does not consume it) and as
   raw pages (``trace_pipe_raw``). It times the vectorised decoder of the raw pages and a
   straightforward line-by-line parser of the text (:func:`costmodel.trace.ingest.decode_text_line`)
   in the same run, checks that both read the same number of events, and prints events per
   second. Target: at least 10^6 events/s for the decoder.
2. Overhead: the same stress-ng run, a fixed number of operations, timed without tracing and
   under ``costmodel trace`` (three runs each, alternating; medians).

Needs root and tracefs; says so and exits 0 where they are missing.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from costmodel.trace import ingest, tracefs

WORKLOAD = ["stress-ng", "--pthread", "2", "--fork", "1", "--clone", "1", "--timeout", "4s", "--quiet"]
FIXED_WORK = ["stress-ng", "--pthread", "1", "--pthread-ops", "3000", "--fork", "1", "--fork-ops", "3000",
              "--quiet"]


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def ingest_speed() -> None:
    with tracefs.Session(buffer_kb=512 * 1024) as s:
        s.on()
        subprocess.run(WORKLOAD, check=True)
        s.off()
        work = Path(tempfile.mkdtemp(prefix="bench-trace-"))
        try:
            text = work / "trace.txt"
            with open(s.instance / "trace") as src, open(text, "w") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            page = s.page_size()
            raw = work / "raw"
            raw.mkdir()
            for cpu in s.cpus():
                fd = os.open(s.raw_path(cpu), os.O_RDONLY | os.O_NONBLOCK)
                with open(raw / f"cpu{cpu}.bin", "wb") as out:
                    while True:
                        try:
                            b = os.read(fd, page)
                        except BlockingIOError:
                            break
                        if not b:
                            break
                        out.write(b + bytes(page - len(b)))
                os.close(fd)
            stats = s.stats()
            formats = list(s.formats.values())
            raw_bytes = sum(p.stat().st_size for p in raw.iterdir())
            t0 = time.perf_counter()
            ev, _ = ingest.read_raw_dir(raw, page, formats)
            raw_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            n_text = 0
            with open(text) as f:
                for line in f:
                    if ingest.decode_text_line(line) is not None:
                        n_text += 1
            text_s = time.perf_counter() - t0
            text_bytes = text.stat().st_size
        finally:
            shutil.rmtree(work, ignore_errors=True)
    lost = sum(v["overrun"] + v["dropped_events"] for v in stats.values())
    print(f"ingest of a recorded {' '.join(WORKLOAD)} ({len(ev):,} events, {raw_bytes / 2**20:.0f} MiB of raw pages, "
          f"{text_bytes / 2**20:.0f} MiB as text; lost {lost:.0f})")
    print(f"  vectorised raw-page decoder : {len(ev) / raw_s:12,.0f} events/s ({raw_s:.2f} s)")
    print(f"  line-by-line text parser    : {n_text / text_s:12,.0f} events/s ({text_s:.2f} s)")
    print(f"  ratio {len(ev) / raw_s / (n_text / text_s):.1f}x; both read {'the same' if n_text == len(ev) else 'DIFFERENT'} "
          f"number of events ({len(ev):,} / {n_text:,}); target >= 1,000,000 events/s: "
          f"{'met' if len(ev) / raw_s >= 1e6 else 'MISSED'}")


def overhead() -> None:
    plain, traced = [], []
    work = Path(tempfile.mkdtemp(prefix="bench-trace-"))
    try:
        for i in range(3):
            t0 = time.perf_counter()
            subprocess.run(FIXED_WORK, check=True)
            plain.append(time.perf_counter() - t0)
            out = work / f"t{i}"
            t0 = time.perf_counter()
            r = subprocess.run([sys.executable, "-m", "costmodel.cli", "trace", "-o", str(out), "--no-raw", "--",
                                *FIXED_WORK], capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit(r.stderr)
            import json

            meta = json.loads((out / "trace.json").read_text())
            traced.append(meta["recording"]["duration_s"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    p, t = statistics.median(plain), statistics.median(traced)
    print(f"overhead on {' '.join(FIXED_WORK)} (median of 3, alternating):")
    print(f"  without tracing {p:.2f} s, traced {t:.2f} s (the command's run time while recorded): "
          f"+{(t / p - 1) * 100:.0f} %")


def main() -> None:
    if os.geteuid() != 0:
        print("bench_trace_ingest: needs root (tracefs); not measured")
        return
    if not shutil.which("stress-ng"):
        print("bench_trace_ingest: stress-ng is not installed (apt-get install stress-ng); not measured")
        return
    print(f"machine: {_cpu()}, {os.cpu_count()} CPUs, Linux {platform.release()}")
    ingest_speed()
    overhead()


if __name__ == "__main__":
    main()
