"""Create: our writer (with SHA-256 of every file) against `tar --create --format=posix`, both through a pipe.

Both write 256 KiB records (`-b 512` for GNU tar) into `| cat > /dev/null` (not straight to /dev/null: GNU tar
then skips reading file data).  After one untimed warm-up each, each side runs `--runs` times, alternating;
medians are reported, and the ratio is GNU tar's wall time / ours (>= 1.0: we are at least as fast).  CPU
seconds (user + sys of the whole pipeline, `cat` included on both sides) are reported too, with their ratio
GNU tar / ours: on a shared machine the wall ratio follows the load, the CPU ratio much less.  Ratios are also
given as the median of the per-run ratios (each run pairs ours with the GNU tar run right after it, under about
the same load).  Our child also reports its own user and system seconds and those of its main thread (the rest
is the record writer thread: hashing and writing).  Peak RSS: a child process writes an archive of
`--rss-members` empty files and reports its resource.getrusage maximum RSS.

Child mode (used by the parent): `python -m bench.create --child ROOT` writes the archive to stdout.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time

from bench import cpu, tree

RECORD = 256 * 1024


def add_arguments(parser) -> None:
    parser.add_argument(
        "--rss-members", type=int, default=1_000_000, help="members for the peak-RSS run (0: skip)"
    )


class _StdoutTape:
    """Records to fd 1 (a pipe), each written whole."""

    def write_record(self, data) -> None:
        view = memoryview(data)
        while view:
            n = os.write(1, view)
            view = view[n:]


def child(root: str) -> int:
    from rescue.archive.writer import write_archive

    count = [0]

    def on_member(member) -> None:
        count[0] += 1

    result = write_archive(_StdoutTape(), root, record_size=RECORD, on_member=on_member)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        f"members={result.members} bytes={result.bytes} maxrss_kib={usage.ru_maxrss} "
        f"user={usage.ru_utime:.2f}s sys={usage.ru_stime:.2f}s main_thread={time.thread_time():.2f}s",
        file=sys.stderr,
    )
    return result.exit_code


def _timed(cmd: str):
    """(wall seconds, CPU seconds of the whole pipeline, stderr) of a shell pipeline."""
    cpu0 = cpu.children_cpu()
    start = time.perf_counter()
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{cmd}: exit {proc.returncode}: {proc.stderr.strip()}")
    return elapsed, cpu.children_cpu() - cpu0, proc.stderr


def _ours_cmd(root: str) -> str:
    return f"'{sys.executable}' -m bench.create --child '{root}' | cat > /dev/null"


def _tar_cmd(root: str) -> str:
    return f"tar --create --format=posix -b {RECORD // 512} -f - -C '{root}' . | cat > /dev/null"


def run(args):
    rows = []
    size = int(2.5 * 1024**3 * max(args.scale, 0.1)) + 512 * 1024**2
    with tree.scratch(size, inodes=int(150_000 * max(args.scale, 0.1))) as root:
        t0 = time.perf_counter()
        stats = tree.build(root, args.scale)
        os.sync()
        print(f"tree: {stats} built in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        _timed(_ours_cmd(root))  # warm-up, untimed: the page cache holds the tree for both sides alike
        _timed(_tar_cmd(root))
        ours, theirs, ours_cpu, theirs_cpu = [], [], [], []
        load = os.getloadavg()[0]
        for i in range(args.runs):
            t, c, err = _timed(_ours_cmd(root))
            ours.append(t)
            ours_cpu.append(c)
            t2, c2, _ = _timed(_tar_cmd(root))
            theirs.append(t2)
            theirs_cpu.append(c2)
            print(
                f"run {i + 1}: ours {t:.2f}s wall {c:.2f}s cpu ({err.strip()}), "
                f"GNU tar {t2:.2f}s wall {c2:.2f}s cpu; ratios wall {t2 / t:.2f}x cpu {c2 / c:.2f}x",
                file=sys.stderr,
                flush=True,
            )
        mb = stats["bytes"] / 1e6
        o, g = statistics.median(ours), statistics.median(theirs)
        oc, gc = statistics.median(ours_cpu), statistics.median(theirs_cpu)
        pair_wall = statistics.median(b / a for a, b in zip(ours, theirs))
        pair_cpu = statistics.median(b / a for a, b in zip(ours_cpu, theirs_cpu))
        rows += [
            ("tree_files", stats["files"], "files"),
            ("tree_bytes", stats["bytes"], "bytes"),
            ("ours_seconds", o, "s (median)"),
            ("gnu_tar_seconds", g, "s (median)"),
            ("ours_throughput", mb / o, "MB/s"),
            ("gnu_tar_throughput", mb / g, "MB/s"),
            ("speed_vs_gnu_tar", g / o, "x (>= 1.0 is the target)"),
            ("speed_vs_gnu_tar_per_run", pair_wall, "x (median of per-run wall ratios)"),
            ("ours_cpu_seconds", oc, "s user+sys incl. cat (median)"),
            ("gnu_tar_cpu_seconds", gc, "s user+sys incl. cat (median)"),
            ("cpu_vs_gnu_tar", gc / oc, "x (GNU tar CPU / ours; >= 1.0: we use no more CPU)"),
            ("cpu_vs_gnu_tar_per_run", pair_cpu, "x (median of per-run CPU ratios)"),
            ("load_average_at_start", load, "(2 cores: above ~1 the machine is shared)"),
        ]
    if args.rss_members:
        with tree.scratch(256 * 1024**2 + args.rss_members * 2048, inodes=args.rss_members + 10_000) as root:
            t0 = time.perf_counter()
            tree.build_many(root, args.rss_members)
            print(f"{args.rss_members} members built in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
            cmd = f"'{sys.executable}' -m bench.create --child '{root}' > /dev/null"
            t, _, err = _timed(cmd)
            rss = int(err.split("maxrss_kib=")[1].split()[0])
            rows += [
                ("rss_members", args.rss_members, "members"),
                ("rss_seconds", t, "s"),
                ("peak_rss", rss / 1024, "MiB (< 64 is the target)"),
            ]
    return rows


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    sys.exit(child(sys.argv[2]))
