"""Pick two top-level directories whose partial restore must seek (runs in the drill guest; standard library).

    rescue -f /dev/nst0 list --json | python3 pick_paths.py RECORD_SIZE THRESHOLD [SKIP...]
        -> prints "LATER EARLIER"

The archive holds members in directory order, and ext4 hashes names, so which directories lie far apart on
tape changes with every mkfs.  This reads the catalog's positions and picks the first and the last directory
in tape order whose gap (records between the end of the earlier and the start of the later) exceeds THRESHOLD,
printed later first so the restore is asked for them in reverse tape order.  SKIP names top-level directories
the restore leaves out by default (lost+found, tmp ...): asked for, they would restore nothing.  Exit 2 when
no pair is that far apart.
"""

from __future__ import annotations

import json
import sys

BLOCK = 512


def spans(lines, record_size: int, skip=()) -> dict:
    """Top-level directory -> [first record, last record] its members touch, leaving out those in `skip`."""
    out: dict = {}
    for line in lines:
        m = json.loads(line)
        top = m["path"].split("/", 1)[0]
        if top in skip or ("/" not in m["path"] and m["type"] != "dir"):
            continue
        # Data blocks follow the header (and any extended headers, which a block of slack covers).
        end = m["record"] * record_size + m["offset"] + 3 * BLOCK + m.get("size", 0)
        first, last = m["record"], end // record_size
        span = out.setdefault(top, [first, last])
        span[0], span[1] = min(span[0], first), max(span[1], last)
    return out


def pick(span: dict, threshold: int):
    ordered = sorted(span.items(), key=lambda kv: kv[1][0])
    for i, (early, (_, early_end)) in enumerate(ordered):
        for late, (late_start, _) in reversed(ordered[i + 1 :]):
            if late_start - early_end - 1 > threshold:
                return late, early
    return None


def main(argv) -> int:
    record_size, threshold = int(argv[1]), int(argv[2])
    chosen = pick(spans(sys.stdin, record_size, set(argv[3:])), threshold)
    if chosen is None:
        print("pick_paths: no two top-level directories lie that far apart on tape", file=sys.stderr)
        return 2
    print(*chosen)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
