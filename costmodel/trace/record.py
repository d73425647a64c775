"""Record a program (and its whole process tree) through our own tracefs instance.

The raw ring-buffer pages of each CPU are copied to ``raw/cpuN.bin`` while the program runs (a
reader thread wakes every :data:`POLL_S`); at the end tracing stops, the rest is read, the
per-CPU loss counters are kept, and :func:`costmodel.trace.dataset.build` turns the pages into
the trace dataset. The dataset is written into a temporary sibling directory and renamed into
place, so an existing directory is never half overwritten.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from . import ingest, tracefs

POLL_S = 0.2
DEFAULT_BUFFER_KB = 131072


@dataclass
class Recording:
    raw_dir: Path
    page_size: int
    formats: list
    symbols: dict
    roots: list[int]
    root_tgids: dict[int, int]
    command: list[str] | None
    attached: str | None
    t_start_ns: int
    t_end_ns: int
    exit_status: int | None
    interrupted: bool
    stats: dict
    missing_events: list[str]
    buffer_kb: int
    header_page: str = ""
    notes: list[str] = field(default_factory=list)


class _Reader(threading.Thread):
    """Copies each CPU's raw pages to a file until told to stop, then reads what is left."""

    def __init__(self, session: tracefs.Session, raw_dir: Path):
        super().__init__(daemon=True)
        self.session = session
        self.raw_dir = raw_dir
        self.page_size = session.page_size()
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self.fds = {}
        self.outs = {}
        # pages are read into one page-aligned buffer and written with O_DIRECT where the file
        # system allows it: no page cache, so the tracer adds no folios to the batches it measures
        self.buf = mmap.mmap(-1, self.page_size)
        self.buf[:1] = b"\0"
        self.direct = True
        for cpu in session.cpus():
            self.fds[cpu] = os.open(session.raw_path(cpu), os.O_RDONLY | os.O_NONBLOCK)
            path = raw_dir / f"cpu{cpu}.bin"
            try:
                self.outs[cpu] = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o644)
            except OSError:
                self.direct = False
                self.outs[cpu] = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)

    def _pump(self, to_the_end: bool = False) -> int:
        """Copy the full pages each CPU has; with ``to_the_end`` also the partial ones (a read
        hands over the page being written, so reading partial pages while tracing would turn a
        trickle of events into a stream of nearly empty pages)."""
        got = 0
        for cpu, fd in self.fds.items():
            while True:
                try:
                    n = os.readv(fd, [self.buf])
                except OSError as e:
                    if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                        break
                    raise
                if not n:
                    break
                if n < self.page_size:
                    self.buf[n:] = bytes(self.page_size - n)
                used = int.from_bytes(self.buf[8:12], "little") & (ingest.RB_MISSED_STORED - 1)
                if used:
                    self._write(cpu)
                    got += 1
                if not to_the_end and used < self.page_size - 64 - 16:
                    break
        return got

    def _write(self, cpu: int) -> None:
        try:
            os.write(self.outs[cpu], self.buf)
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise
            # the file system refused O_DIRECT on write: go on through the page cache
            fl = fcntl.fcntl(self.outs[cpu], fcntl.F_GETFL)
            fcntl.fcntl(self.outs[cpu], fcntl.F_SETFL, fl & ~os.O_DIRECT)
            self.direct = False
            os.write(self.outs[cpu], self.buf)

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                self._pump()
                self.stop_event.wait(POLL_S)
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            self.error = e

    def finish(self) -> None:
        self.stop_event.set()
        self.join()
        try:
            while self._pump(to_the_end=True):
                pass
        finally:
            for fd in self.fds.values():
                os.close(fd)
            for f in self.outs.values():
                os.close(f)
        if self.error:
            raise self.error


def _tree_of(pid: int) -> tuple[list[int], dict[int, int]]:
    """The threads of ``pid`` and of its live descendants, with their thread-group ids."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(d.name))
    out, tgids, todo = [], {}, [pid]
    while todo:
        p = todo.pop()
        try:
            tids = [int(t.name) for t in Path(f"/proc/{p}/task").iterdir()]
        except OSError:
            continue
        for t in tids:
            out.append(t)
            tgids[t] = p
        todo.extend(children.get(p, []))
    return out, tgids


def _cgroup_procs(path: str) -> list[int]:
    p = Path(path)
    f = p / "cgroup.procs" if p.is_dir() else p
    try:
        return [int(x) for x in f.read_text().split()]
    except OSError as e:
        raise UserError(f"--cgroup {path}: cannot read {f} ({e.strerror}); give a cgroup directory") from None


def _stop(proc: subprocess.Popen, sig: int) -> int:
    """Send ``sig`` to the traced command and wait for it (killed after 10 s); its exit status."""
    proc.send_signal(sig)
    try:
        return proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def record(raw_dir: Path, command: list[str] | None = None, pid: int | None = None, cgroup: str | None = None,
           duration_s: float | None = None, buffer_kb: int = DEFAULT_BUFFER_KB) -> Recording:
    """Trace until COMMAND exits (or the attached tree, or ``duration_s``, or Ctrl-C); tracefs is
    left as it was found on every path."""
    if command:
        exe = shutil.which(command[0]) if "/" not in command[0] else (command[0] if os.access(command[0], os.X_OK) else None)
        if exe is None:
            raise UserError(f"COMMAND: {command[0]!r} is not an executable file or a program on PATH")
    if pid is not None and not Path(f"/proc/{pid}").exists():
        raise UserError(f"--pid {pid}: no such process")
    if os.geteuid() != 0:
        raise UserError("tracing needs root (tracefs and the page frame numbers); run it as root")
    interrupted = False
    status = None
    proc = None
    with tracefs.Session(buffer_kb) as s:
        page_size = s.page_size()
        reader = _Reader(s, raw_dir)
        roots: list[int] = []
        tgids: dict[int, int] = {}
        symbols = tracefs.kallsyms()
        if pid is not None:
            roots, tgids = _tree_of(pid)
        elif cgroup is not None:
            for p in _cgroup_procs(cgroup):
                r, g = _tree_of(p)
                roots += r
                tgids.update(g)
        reader.start()
        s.on()
        t0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        try:
            if command:
                try:
                    proc = subprocess.Popen(command)
                except OSError as e:
                    raise UserError(f"COMMAND {command[0]!r} could not be started: {e.strerror}") from None
                roots.append(proc.pid)
                tgids[proc.pid] = proc.pid
                try:
                    status = proc.wait(timeout=duration_s)
                except subprocess.TimeoutExpired:
                    _stop(proc, signal.SIGTERM)
                    status = 0   # stopped by us at the end of --duration: not a failure
            else:
                end = None if duration_s is None else time.monotonic() + duration_s
                while end is None or time.monotonic() < end:
                    if pid is not None and not Path(f"/proc/{pid}").exists():
                        break
                    time.sleep(0.1)
        except KeyboardInterrupt:
            interrupted = True
            if proc is not None and proc.poll() is None:
                status = _stop(proc, signal.SIGINT)
        finally:
            t1 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            s.off()
            reader.finish()
        if cgroup is not None:
            for p in _cgroup_procs(cgroup):
                if p not in tgids:
                    roots.append(p)
                    tgids[p] = p
        stats = {str(c): v for c, v in s.stats().items()}
        rec = Recording(raw_dir, page_size, [f.as_json() for f in s.formats.values()], symbols, sorted(set(roots)),
                        tgids, list(command) if command else None,
                        f"pid {pid}" if pid is not None else (f"cgroup {cgroup}" if cgroup else None),
                        t0, t1, status, interrupted, stats, list(s.missing), buffer_kb, s.header_page())
    if command and status not in (0, None) and not interrupted:
        raise UserError(f"COMMAND {' '.join(command)!r} exited with status {status}; nothing was written "
                        f"(fix the command, or trace a command that succeeds)")
    return rec
