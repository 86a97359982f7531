"""Subprocesses of the tests, each in its own process group: a timeout ends the whole group, never leaving a
child behind (Snakemake's jobs, SLURM daemons' clients, training processes), and fails the test as a hang.

Timeouts here are hang guards, generous on purpose; no test asserts how long anything took (speed is measured in
benchmarks/).
"""

from __future__ import annotations

import os
import signal
import subprocess


def run(command: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess:
    """``subprocess.run(command, capture_output=True, text=True, ...)`` whose timeout kills the whole process group."""
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                          **kwargs) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            end_group(process)
            stdout, stderr = process.communicate()
            raise subprocess.TimeoutExpired(command, timeout, stdout, stderr) from None
        except BaseException:  # KeyboardInterrupt, a failing fixture: leave nothing running
            end_group(process)
            raise
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def end_group(process: subprocess.Popen) -> None:
    """SIGKILL ``process`` and every process of its group (it leads the group: ``start_new_session=True``)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()
