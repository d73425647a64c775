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


def _sample_writer(tmp_path, samples: int):
    fake = tmp_path / "fake_probe"
    fake.write_text(
        "#!/bin/sh\n"
        f"echo 'plan\tsamples={samples}'\n"
        f"i=0; while [ $i -lt {samples} ]; do echo 'sample\tx=1'; i=$((i+1)); done\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    return fake


def test_progress_off_a_terminal_is_plain_lines(tmp_path, capsys, monkeypatch):
    from costmodel.bench import runner

    monkeypatch.setattr(runner._Progress, "LINE_EVERY_S", 0.0)   # a line at every update
    text, rc, _ = _run_binary(_sample_writer(tmp_path, 600), [], "fake", timeout_s=30, progress=True)
    assert rc == 0 and text.count("sample\t") == 600
    err = capsys.readouterr().err
    assert "\r" not in err and "\x1b" not in err
    lines = err.strip().splitlines()
    assert lines[0].startswith("fake: started") and lines[-1] == lines[-1].strip()
    assert any("running, 256/600 samples" in line for line in lines)
    assert "fake: finished, 600/600 samples" in lines[-1]


def test_no_progress_prints_nothing(tmp_path, capsys):
    _run_binary(_sample_writer(tmp_path, 10), [], "fake", timeout_s=30, progress=False)
    assert capsys.readouterr().err == ""


def test_progress_on_a_terminal_is_a_bar():
    import io

    from costmodel.bench.runner import _Progress

    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    bar = _Progress("fake", enabled=True, stream=stream)
    bar.set_total(10)
    bar.update(10)
    bar.close()
    assert "\r" in stream.getvalue() and "10/10" in stream.getvalue()
