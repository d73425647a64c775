"""Facts about the machine a dataset was measured on: an allowlist, never the environment.

Each fact comes from one named file or call below; nothing is copied wholesale (no environment
variables, no command lines, no host names).
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import subprocess
from pathlib import Path

from .. import __version__
from . import compile as _compile

HYPERVISOR_NAMES = {
    "KVMKVMKVM": "KVM",
    "Microsoft Hv": "Hyper-V",
    "VMwareVMware": "VMware",
    "XenVMMXenVMM": "Xen",
    "TCGTCGTCGTCG": "QEMU TCG",
    "ACRNACRNACRN": "ACRN",
    " lrpepyh  vr": "Parallels",
    "bhyve bhyve ": "bhyve",
    "QNXQVMBSQG": "QNX",
}

#: The provenance keys every dataset carries (read_measurements checks them).
REQUIRED_KEYS = (
    "format", "dataset_id", "cpu_model", "cpu_vendor", "cpu_family", "cpu_model_number", "online_cpus",
    "smt_control", "threads_per_core", "hypervisor", "kernel_release", "thp_enabled", "page_size_bytes",
    "batch_size_found", "harness_version", "date", "quick", "probes",
)


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _bracketed(text: str | None) -> str | None:
    if text is None:
        return None
    m = re.search(r"\[([^\]]+)\]", text)
    return m.group(1) if m else text


def _cpu_count(ranges: str | None) -> int | None:
    if not ranges:
        return None
    total = 0
    for part in ranges.split(","):
        lo, _, hi = part.partition("-")
        total += (int(hi) - int(lo) + 1) if hi else 1
    return total


def _cpuinfo() -> dict:
    text = _read("/proc/cpuinfo") or ""
    first = text.split("\n\n")[0]
    info: dict[str, str] = {}
    for line in first.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            info[key.strip()] = value.strip()

    def num(key: str) -> int | None:
        try:
            return int(info[key])
        except (KeyError, ValueError):
            return None

    return {
        "cpu_model": info.get("model name") or info.get("cpu model") or platform.processor() or "unknown",
        "cpu_vendor": info.get("vendor_id") or info.get("CPU implementer") or "unknown",
        "cpu_family": num("cpu family"),
        "cpu_model_number": num("model"),
        "cpu_stepping": num("stepping"),
        "cpu_flag_hypervisor": "hypervisor" in info.get("flags", "").split(),
    }


def hypervisor(vendor_from_cpuid: str | None, flag: bool) -> str:
    """A short hypervisor name from the CPUID vendor string the harness read."""
    if vendor_from_cpuid and vendor_from_cpuid not in ("none", "unknown"):
        return HYPERVISOR_NAMES.get(vendor_from_cpuid, vendor_from_cpuid.strip())
    if flag:
        return "unknown hypervisor"
    return "none"


def harness_version() -> str:
    """`git describe --always` of the checkout holding the probes, with ``-dirty`` when the code
    (the package directory) has uncommitted changes; else the package version. Data written into
    the checkout (a measurement directory being replaced) does not count as dirty code."""
    here = _compile.probe_dir()
    package = here.parent.parent  # costmodel/
    try:
        out = subprocess.run(["git", "describe", "--always"], cwd=here, capture_output=True, text=True, timeout=30)
        if out.returncode == 0 and out.stdout.strip():
            changed = subprocess.run(["git", "status", "--porcelain", "--", str(package)], cwd=here,
                                     capture_output=True, text=True, timeout=30)
            dirty = changed.returncode == 0 and bool(changed.stdout.strip())
            return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return f"costmodel {__version__}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def dataset_id(facts: dict) -> str:
    """A directory name from the facts, e.g. kvm-amd-epyc-f26m2-2cpu-linux6.18: the CPU family and
    model are part of it, since guests name different CPU generations alike ("AMD EPYC"). Sets
    recorded before keep the id they were written with (kvm-intel-xeon-2cpu-linux6.18)."""
    model = facts.get("cpu_model") or "cpu"
    model = re.sub(r"\((r|tm)\)", "", model, flags=re.I)
    model = re.sub(r"\b(processor|cpu|core|\d+-core)\b", " ", model, flags=re.I)
    model = re.sub(r"@.*$", "", model)
    words = _slug(model).split("-")[:3]
    hv = facts.get("hypervisor") or "none"
    prefix = "bare" if hv == "none" else _slug(hv)
    release = facts.get("kernel_release") or "0.0"
    m = re.match(r"(\d+\.\d+)", release)
    kernel = m.group(1) if m else _slug(release)
    family, number = facts.get("cpu_family"), facts.get("cpu_model_number")
    generation = f"-f{family}m{number}" if family is not None and number is not None else ""
    return f"{prefix}-{'-'.join(w for w in words if w)}{generation}-{facts.get('online_cpus')}cpu-linux{kernel}"


def machine_date() -> str:
    """Now, in UTC to the second, as ISO 8601."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def machine_facts(hypervisor_vendor: str | None = None) -> dict:
    """The allowlisted facts of this machine (without the per-run entries the runner adds)."""
    cpu = _cpuinfo()
    online = _cpu_count(_read("/sys/devices/system/cpu/online")) or os.cpu_count()
    siblings = _read("/sys/devices/system/cpu/cpu0/topology/thread_siblings_list")
    try:
        page_size = os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        page_size = None
    pmd = _read("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size")
    compiler = None
    try:
        cc = _compile.find_compiler()
        compiler = _compile.compiler_version(cc)
    except Exception:  # noqa: BLE001 - no compiler is a fact, not an error here
        compiler = "none"
    facts = {
        "format": 1,
        "cpu_model": cpu["cpu_model"],
        "cpu_vendor": cpu["cpu_vendor"],
        "cpu_family": cpu["cpu_family"],
        "cpu_model_number": cpu["cpu_model_number"],
        "cpu_stepping": cpu["cpu_stepping"],
        "architecture": platform.machine(),
        "online_cpus": online,
        "smt_control": _read("/sys/devices/system/cpu/smt/control") or "unknown",
        "threads_per_core": _cpu_count(siblings) if siblings else None,
        "hypervisor": hypervisor(hypervisor_vendor, cpu["cpu_flag_hypervisor"]),
        "kernel_release": platform.release(),
        "clocksource": _read("/sys/devices/system/clocksource/clocksource0/current_clocksource") or "unknown",
        "thp_enabled": _bracketed(_read("/sys/kernel/mm/transparent_hugepage/enabled")) or "unavailable",
        "thp_defrag": _bracketed(_read("/sys/kernel/mm/transparent_hugepage/defrag")) or "unavailable",
        "thp_pmd_size_bytes": int(pmd) if pmd and pmd.isdigit() else None,
        "lru_gen_enabled": _read("/sys/kernel/mm/lru_gen/enabled") or "absent",
        "page_size_bytes": page_size,
        "memory_total_kib": _meminfo_total(),
        "run_as_root": os.geteuid() == 0,
        "compiler": compiler,
        "batch_size_found": None,
        "harness_version": harness_version(),
        "probe_sources_sha256": _compile.sources_hash(),
        "costmodel_version": __version__,
        "date": machine_date(),
    }
    facts["dataset_id"] = dataset_id(facts)
    return facts


def _meminfo_total() -> int | None:
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            try:
                return int(line.split()[1])
            except (IndexError, ValueError):
                return None
    return None
