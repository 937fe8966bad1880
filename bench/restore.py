"""Restore benchmark: a selective restore reads a sliver of the tape; a full restore keeps up with GNU tar.

What it does (size is a parameter, small by default; `python -m bench.restore --size 3G` for the real figure):
1. Builds a synthetic tree of `--size` bytes in `--dirs` directories of equal size, archives it with GNU tar
   (`--format=posix`, `-b 512`: 256 KiB records), and writes the archive's records to a SIMH .tap image.
2. `rescue catalog rebuild` scans the .tap once and writes a catalog (so the image is what any GNU tar tape is).
3. Selective: restores `--pick` directories spread over the tape (together 1% of the bytes with the defaults)
   with `rescue restore --catalog`, and counts the records the backend read; GNU tar extracting the same
   directories reads the whole archive (it cannot know where they are), fed through a pipe as from a tape.
4. Full: `rescue restore` of everything vs `tar -xpf -` of the same archive, each into a fresh ext4 filesystem
   (a loop-mounted image, on tmpfs when it fits: PERF-NOTES, ext4 is slow right after deleting a large tree)
   when run as root; each timing ends with a sync, so it counts the data reaching the file system's disk.

Both tools run as subprocesses with the real interpreter (sys.executable). Times are wall clock, and CPU times
(user + system of the child processes, getrusage(2)) beside them: on a shared machine the CPU-time ratio is the
steadier one; the whole machine's CPU time over the full restores too (bench.cpu), with the speed it allows on
this machine's CPUs. The full restores run `--runs` times, alternating; medians. Prints one JSON object;
`records_fraction` is the share of the tape's records the selective restore read.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import List, Optional, Tuple

from bench import cpu, guard

RECORD = 256 * 1024


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().rstrip("B")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def build_tree(root: str, size: int, dirs: int) -> List[str]:
    """`dirs` directories of about size/dirs bytes each, files of 4 KiB to 1 MiB (incompressible)."""
    names = []
    per_dir = size // dirs
    sizes = [4096, 16384, 65536, 262144, 1048576]
    chunk = os.urandom(2 << 20)
    for d in range(dirs):
        name = f"d{d:04d}"
        names.append(name)
        path = os.path.join(root, name)
        os.makedirs(path)
        left, i = per_dir, 0
        while left > 0:
            n = min(sizes[i % len(sizes)], left)
            with open(os.path.join(path, f"f{i:05d}"), "wb") as f:
                f.write(chunk[(i * 4099) % (len(chunk) - n) :][:n])
            left -= n
            i += 1
    return names


def write_tap(tar_path: str, tap_path: str) -> int:
    from rescue.tape.simh import SimhTape

    records = 0
    with SimhTape(tap_path, write=True) as tape, open(tar_path, "rb") as f:
        while True:
            chunk = f.read(RECORD)
            if not chunk:
                break
            tape.write_record(chunk)
            records += 1
        tape.write_filemarks(1)
    return records


@contextlib.contextmanager
def fresh_fs(workdir: str, size: int):
    """A new ext4 filesystem mounted on a directory (root only), else a new directory."""
    mnt = tempfile.mkdtemp(dir=workdir, prefix="mnt-")
    guard.remove(mnt)
    # The image on tmpfs when it fits: memory speed, and no disk writeback of one run landing in the next.
    shm = "/dev/shm"
    on_shm = os.path.isdir(shm) and shutil.disk_usage(shm).free > 3 * max(size * 2, 256 << 20)
    image = os.path.join(shm, os.path.basename(mnt) + ".img") if on_shm else mnt + ".img"
    guard.remove(image)
    guard.mount(mnt)  # registered after the image: unmounted before it is removed
    mounted = False
    if os.geteuid() == 0 and shutil.which("mkfs.ext4"):
        with open(image, "wb") as f:
            f.truncate(max(size * 2, 256 << 20))
        subprocess.run(
            ["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", image], check=True
        )
        mounted = subprocess.run(["mount", "-o", "loop", image, mnt], capture_output=True).returncode == 0
    try:
        yield mnt
    finally:
        if mounted:
            subprocess.run(["umount", mnt], check=False)
        shutil.rmtree(mnt, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(image)


def timed(cmd: List[str], **kw) -> Tuple[float, float]:
    """(wall seconds, CPU seconds) of one command."""
    used, start = cpu.children_cpu(), time.perf_counter()
    subprocess.run(cmd, check=True, **kw)
    return time.perf_counter() - start, cpu.children_cpu() - used


def timed_tar_from_pipe(tar: str, args: List[str]) -> Tuple[float, float]:
    """GNU tar reading the archive through a pipe, as from a tape: on a regular file it would lseek over the
    data of members it does not want, which no tape drive can do.  The CPU time counts tar and the cat that
    reads the archive (rescue reads its .tap itself)."""
    used, start = cpu.children_cpu(), time.perf_counter()
    with open(tar, "rb") as src:
        cat = subprocess.Popen(["cat"], stdin=src, stdout=subprocess.PIPE)
        subprocess.run(["tar", "-xpf", "-", "-b", "512", *args], stdin=cat.stdout, check=True)
        cat.stdout.close()
        cat.wait()
    return time.perf_counter() - start, cpu.children_cpu() - used


def synced(measure, *args, **kw) -> Tuple[float, float, float]:
    """A measurement that ends when the restored data is on the (loop) disk: os.sync() inside the timing,
    for both tools alike (neither syncs by itself).  (wall, CPU of the tool, CPU of the whole machine)."""
    machine, start = cpu.machine_busy(), time.perf_counter()
    _, used = measure(*args, **kw)
    os.sync()
    return time.perf_counter() - start, used, cpu.machine_busy() - machine


def rescue_cmd(*args: str) -> List[str]:
    return [sys.executable, "-m", "rescue", *args]


def bench(size: int, dirs: int, pick: int, workdir: str, threshold: Optional[int], runs: int = 3) -> dict:
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    # Compiled modules cached as on an installed system (rescue.pyz and pip installs have them), kept out of the
    # source tree; the catalog rebuild below fills the cache. Without it every run compiles ~50 modules again.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = os.path.join(workdir, "pycache")
    tree = os.path.join(workdir, "tree")
    os.makedirs(tree)
    names = build_tree(tree, size, dirs)
    tar = os.path.join(workdir, "a.tar")
    subprocess.run(
        ["tar", "-cf", tar, "-b", "512", "--format=posix", "--sort=name", "-C", tree, *names], check=True
    )
    shutil.rmtree(tree)
    tap = os.path.join(workdir, "a.tap")
    records = write_tap(tar, tap)
    catalog = os.path.join(workdir, "catalog.jsonl.gz")
    rebuild_s, _ = timed(
        rescue_cmd("-f", tap, "catalog", "rebuild", "-o", catalog), env=env, stderr=subprocess.DEVNULL
    )
    # Selective: directories spread evenly over the tape.
    step = dirs // pick
    chosen = [names[step // 2 + i * step] for i in range(pick)][::-1]  # asked in reverse tape order
    out = {"size_bytes": os.path.getsize(tar), "records": records, "record_size": RECORD, "dirs": dirs}
    out["catalog_rebuild_s"] = round(rebuild_s, 2)
    out["seek_threshold"] = threshold if threshold is not None else "default (64 MiB)"
    run = _Run(workdir, size, env, tar, tap, catalog, records)
    out["selective"] = run.selective(chosen, threshold)
    out["full"] = run.full(runs)
    return out


@dataclasses.dataclass
class _Run:
    """One benchmark's archive, tape and catalog, and the environment the rescue processes run in."""

    workdir: str
    size: int
    env: dict
    tar: str
    tap: str
    catalog: str
    records: int

    def selective(self, chosen: List[str], threshold: Optional[int]) -> dict:
        limit = ["--seek-threshold", str(threshold)] if threshold is not None else []
        with fresh_fs(self.workdir, self.size // 10) as target:
            used, start = cpu.children_cpu(), time.perf_counter()
            proc = subprocess.run(
                rescue_cmd(
                    "-f",
                    self.tap,
                    "restore",
                    "--catalog",
                    self.catalog,
                    "-C",
                    target,
                    "--json",
                    *limit,
                    *chosen,
                ),
                env=self.env,
                capture_output=True,
                text=True,
                check=True,
            )
            sel_s, sel_cpu = time.perf_counter() - start, cpu.children_cpu() - used
            summary = json.loads(proc.stdout)
        with fresh_fs(self.workdir, self.size // 10) as target:
            tar_sel_s, tar_sel_cpu = timed_tar_from_pipe(self.tar, ["-C", target, *chosen])
        return {
            "paths": chosen,
            "bytes": summary["bytes"],
            "bytes_fraction": round(summary["bytes"] / self.size, 4),
            "records_read": summary["records_read"],
            "records_fraction": round(summary["records_read"] / self.records, 4),
            "seeks": summary["seeks"],
            "rescue_s": round(sel_s, 2),
            "rescue_cpu_s": round(sel_cpu, 2),
            "gnu_tar_records_read": self.records,
            "gnu_tar_s": round(tar_sel_s, 2),
            "gnu_tar_cpu_s": round(tar_sel_cpu, 2),
        }

    def full(self, runs: int) -> dict:
        # Not timed: the first extract after building the tree pays for the kernel reclaiming memory (seen as a
        # 2x slower first run, whichever tool goes first).
        with fresh_fs(self.workdir, self.size) as target:
            timed_tar_from_pipe(self.tar, ["-C", target])
        full, gnu, loads = [], [], []
        for _ in range(runs):  # alternating, so each pair of runs saw about the same machine load
            loads.append(os.getloadavg()[0])
            with fresh_fs(self.workdir, self.size) as target:
                full.append(
                    synced(
                        timed,
                        rescue_cmd("-f", self.tap, "restore", "--catalog", self.catalog, "-C", target),
                        env=self.env,
                        stderr=subprocess.DEVNULL,
                    )
                )
            with fresh_fs(self.workdir, self.size) as target:
                gnu.append(synced(timed_tar_from_pipe, self.tar, ["-C", target]))
        full_s, full_cpu = statistics.median(r[0] for r in full), statistics.median(r[1] for r in full)
        tar_full_s, tar_full_cpu = statistics.median(r[0] for r in gnu), statistics.median(r[1] for r in gnu)
        full_machine = statistics.median(r[2] for r in full)
        mib = os.path.getsize(self.tar) / (1 << 20)
        return {
            "runs": runs,
            "rescue_s": [round(r[0], 2) for r in full],
            "rescue_cpu_s": [round(r[1], 2) for r in full],
            "gnu_tar_s": [round(r[0], 2) for r in gnu],
            "gnu_tar_cpu_s": [round(r[1], 2) for r in gnu],
            "rescue_mib_s": round(mib / full_s, 1),
            "gnu_tar_mib_s": round(mib / tar_full_s, 1),
            "speed_vs_tar": round(tar_full_s / full_s, 2),
            "speed_vs_tar_pairs": round(statistics.median(g[0] / r[0] for g, r in zip(gnu, full)), 2),
            # CPU time (user + system) varies far less than wall time on a shared machine.
            "cpu_speed_vs_tar": round(tar_full_cpu / full_cpu, 2),
            # The whole machine's CPU time (kernel writeback included, bench.cpu), and the best ratio that much
            # work allows on this machine's CPUs.
            "gnu_tar_machine_cpu_s": round(statistics.median(r[2] for r in gnu), 2),
            "rescue_machine_cpu_s": round(full_machine, 2),
            "speed_bound_by_machine_cpu": round(tar_full_s / (full_machine / (os.cpu_count() or 1)), 2),
            "load_average_1min": [round(x, 2) for x in loads],
        }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.restore", description=__doc__.splitlines()[0])
    p.add_argument("--size", default="200M", help="bytes of the synthetic tree (e.g. 200M, 3G)")
    p.add_argument("--dirs", type=int, default=300, help="directories of equal size")
    p.add_argument("--pick", type=int, default=3, help="directories restored selectively (3 of 300 = 1%%)")
    p.add_argument(
        "--seek-threshold",
        type=int,
        default=4,
        help="records read through rather than sought over (default 4 = 1 MiB: a small image's gaps "
        "are shorter than restore's 64 MiB default; -1 uses that default)",
    )
    p.add_argument("--runs", type=int, default=3, help="full restores of each tool, alternating (median)")
    p.add_argument("--workdir", default=None, help="scratch directory (default: a new one under $TMPDIR)")
    return p


def run(args=None) -> list:
    """Entry for `python -m bench` (args: its namespace; returns table rows, the JSON goes to stderr) and for
    `python -m bench.restore` (args: an argv list or None; the JSON goes to stdout)."""
    called_by_bench = not (args is None or isinstance(args, (list, tuple)))
    if not called_by_bench:
        ns = parser().parse_args(list(args or []))
    else:
        ns = parser().parse_args([])
        for key in ("size", "dirs", "pick", "workdir", "seek_threshold", "runs"):
            if getattr(args, key, None) is not None:
                setattr(ns, key, getattr(args, key))
    size = parse_size(str(ns.size))
    workdir: Optional[str] = ns.workdir
    own = workdir is None
    workdir = tempfile.mkdtemp(prefix="bench-restore-") if own else workdir
    if own:
        guard.remove(workdir)
    try:
        threshold = None if ns.seek_threshold is not None and ns.seek_threshold < 0 else ns.seek_threshold
        result = bench(size, ns.dirs, ns.pick, workdir, threshold, max(1, ns.runs))
    finally:
        if own:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps({"restore": result}, indent=2), file=sys.stderr if called_by_bench else sys.stdout)
    sel, full = result["selective"], result["full"]
    return [
        ("selective_records_fraction", sel["records_fraction"], "of the tape's records (target <= 0.02)"),
        ("selective_seeks", sel["seeks"], "seeks"),
        ("full_speed_vs_tar", full["speed_vs_tar"], "x wall (median; >= 1.0: as fast)"),
        ("full_speed_vs_tar_pairs", full["speed_vs_tar_pairs"], "x wall (median of per-run-pair ratios)"),
        ("full_cpu_speed_vs_tar", full["cpu_speed_vs_tar"], "x CPU (tar + cat CPU / ours)"),
        (
            "full_speed_bound_by_machine_cpu",
            full["speed_bound_by_machine_cpu"],
            "x (machine CPU over all CPUs)",
        ),
        ("full_load_average_median", statistics.median(full["load_average_1min"]), "(before each round)"),
        ("full_rescue_mib_s", full["rescue_mib_s"], "MiB/s"),
        ("full_gnu_tar_mib_s", full["gnu_tar_mib_s"], "MiB/s"),
    ]


if __name__ == "__main__":
    run(sys.argv[1:])
