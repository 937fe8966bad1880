"""Extract: rescue's reader + extractor against `tar --extract`, and peak RSS reading 1,000,000 members.

1. Builds the synthetic tree (bench.tree, `--scale`; 1.0 is ~100k files, ~1.6 GB) and archives it once with
   GNU tar (`--format=posix --sparse -b 512`: 256 KiB records) on tmpfs, so reading costs no disk.
2. `--runs` times each, alternating: `tar -xpf ARCHIVE -b 512` and rescue (a child process with the real
   interpreter, sys.executable: ArchiveReader over the archive file, Extractor), each into a fresh ext4 (a
   loop-mounted image on tmpfs, bench.tree.scratch; PERF-NOTES: ext4 is slow right after a large tree was
   deleted).  Wall clock, each including a final sync.  `speed` is GNU tar's median time / ours (>= 1.0: at
   least as fast); `speed_pairs_median` is the median of the ratios of each alternating pair of runs.
   CPU time (user + system, getrusage of the children) is reported beside wall time: on a shared machine it
   varies far less, and `cpu_speed` is GNU tar's median CPU time / ours.
   rescue runs without SHA-256 here (GNU tar checks nothing); `rescue_sha256_s` is one more run with every
   file's SHA-256 computed, as a restore with a catalog does.  With more than one usable CPU each round also
   runs the parallel extractor (rescue.archive.parallel_extract, jobs = usable CPUs) with SHA-256, as a
   restore does: `parallel.speed_with_sha256`.  The 1-minute load average before each round is reported, and
   the whole machine's CPU time over the GNU tar and parallel runs, with the speed it allows on this machine's
   CPUs (`parallel.speed_bound_by_machine_cpu`, bench.cpu).
3. Streams `--rss-members` header-only members through a pipe into a child that reads them with ArchiveReader
   and reports its peak RSS (ru_maxrss).

`python -m bench --only extract` or `python -m bench.extract [--scale S] [--runs N]`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import List, Optional, Tuple

from bench import cpu, guard, tree
from rescue.archive import parallel_extract
from rescue.archive import tarformat as tf

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_CHILD_EXTRACT = """
import os, sys, time
from rescue.archive.parallel_extract import open_extractor
from rescue.archive.reader import ArchiveReader
from rescue.tape.stream import StreamTape
archive, target, checksums, jobs = sys.argv[1], sys.argv[2], sys.argv[3] == "1", int(sys.argv[4])
t0 = time.perf_counter()
with open_extractor(target, checksums=checksums, jobs=jobs) as x:
    for entry in ArchiveReader(StreamTape(archive, record_size=256 * 1024)):
        x.extract(entry)
fd = os.open(target, os.O_RDONLY)
os.sync()
os.close(fd)
import resource
rss = max(resource.getrusage(w).ru_maxrss for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
print(time.perf_counter() - t0, x.files, len(x.warnings), rss)
"""

_CHILD_READ = """
import resource
from rescue.archive.reader import ArchiveReader
from rescue.tape.stream import StreamTape
n = 0
for entry in ArchiveReader(StreamTape("-")):
    n += 1
print(n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def time_gnu(archive: str, target: str) -> Tuple[float, float, float]:
    """(wall seconds including a final sync, CPU seconds of tar, CPU seconds of the whole machine)."""
    c0, m0, t0 = cpu.children_cpu(), cpu.machine_busy(), time.perf_counter()
    subprocess.run(["tar", "-xpf", archive, "-b", "512", "-C", target], check=True)
    used = cpu.children_cpu() - c0
    os.sync()
    return time.perf_counter() - t0, used, cpu.machine_busy() - m0


def time_ours(archive: str, target: str, checksums: bool = False, jobs: int = 1, rss: Optional[list] = None):
    """(wall seconds including a final sync, CPU seconds of the child and its workers, interpreter start
    included, CPU seconds of the whole machine)."""
    c0, m0, t0 = cpu.children_cpu(), cpu.machine_busy(), time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _CHILD_EXTRACT, archive, target, "1" if checksums else "0", str(jobs)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"bench.extract: rescue failed: {out.stderr.strip()[-2000:]}")
    elapsed, used, machine = time.perf_counter() - t0, cpu.children_cpu() - c0, cpu.machine_busy() - m0
    warnings = int(out.stdout.split()[2])
    if rss is not None:
        rss.append(int(out.stdout.split()[3]) / 1024)  # MiB, the largest of the process and its workers
    if warnings:
        raise SystemExit(f"bench.extract: rescue reported {warnings} warnings extracting {archive}")
    return elapsed, used, machine


def ustar_block(name: bytes) -> bytes:
    """A header-only ustar member (an empty file) for the RSS run."""
    block = bytearray(512)
    block[0 : len(name)] = name
    block[100:108] = b"0000644\0"
    block[108:116] = b"0000000\0"
    block[116:124] = b"0000000\0"
    block[124:136] = b"00000000000\0"
    block[136:148] = b"14000000000\0"
    block[156:157] = b"0"
    block[257:265] = tf.USTAR_MAGIC
    block[148:156] = b"        "
    block[148:156] = b"%06o\0 " % tf.header_checksum(bytes(block))
    return bytes(block)


def reader_rss(members: int) -> dict:
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD_READ], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPO
    )
    batch = 1000
    chunk = b"".join(ustar_block(b"dir%03d/file%07d" % (i % 1000, i)) for i in range(batch))
    t0 = time.perf_counter()
    for _ in range(members // batch):
        proc.stdin.write(chunk)
    proc.stdin.write(b"\0" * 1024)
    proc.stdin.close()
    count, rss_kib = map(int, proc.stdout.read().split())
    proc.wait()
    elapsed = time.perf_counter() - t0
    return {
        "members": count,
        "peak_rss_mib": round(rss_kib / 1024, 1),
        "members_per_s": round(count / elapsed),
    }


def timed_rounds(archive: str, fs_size: int, runs: int) -> tuple:
    """Rounds of GNU tar, rescue in one process, and rescue with workers and SHA-256 (when there is more than
    one usable CPU), each on a fresh file system; alternating, so each round saw about the same machine load."""
    gnu: List[float] = []
    ours: List[float] = []
    gnu_cpu: List[float] = []
    ours_cpu: List[float] = []
    par: List[float] = []
    par_cpu: List[float] = []
    gnu_machine: List[float] = []
    par_machine: List[float] = []
    jobs = parallel_extract.default_jobs()
    loads = []
    for _ in range(runs):
        loads.append(os.getloadavg()[0])
        with tree.scratch(fs_size) as mnt:
            wall, used, machine = time_gnu(archive, mnt)
            gnu.append(wall)
            gnu_cpu.append(used)
            gnu_machine.append(machine)
        with tree.scratch(fs_size) as mnt:
            wall, used, _ = time_ours(archive, mnt)
            ours.append(wall)
            ours_cpu.append(used)
        if jobs > 1:
            with tree.scratch(fs_size) as mnt:
                wall, used, machine = time_ours(archive, mnt, checksums=True, jobs=jobs)
                par.append(wall)
                par_cpu.append(used)
                par_machine.append(machine)
    return gnu, gnu_cpu, ours, ours_cpu, par, par_cpu, loads, (gnu_machine, par_machine)


def bench(scale: float, runs: int, members: int, workdir: str) -> dict:
    archive = os.path.join(workdir, "tree.tar")
    with tree.scratch(max(int(3.5 * 1024**3 * scale), 2 << 30)) as root:  # room for its 1.2M inodes
        stats = tree.build(os.path.join(root, "tree"), scale)
        subprocess.run(
            [
                "tar",
                "--format=posix",
                "--sparse",
                "--sparse-version=1.0",
                "-b",
                "512",
                "-cf",
                archive,
                "-C",
                os.path.join(root, "tree"),
                ".",
            ],
            check=True,
        )
    size = os.path.getsize(archive)
    fs_size = int(size * 1.5) + (1 << 30)
    gnu, gnu_cpu, ours, ours_cpu, par, par_cpu, loads, machine = timed_rounds(archive, fs_size, runs)
    jobs = parallel_extract.default_jobs()
    with tree.scratch(fs_size) as mnt:
        hashed, hashed_cpu, _ = time_ours(archive, mnt, checksums=True)
    g, o = statistics.median(gnu), statistics.median(ours)
    gc, oc = statistics.median(gnu_cpu), statistics.median(ours_cpu)
    result = {
        "tree": stats,
        "archive_bytes": size,
        "gnu_tar_s": [round(t, 3) for t in gnu],
        "rescue_s": [round(t, 3) for t in ours],
        "gnu_tar_cpu_s": [round(t, 3) for t in gnu_cpu],
        "rescue_cpu_s": [round(t, 3) for t in ours_cpu],
        "gnu_tar_median_s": round(g, 3),
        "rescue_median_s": round(o, 3),
        "gnu_tar_cpu_median_s": round(gc, 3),
        "rescue_cpu_median_s": round(oc, 3),
        "speed": round(g / o, 3),
        # Runs alternate, so each pair saw about the same machine load: the median of the pair ratios is
        # steadier than the ratio of medians when other work comes and goes.
        "speed_pairs_median": round(statistics.median(a / b for a, b in zip(gnu, ours)), 3),
        # CPU time (user + system of the process) hardly depends on what else the machine is doing.
        "cpu_speed": round(gc / oc, 3),
        "rescue_sha256_s": round(hashed, 3),
        "rescue_sha256_cpu_s": round(hashed_cpu, 3),
        "speed_with_sha256": round(g / hashed, 3),
        "cpu_speed_with_sha256": round(gc / hashed_cpu, 3),
        "rescue_files_per_s": round(stats["files"] / o),
        "gnu_tar_files_per_s": round(stats["files"] / g),
    }
    result["load_average_1min"] = [round(x, 2) for x in loads]
    if par:
        p, pc = statistics.median(par), statistics.median(par_cpu)
        result["parallel"] = {
            "jobs": jobs,
            "rescue_sha256_s": [round(t, 3) for t in par],
            "rescue_sha256_cpu_s": [round(t, 3) for t in par_cpu],
            "speed_with_sha256": round(g / p, 3),
            "speed_with_sha256_pairs_median": round(statistics.median(a / b for a, b in zip(gnu, par)), 3),
            "cpu_speed_with_sha256": round(gc / pc, 3),
            # The whole machine's CPU time over each run (kernel writeback threads included, bench.cpu), and
            # the best ratio that much work allows on this machine's CPUs, however it is spread over them.
            "gnu_tar_machine_cpu_s": round(statistics.median(machine[0]), 3),
            "rescue_machine_cpu_s": round(statistics.median(machine[1]), 3),
            "speed_bound_by_machine_cpu": round(
                g / (statistics.median(machine[1]) / (os.cpu_count() or 1)), 3
            ),
        }
    if members:
        result["read_rss"] = reader_rss(members)
    return result


def run(args) -> list:
    """Rows (metric, value, unit) for `python -m bench`; the full result goes to stderr as JSON."""
    members = getattr(args, "rss_members", 1_000_000)
    workdir = tempfile.mkdtemp(prefix="bench-extract.", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    guard.remove(workdir)
    try:
        result = bench(args.scale, args.runs, members, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result), file=sys.stderr, flush=True)
    rows = [
        ("gnu_tar_extract", result["gnu_tar_median_s"], "s (median)"),
        ("rescue_extract", result["rescue_median_s"], "s (median)"),
        ("speed_vs_gnu_tar", result["speed"], "x (>= 1.0: as fast)"),
        ("speed_vs_gnu_tar_pairs", result["speed_pairs_median"], "x (median of per-run-pair ratios)"),
        ("gnu_tar_extract_cpu", result["gnu_tar_cpu_median_s"], "s CPU (median, user+sys)"),
        ("rescue_extract_cpu", result["rescue_cpu_median_s"], "s CPU (median, user+sys)"),
        ("cpu_speed_vs_gnu_tar", result["cpu_speed"], "x (GNU tar CPU / ours)"),
        ("rescue_extract_sha256", result["rescue_sha256_s"], "s (one run, SHA-256 of every file)"),
        ("rescue_extract_sha256_cpu", result["rescue_sha256_cpu_s"], "s CPU (that run)"),
        ("rescue_files_per_s", result["rescue_files_per_s"], "files/s"),
        ("gnu_tar_files_per_s", result["gnu_tar_files_per_s"], "files/s"),
    ]
    if "parallel" in result:
        par = result["parallel"]
        rows.append(
            (
                f"speed_vs_gnu_tar_sha256_jobs{par['jobs']}",
                par["speed_with_sha256"],
                "x (median; target >= 1.2)",
            )
        )
        rows.append(
            ("speed_vs_gnu_tar_sha256_parallel_pairs", par["speed_with_sha256_pairs_median"], "x (pairs)")
        )
        rows.append(
            ("cpu_speed_vs_gnu_tar_sha256_parallel", par["cpu_speed_with_sha256"], "x (GNU tar CPU / ours)")
        )
        rows.append(("machine_cpu_gnu_tar", par["gnu_tar_machine_cpu_s"], "s CPU of all CPUs (median)"))
        rows.append(
            ("machine_cpu_rescue_sha256_parallel", par["rescue_machine_cpu_s"], "s CPU of all CPUs (median)")
        )
        rows.append(
            (
                "speed_bound_by_machine_cpu",
                par["speed_bound_by_machine_cpu"],
                f"x (GNU tar's time / ours spread over {os.cpu_count()} CPUs)",
            )
        )
    rows.append(
        ("load_average_median", statistics.median(result["load_average_1min"]), "(2 cores: > 1 is shared)")
    )
    if "read_rss" in result:
        rss = result["read_rss"]
        rows.append((f"read_peak_rss_{rss['members']}_members", rss["peak_rss_mib"], "MiB (target < 64)"))
        rows.append(("read_members_per_s", rss["members_per_s"], "members/s"))
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.extract", description=__doc__.split("\n")[0])
    p.add_argument("--scale", type=float, default=1.0, help="size of the synthetic tree (1.0: ~100k files)")
    p.add_argument("--runs", type=int, default=3, help="timed runs of each tool (median reported)")
    p.add_argument(
        "--rss-members", type=int, default=1_000_000, help="members for the peak-RSS run (0: skip)"
    )
    for metric, value, unit in run(p.parse_args(argv)):
        print(f"extract.{metric:<34} {value:>14} {unit}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
