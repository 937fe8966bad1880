"""A synthetic server tree for the benchmarks, on a fresh loop-mounted ext4 image on tmpfs when root allows.

`build(root, scale)` writes about 100,000 small files (0 to 32 KiB, mean 8 KiB, 100 per directory), six
128 MiB files, 1,000 symlinks and 1,000 hard links, and one 1 GiB sparse file with 12 MiB of data; scale 1.0 is
about 1.6 GB of data (PERF-NOTES measured a 108k-entry, 1.67 GB tree).
`scratch()` is a context manager giving a directory on a fresh file system: an ext4 image on /dev/shm mounted
with -o loop (ext4 on tmpfs: real ext4 behaviour, memory speed, and no inode-reuse slowdown from earlier runs,
see PERF-NOTES), or a plain temporary directory when mounting is not possible; bench.guard undoes both even when
the bench is killed.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, Iterator, Optional

from bench import guard

MiB = 1024 * 1024


@contextlib.contextmanager
def scratch(size_bytes: int, inodes: Optional[int] = None) -> Iterator[str]:
    """A directory on a fresh file system of about size_bytes with room for `inodes` files (default: one per
    8 KiB), removed afterwards."""
    if inodes is None:
        inodes = max(65536, size_bytes // 8192)
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    work = tempfile.mkdtemp(prefix="rescue-bench-", dir=shm)
    guard.remove(work)  # and the mount below: undone even when the bench is killed (bench.guard)
    image = os.path.join(work, "fs.img")
    mnt = os.path.join(work, "mnt")
    os.mkdir(mnt)
    mounted = False
    if os.geteuid() == 0 and shutil.which("mkfs.ext4"):
        try:
            with open(image, "wb") as f:
                f.truncate(size_bytes)
            subprocess.run(
                ["mkfs.ext4", "-q", "-F", "-N", str(inodes), image], check=True, capture_output=True
            )
            guard.mount(mnt)
            subprocess.run(["mount", "-o", "loop", image, mnt], check=True, capture_output=True)
            mounted = True
        except (OSError, subprocess.CalledProcessError) as e:
            print(f"bench: no loop-mounted ext4 ({e}); using {shm}", file=sys.stderr)
    try:
        yield mnt
    finally:
        if mounted and subprocess.run(["umount", mnt], check=False).returncode != 0:
            subprocess.run(["umount", "-l", mnt], check=False)  # still busy (an interrupted child): detach it
        shutil.rmtree(work, ignore_errors=True)


def build(root: str, scale: float = 1.0, seed: int = 1) -> Dict[str, int]:
    """Write the tree under root; returns counts (files, bytes, dirs, links)."""
    rng = random.Random(seed)
    pool = rng.randbytes(4 * MiB) if hasattr(rng, "randbytes") else os.urandom(4 * MiB)
    stats = {"files": 0, "bytes": 0, "dirs": 0, "links": 0}
    n_small = int(100_000 * scale)
    made_dirs = set()
    for i in range(n_small):
        d = os.path.join(root, "srv", f"d{i // 10000:02d}", f"s{(i // 100) % 100:02d}")
        if d not in made_dirs:
            os.makedirs(d, exist_ok=True)
            made_dirs.add(d)
        r = rng.random()
        size = int(r * r * r * 32 * 1024)  # skewed to small: mean 8 KiB, median 4 KiB
        start = rng.randrange(0, len(pool) - size)
        with open(os.path.join(d, f"f{i}.dat"), "wb") as f:
            f.write(pool[start : start + size])
        stats["files"] += 1
        stats["bytes"] += size
    big = os.path.join(root, "var", "lib", "images")
    os.makedirs(big, exist_ok=True)
    for i in range(max(1, int(6 * scale))):
        with open(os.path.join(big, f"large{i}.bin"), "wb") as f:
            for _ in range(32):  # 128 MiB
                f.write(pool)
        stats["files"] += 1
        stats["bytes"] += 128 * MiB
    links = os.path.join(root, "etc", "alternatives")
    os.makedirs(links, exist_ok=True)
    for i in range(int(1000 * scale)):
        os.symlink(f"../../srv/d00/s00/f{i % 100}.dat", os.path.join(links, f"sym{i}"))
        os.link(os.path.join(root, "srv", "d00", "s00", f"f{i % 100}.dat"), os.path.join(links, f"hard{i}"))
        stats["links"] += 2
    with open(os.path.join(root, "var", "lib", "sparse.img"), "wb") as f:
        f.truncate(1024 * MiB)
        for off in (0, 300 * MiB, 1000 * MiB):
            f.seek(off)
            f.write(pool[: 4 * MiB])
    stats["files"] += 1
    stats["bytes"] += 12 * MiB
    stats["dirs"] = len(made_dirs)
    return stats


def build_many(root: str, members: int) -> None:
    """`members` empty files, 1000 per directory (for the peak-RSS measurement)."""
    for i in range(members):
        if i % 1000 == 0:
            d = os.path.join(root, f"m{i // 1000:04d}")
            os.mkdir(d)
        os.close(os.open(os.path.join(d, f"{i}"), os.O_CREAT | os.O_WRONLY, 0o644))
