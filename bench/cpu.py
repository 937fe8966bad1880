"""CPU time for the benchmarks: what the timed child processes used, and what the whole machine did meanwhile.

- `children_cpu()`: user + system seconds of the finished child processes so far (getrusage(2),
  RUSAGE_CHILDREN); on a shared machine it varies far less than wall time.
- `machine_busy()`: CPU seconds all CPUs spent working since boot (/proc/stat: user, nice, system, irq and
  softirq; not idle, iowait, or steal, the time the hypervisor gave to other machines).  Its difference across a run also counts the kernel threads that work for the run but are
  nobody's child: writeback of the target file system, the loop device under it.  A run that keeps the machine
  busy for C CPU seconds takes at least C / N seconds of wall time on N CPUs, however its work is spread.
"""

from __future__ import annotations

import os
import resource


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine_busy() -> float:
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = ticks[:7]  # guest time is counted in user already
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")
