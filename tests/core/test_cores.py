"""Cores come from the process's allocation: its CPU affinity and SLURM's cpus-per-task, not the node's count."""

import os
import subprocess
import sys

from iebench.cores import SLURM_CPUS_ENV, available_cores


def test_cores_are_the_affinity_of_the_process(monkeypatch):
    monkeypatch.delenv(SLURM_CPUS_ENV, raising=False)
    assert available_cores() == len(os.sched_getaffinity(0))


def test_a_narrower_affinity_is_honoured():
    one = min(os.sched_getaffinity(0))
    code = f"import os; os.sched_setaffinity(0, {{{one}}}); from iebench.cores import available_cores; print(available_cores())"
    env = {k: v for k, v in os.environ.items() if k != SLURM_CPUS_ENV}
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout.strip() == "1"


def test_slurm_cpus_per_task_caps_the_count(monkeypatch):
    monkeypatch.setenv(SLURM_CPUS_ENV, "1")
    assert available_cores() == 1
    monkeypatch.setenv(SLURM_CPUS_ENV, str(10_000))  # more than the process may use: the affinity wins
    assert available_cores() == len(os.sched_getaffinity(0))
    monkeypatch.setenv(SLURM_CPUS_ENV, "")  # set but empty, as some launchers leave it
    assert available_cores() == len(os.sched_getaffinity(0))
