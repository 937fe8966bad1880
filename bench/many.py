"""Many tiny files: 1,000,000 (`--many N`) files of 0-16 bytes in directories of 1,000, archived and extracted
by rescue and by GNU tar in the same run, with rescue's peak memory in every mode.

- create: rescue's writer (bench.create's child, SHA-256 of every file) and `tar --create --format=posix`,
  both through `| cat > FILE` on tmpfs; ratio = GNU tar's wall time / ours.
- extract: `tar -xf` against rescue with one process and with worker processes (SHA-256 computed in both),
  each into a fresh ext4 (bench.tree.scratch); ratio = GNU tar's time / ours.
- peak RSS (MiB): the writer, and the largest of the extracting process and its workers (target < 64).
- the whole machine's CPU time over GNU tar's and the parallel extraction, and the speed it allows (bench.cpu).
`--runs` rounds (median reported); load average and CPU seconds beside the ratios.
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import time

from bench import cpu, extract, tree


def add_arguments(parser) -> None:
    parser.add_argument("--many", type=int, default=1_000_000, help="files for bench.many (0: skip)")


def build(root: str, count: int) -> None:
    rng = random.Random(1)
    for i in range(count):
        if i % 1000 == 0:
            d = os.path.join(root, f"m{i // 1000:04d}")
            os.mkdir(d)
        fd = os.open(os.path.join(d, f"{i}"), os.O_CREAT | os.O_WRONLY, 0o644)
        n = rng.randrange(17)
        if n:
            os.write(fd, b"x" * n)
        os.close(fd)


def _pipeline(cmd: str):
    c0, t0 = cpu.children_cpu(), time.perf_counter()
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"bench.many: {cmd}: exit {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return time.perf_counter() - t0, cpu.children_cpu() - c0, proc.stderr


def run(args) -> list:
    count = getattr(args, "many", 1_000_000)
    if not count:
        return []
    runs = max(1, args.runs)
    jobs = extract.parallel_extract.default_jobs()
    with tree.scratch(256 * 1024**2 + count * 4096, inodes=count + 10_000) as src:
        t0 = time.perf_counter()
        build(src, count)
        print(f"bench.many: {count} files built in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        ours_tar = os.path.join(src, "..", "ours.tar")
        gnu_tar = os.path.join(src, "..", "gnu.tar")
        rows: dict = {k: [] for k in ("c_ours", "c_gnu", "c_ours_cpu", "c_gnu_cpu", "x_gnu", "x_gnu_cpu")}
        rows.update({"x_one": [], "x_one_cpu": [], "x_par": [], "x_par_cpu": [], "rss_x": [], "rss_c": []})
        rows.update({"x_gnu_machine": [], "x_par_machine": []})
        loads = []
        for _ in range(runs):
            loads.append(os.getloadavg()[0])
            me = f"'{sys.executable}' -m bench.create --child '{src}' | cat > '{ours_tar}'"
            w, c, err = _pipeline(me)
            rows["c_ours"].append(w)
            rows["c_ours_cpu"].append(c)
            rows["rss_c"].append(int(err.split("maxrss_kib=")[1].split()[0]) / 1024)
            w, c, _ = _pipeline(f"tar --create --format=posix -b 512 -f - -C '{src}' . | cat > '{gnu_tar}'")
            rows["c_gnu"].append(w)
            rows["c_gnu_cpu"].append(c)
            size = os.path.getsize(gnu_tar) * 2 + (512 << 20)
            with tree.scratch(size, inodes=count + 10_000) as mnt:
                w, c, machine = extract.time_gnu(gnu_tar, mnt)
                rows["x_gnu"].append(w)
                rows["x_gnu_cpu"].append(c)
                rows["x_gnu_machine"].append(machine)
            for key, n in (("x_one", 1), ("x_par", jobs)):
                with tree.scratch(size, inodes=count + 10_000) as mnt:
                    w, c, machine = extract.time_ours(
                        ours_tar, mnt, checksums=True, jobs=n, rss=rows["rss_x"]
                    )
                    rows[key].append(w)
                    rows[key + "_cpu"].append(c)
                    if key == "x_par":
                        rows["x_par_machine"].append(machine)
        os.unlink(ours_tar)
        os.unlink(gnu_tar)
    med = {k: statistics.median(v) for k, v in rows.items() if v}
    return [
        ("files", count, "files"),
        ("create_speed_vs_gnu_tar", med["c_gnu"] / med["c_ours"], "x wall (median)"),
        ("create_cpu_vs_gnu_tar", med["c_gnu_cpu"] / med["c_ours_cpu"], "x CPU"),
        ("create_peak_rss", max(rows["rss_c"]), "MiB (target < 64)"),
        ("extract_one_process_speed_vs_gnu_tar", med["x_gnu"] / med["x_one"], "x wall (median, SHA-256)"),
        (f"extract_jobs{jobs}_speed_vs_gnu_tar", med["x_gnu"] / med["x_par"], "x wall (median, SHA-256)"),
        ("extract_one_process_cpu_vs_gnu_tar", med["x_gnu_cpu"] / med["x_one_cpu"], "x CPU"),
        (f"extract_jobs{jobs}_cpu_vs_gnu_tar", med["x_gnu_cpu"] / med["x_par_cpu"], "x CPU"),
        ("extract_peak_rss", max(rows["rss_x"]), "MiB (largest process, every mode; target < 64)"),
        ("gnu_tar_extract_s", med["x_gnu"], "s"),
        ("extract_machine_cpu_gnu_tar", med["x_gnu_machine"], "s CPU of all CPUs (median)"),
        (f"extract_machine_cpu_jobs{jobs}", med["x_par_machine"], "s CPU of all CPUs (median)"),
        (
            f"extract_jobs{jobs}_speed_bound_by_machine_cpu",
            med["x_gnu"] / (med["x_par_machine"] / (os.cpu_count() or 1)),
            f"x (GNU tar's time / ours spread over {os.cpu_count()} CPUs)",
        ),
        ("load_average_median", statistics.median(loads), "(2 cores: > 1 is shared)"),
    ]
