"""How many cores this process may use: its allocation, not the node's.

`os.cpu_count()` counts the whole machine; under SLURM, a container or `taskset` the process is
given fewer. Every default that scales with cores (render workers, pack workers, DataLoader workers,
the benchmarks) asks `available_cores()`.
"""

from __future__ import annotations

import os

SLURM_CPUS_ENV = "SLURM_CPUS_PER_TASK"


def available_cores() -> int:
    """The cores this process may run on: its CPU affinity, capped by SLURM's `SLURM_CPUS_PER_TASK` where set; at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    slurm = os.environ.get(SLURM_CPUS_ENV, "")
    if slurm.isdigit() and int(slurm) > 0:
        cores = min(cores, int(slurm))
    return max(1, cores)
