"""The tests' subprocess helper: a timeout ends the whole process group (no orphaned training job survives it)."""

import subprocess
import sys
import time

import pytest

from . import processes


def test_a_timed_out_command_leaves_no_process_behind(tmp_path):
    pid_file = tmp_path / "child.pid"
    script = ("import subprocess, sys, time; child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); "
              f"open({str(pid_file)!r}, 'w').write(str(child.pid)); time.sleep(600)")
    with pytest.raises(subprocess.TimeoutExpired):
        processes.run([sys.executable, "-c", script], 5)
    child = int(pid_file.read_text())
    for _ in range(100):  # the kill is sent; the orphan is reaped by init a moment later
        if not alive(child):
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"the grandchild {child} outlived the timeout")


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead and waiting to be reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_finished_command_returns_its_output_and_code():
    result = processes.run([sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"], 60)
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")
