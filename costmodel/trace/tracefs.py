"""The kernel's tracefs, used through an instance of our own that is removed on every exit path.

:class:`Session` finds tracefs (or mounts it on a private directory, and unmounts it again),
creates ``instances/costmodel-<pid>``, sets the clock (``mono``: one clock for every CPU, the same
as ``CLOCK_MONOTONIC`` in user space), the buffer size and the events, and on leaving (normally,
on an exception, on SIGINT/SIGTERM/SIGHUP) turns tracing off, removes the instance and unmounts
what it mounted: tracefs is left as it was found.

Nothing global is changed: events, clock, buffer and options are the instance's own.
"""

from __future__ import annotations

import bisect
import os
import re
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError

#: (subsystem, event, needed): events the tracer records; a needed one missing is an error
EVENTS: tuple[tuple[str, str, bool], ...] = (
    ("exceptions", "page_fault_user", True),
    ("exceptions", "page_fault_kernel", False),
    ("kmem", "mm_page_alloc", True),
    ("pagemap", "mm_lru_insertion", True),
    ("tlb", "tlb_flush", True),
    ("ipi", "ipi_send_cpu", False),
    ("ipi", "ipi_send_cpumask", False),
    ("workqueue", "workqueue_queue_work", False),
    ("workqueue", "workqueue_execute_start", False),
    ("workqueue", "workqueue_execute_end", False),
    ("task", "task_newtask", True),
    ("sched", "sched_process_exit", True),
    ("sched", "sched_process_exec", True),
    ("sched", "sched_switch", False),
)
#: in-kernel filters: only user-page-like allocations (__GFP_MOVABLE) are of interest
FILTERS = {("kmem", "mm_page_alloc"): "gfp_flags & 8"}
#: kernel functions whose addresses the events carry (work functions, IPI call sites)
SYMBOLS = ("lru_add_drain_per_cpu", "on_each_cpu_cond_mask", "smp_call_function_many_cond",
           "flush_tlb_func")
CLOCK = "mono"
INSTANCE_PREFIX = "costmodel-"


@dataclass
class Field:
    name: str
    offset: int
    size: int
    signed: bool


@dataclass
class EventFormat:
    system: str
    name: str
    id: int
    fields: dict[str, Field] = field(default_factory=dict)

    def as_json(self) -> dict:
        return {"system": self.system, "name": self.name, "id": self.id,
                "fields": {k: [f.offset, f.size, int(f.signed)] for k, f in self.fields.items()}}

    @classmethod
    def from_json(cls, d: dict) -> "EventFormat":
        return cls(d["system"], d["name"], int(d["id"]),
                   {k: Field(k, int(v[0]), int(v[1]), bool(v[2])) for k, v in d["fields"].items()})


_FIELD = re.compile(r"field:(?P<decl>[^;]+);\s*offset:(?P<off>\d+);\s*size:(?P<size>\d+);\s*signed:(?P<signed>-?\d+);")


def parse_format(system: str, name: str, text: str) -> EventFormat:
    """An event's ``format`` file: its id and each field's offset, size and signedness."""
    m = re.search(r"^ID:\s*(\d+)", text, re.M)
    if not m:
        raise UserError(f"tracefs event {system}:{name}: its format file has no ID line")
    fmt = EventFormat(system, name, int(m.group(1)))
    for fm in _FIELD.finditer(text):
        decl = fm.group("decl").strip()
        fname = re.sub(r"\[.*\]$", "", decl.split()[-1])
        fmt.fields[fname] = Field(fname, int(fm.group("off")), int(fm.group("size")), fm.group("signed") == "1")
    return fmt


#: a directory to use as tracefs instead of looking it up (tests point it at one that is not)
TRACEFS_ENV = "COSTMODEL_TRACEFS"


def find_mount() -> Path | None:
    """Where tracefs is mounted now (or ``$COSTMODEL_TRACEFS``), or None."""
    if os.environ.get(TRACEFS_ENV):
        return Path(os.environ[TRACEFS_ENV])
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) >= 3 and parts[2] == "tracefs":
            return Path(parts[1].replace("\\040", " "))
    return None


def kallsyms(names=SYMBOLS) -> dict[str, list[int]]:
    """``{name: [start, end)}`` of the given kernel functions from /proc/kallsyms (root reads
    the real addresses); missing ones are left out."""
    wanted = set(names)
    found: dict[str, int] = {}
    starts: list[int] = []
    try:
        with open("/proc/kallsyms") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3 or parts[1] not in "tTwW":
                    continue
                addr = int(parts[0], 16)
                starts.append(addr)
                if parts[2] in wanted and parts[2] not in found:
                    found[parts[2]] = addr
    except OSError:
        return {}
    starts = sorted(set(starts))
    out = {}
    for name, addr in found.items():
        if addr == 0:
            continue
        i = bisect.bisect_right(starts, addr)
        end = starts[i] if i < len(starts) else addr + 4096
        out[name] = [addr, end]
    return out


class _Interrupted(BaseException):
    pass


class Session:
    """A tracefs instance of our own: ``with Session(buffer_kb) as s: ...``."""

    def __init__(self, buffer_kb: int = 262144, events=EVENTS):
        self.buffer_kb = int(buffer_kb)
        self.events = events
        self.root: Path | None = None
        self.mounted: Path | None = None
        self.instance: Path | None = None
        self.formats: dict[tuple[str, str], EventFormat] = {}
        self.missing: list[str] = []
        self._old_handlers: dict = {}

    # -- setup and teardown ------------------------------------------------------------------
    def __enter__(self) -> "Session":
        self._install_handlers()
        try:
            self._setup()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _install_handlers(self) -> None:
        def handler(signum, frame):
            raise KeyboardInterrupt

        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            try:
                self._old_handlers[sig] = signal.signal(sig, handler)
            except ValueError:  # not the main thread: the caller handles signals
                pass

    def _restore_handlers(self) -> None:
        for sig, old in self._old_handlers.items():
            signal.signal(sig, old)
        self._old_handlers.clear()

    def _setup(self) -> None:
        if os.geteuid() != 0:
            raise UserError("tracing needs root (tracefs and the page frame numbers); run it as root")
        root = find_mount()
        if root is None:
            target = Path(tempfile.mkdtemp(prefix="costmodel-tracefs-"))
            r = subprocess.run(["mount", "-t", "tracefs", "nodev", str(target)], capture_output=True, text=True)
            if r.returncode != 0:
                target.rmdir()
                why = (r.stderr or r.stdout).strip().splitlines()
                raise UserError(f"tracefs is not available here ({why[-1] if why else 'mount failed'}); "
                                f"a kernel with CONFIG_TRACING and tracefs is needed")
            self.mounted = root = target
        if not (root / "instances").is_dir():
            raise UserError(f"tracefs is not available at {root} (no instances directory); mount it "
                            f"(mount -t tracefs nodev /sys/kernel/tracing) on a kernel with CONFIG_TRACING")
        self.root = root
        inst = root / "instances" / f"{INSTANCE_PREFIX}{os.getpid()}"
        try:
            inst.mkdir()
        except OSError as e:
            raise UserError(f"cannot create the tracefs instance {inst}: {e.strerror}") from None
        self.instance = inst
        self._write("trace_clock", CLOCK)
        self._write("buffer_size_kb", str(self.buffer_kb))
        for sysname, name, needed in self.events:
            d = root / "events" / sysname / name
            if not (d / "format").exists():
                if needed:
                    raise UserError(f"the kernel has no tracepoint {sysname}:{name}; the tracer needs it")
                self.missing.append(f"{sysname}:{name}")
                continue
            self.formats[(sysname, name)] = parse_format(sysname, name, (d / "format").read_text())
            flt = FILTERS.get((sysname, name))
            if flt:
                self._write(f"events/{sysname}/{name}/filter", flt)
            self._write(f"events/{sysname}/{name}/enable", "1")

    def _write(self, rel: str, value: str) -> None:
        assert self.instance is not None
        try:
            (self.instance / rel).write_text(value)
        except OSError as e:
            raise UserError(f"tracefs: cannot write {value!r} to {rel}: {e.strerror}") from None

    def close(self) -> None:
        """Tracing off, the instance removed, tracefs unmounted if we mounted it. Idempotent."""
        try:
            if self.instance is not None:
                try:
                    (self.instance / "tracing_on").write_text("0")
                except OSError:
                    pass
                for _ in range(50):
                    try:
                        self.instance.rmdir()
                        break
                    except OSError:   # busy a moment while a reader closes
                        time.sleep(0.02)
                self.instance = None
            if self.mounted is not None:
                subprocess.run(["umount", str(self.mounted)], capture_output=True)
                try:
                    self.mounted.rmdir()
                except OSError:
                    pass
                self.mounted = None
        finally:
            self._restore_handlers()

    # -- use ---------------------------------------------------------------------------------
    def on(self) -> None:
        self._write("tracing_on", "1")

    def off(self) -> None:
        self._write("tracing_on", "0")

    def cpus(self) -> list[int]:
        assert self.instance is not None
        return sorted(int(p.name[3:]) for p in (self.instance / "per_cpu").iterdir() if p.name[3:].isdigit())

    def raw_path(self, cpu: int) -> Path:
        assert self.instance is not None
        return self.instance / "per_cpu" / f"cpu{cpu}" / "trace_pipe_raw"

    def stats(self) -> dict[int, dict[str, float]]:
        """Per CPU: overrun, commit overrun and dropped events (any above 0: events were lost)."""
        out = {}
        for cpu in self.cpus():
            text = (self.instance / "per_cpu" / f"cpu{cpu}" / "stats").read_text()
            vals = {}
            for line in text.splitlines():
                k, _, v = line.partition(":")
                try:
                    vals[k.strip().replace(" ", "_")] = float(v.strip())
                except ValueError:
                    pass
            out[cpu] = {k: vals.get(k, 0.0) for k in ("entries", "overrun", "commit_overrun", "dropped_events")}
        return out

    def page_size(self) -> int:
        try:
            return int((self.instance / "buffer_subbuf_size_kb").read_text()) * 1024
        except (OSError, ValueError):
            return os.sysconf("SC_PAGE_SIZE")

    def header_page(self) -> str:
        return (self.root / "events" / "header_page").read_text()
