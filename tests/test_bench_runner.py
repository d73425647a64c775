"""Ctrl-C while a probe is running: the probe and its own children are killed and reaped."""

import os
import signal
import stat
import threading
import time

import pytest

from costmodel.bench.runner import _run_binary


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_interrupt_mid_output_kills_and_reaps_the_probe_group(tmp_path):
    pids = tmp_path / "pids"
    fake = tmp_path / "fake_probe"
    fake.write_text(
        "#!/bin/sh\n"
        "sleep 60 &\n"                      # a child of the probe, in its process group
        f"echo $$ $! > {pids}\n"
        "echo 'plan\tsamples=100'\n"
        "for i in 1 2 3; do echo 'sample\t1'; done\n"
        "sleep 60\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)

    def interrupt_when_started():
        for _ in range(200):
            if pids.exists() and pids.read_text().strip():
                break
            time.sleep(0.02)
        time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_when_started, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        _run_binary(fake, [], "fake", timeout_s=30, progress=False)
    probe_pid, child_pid = (int(x) for x in pids.read_text().split())
    deadline = time.time() + 5
    while (_alive(probe_pid) or _alive(child_pid)) and time.time() < deadline:
        time.sleep(0.05)
    assert not _alive(probe_pid), "the probe survived Ctrl-C"
    assert not _alive(child_pid), "the probe's child survived Ctrl-C"
