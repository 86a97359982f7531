"""The workflow on a real single-node SLURM (Debian's slurm-wlm): munged, slurmctld and slurmd started by
this test on loopback, the smoke config's Table 1 submitted through profiles/slurm (with
CPU-only overrides), every job checked to have gone through sbatch, then the daemons stopped by pid."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests import processes

ROOT = Path(__file__).resolve().parents[1]
DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo")
MISSING = [name for name in DAEMONS if shutil.which(name) is None and not Path(f"/usr/sbin/{name}").exists()]
BIN = Path(sys.executable).parent
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bool(MISSING), reason=f"SLURM is not installed here (missing {', '.join(MISSING)}; "
                                               "`apt-get install slurm-wlm munge` as .ci/run does)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="starting munged and slurmd needs root"),
    pytest.mark.skipif(not (BIN / "snakemake").exists(), reason="snakemake is not installed beside this Python"),
]
GPU_RULES = ("build_extensions", "init_pointe", "train", "render", "evaluate_run", "reference_images", "fid")


def executable(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def slurm_conf(folder: Path, host: str) -> str:
    """One node, one CPU partition, no accounting, loopback only, every file inside ``folder``."""
    return "\n".join([
        "ClusterName=segmentdreamer-test", f"SlurmctldHost={host}(127.0.0.1)", "SlurmUser=root", "SlurmdUser=root",
        f"AuthInfo=socket={folder / 'munge.socket'}", "AuthType=auth/munge", "CredType=cred/munge",
        "SlurmctldPort=16817", "SlurmdPort=16818", f"StateSaveLocation={folder / 'state'}",
        f"SlurmdSpoolDir={folder / 'spool'}", f"SlurmctldPidFile={folder / 'slurmctld.pid'}",
        f"SlurmdPidFile={folder / 'slurmd.pid'}", f"SlurmctldLogFile={folder / 'slurmctld.log'}",
        f"SlurmdLogFile={folder / 'slurmd.log'}", "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none", "AccountingStorageType=accounting_storage/none",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_CPU", "MpiDefault=none", "ReturnToService=2",
        "SchedulerType=sched/backfill", "MinJobAge=600", "InactiveLimit=0", "KillWait=5",
        f"NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory=4000 State=UNKNOWN",
        f"PartitionName=cpu Nodes={host} Default=YES MaxTime=INFINITE State=UP", "",
    ])


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """Start munged, slurmctld and slurmd (foreground processes we own); stop them by pid afterwards."""
    folder = tmp_path_factory.mktemp("slurm")
    for sub in ("state", "spool"):
        (folder / sub).mkdir()
    host = socket.gethostname().split(".")[0]
    (folder / "slurm.conf").write_text(slurm_conf(folder, host))
    # Job steps (srun inside a batch job) look for the default path, not SLURM_CONF: put ours there for the
    # test's lifetime, never over an existing file.
    system_conf = Path("/etc/slurm/slurm.conf")
    if system_conf.exists():
        pytest.skip(f"{system_conf} exists: this machine has its own SLURM, which this test will not replace")
    system_conf.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(folder / "slurm.conf", system_conf)
    key = folder / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    env = {**os.environ, "SLURM_CONF": str(folder / "slurm.conf")}
    started = [subprocess.Popen([executable("munged"), "--foreground", "--force", f"--socket={folder / 'munge.socket'}",
                                 f"--key-file={key}", f"--pid-file={folder / 'munged.pid'}", f"--log-file={folder / 'munged.log'}",
                                 f"--seed-file={folder / 'munged.seed'}"], env=env)]
    time.sleep(1)
    started.append(subprocess.Popen([executable("slurmctld"), "-D", "-i"], env=env))
    time.sleep(2)
    started.append(subprocess.Popen([executable("slurmd"), "-D"], env=env))
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            state = subprocess.run([executable("sinfo"), "-h", "-o", "%T"], env=env, capture_output=True, text=True).stdout
            if state.strip() in ("idle", "mixed"):
                break
            time.sleep(1)
        else:
            pytest.fail(f"the test SLURM never became idle: {(folder / 'slurmctld.log').read_text()[-2000:]}")
        yield env, folder
    finally:
        system_conf.unlink(missing_ok=True)
        for process in reversed(started):
            process.send_signal(signal.SIGTERM)
        for process in reversed(started):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def cpu_only_profile(folder: Path) -> Path:
    """profiles/slurm with this machine's overrides: no account, the cpu partition, no GPUs."""
    profile = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())
    profile.update({"jobs": 2, "slurm-no-account": True, "slurm-status-command": "squeue", "latency-wait": 10, "retries": 0,
                    "slurm-init-seconds-before-status-checks": 1, "seconds-between-status-checks": 2, "slurm-logdir": str(folder / "slurm-logs"),
                    "slurm-keep-successful-logs": True})
    profile["default-resources"] = {"slurm_partition": "cpu", "runtime": 30, "mem_mb": 1000, "cpus_per_task": 1}
    profile["set-resources"] = {rule: {"gpu": 0, "slurm_partition": "cpu", "mem_mb": 1000, "cpus_per_task": 1}
                                for rule in GPU_RULES}
    target = folder / "profile"
    target.mkdir()
    (target / "config.yaml").write_text(yaml.safe_dump(profile))
    return target


def test_smoke_table1_runs_through_sbatch(slurm, tmp_path):
    env, folder = slurm
    prompts = tmp_path / "one.tsv"
    prompts.write_text("prompt_id\tprompt\tinit_prompt\tseed\nfox\tA DSLR photo of a \"fox\"; echo $HOME\ta fox.\t0\n")
    results = tmp_path / "results"
    env = {**env, "PATH": f"{BIN}{os.pathsep}{env['PATH']}"}
    start = time.perf_counter()
    target = results / "table1" / "one.csv"  # only the new set's Table 1 (the smoke set stays in the config)
    run = processes.run([str(BIN / "snakemake"), str(target), "--workflow-profile", str(cpu_only_profile(folder)),
                         "--configfile", "workflow/smoke.yaml", "--config", f'pathvars={{"results": "{results}"}}',
                         f'prompt_sets={{"one": "{prompts}"}}', 'table1={"variants": ["sctd"]}'], 1800, cwd=ROOT, env=env)
    wall = time.perf_counter() - start  # printed, not asserted
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-5000:]
    submissions = dict(re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", output))
    local = {"table1_manifest", "run_config"}  # localrules: they write small JSON/YAML files on the submit host
    jobs = [line for line in output.splitlines() if line.startswith(("rule ", "localrule "))]
    remote = [line for line in jobs if line.split()[1].rstrip(":") not in local]
    assert len(submissions) == len(remote) >= 10, (submissions, remote)  # every non-local job went through sbatch
    assert len(set(submissions.values())) == len(submissions)  # each with its own SLURM job id
    for suffix in ("csv", "md", "tex"):
        assert (results / "table1" / f"one.{suffix}").stat().st_size > 0
    print(f"SLURM smoke: {len(submissions)} jobs submitted with sbatch, {wall:.0f} s wall")
