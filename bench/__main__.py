"""Run every bench/*.py module that defines `run(args) -> [(metric, value, unit), ...]` and print one table.

A module may define `add_arguments(parser)` for its own options.  `--only NAME` runs the named modules.
Timings go to stderr as they happen; the table goes to stdout.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import bench


def main(argv=None) -> int:
    modules = []
    for info in sorted(pkgutil.iter_modules(bench.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"bench.{info.name}")
        if callable(getattr(module, "run", None)):
            modules.append((info.name, module))
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", action="append", default=[], help="run only this module (repeatable)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per measurement (median reported)")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="size of the synthetic tree (1.0: ~100k files)"
    )
    for _, module in modules:
        if hasattr(module, "add_arguments"):
            module.add_arguments(parser)
    args = parser.parse_args(argv)
    rows = []
    for name, module in modules:
        if args.only and name not in args.only:
            continue
        print(f"== bench.{name}", file=sys.stderr, flush=True)
        for metric, value, unit in module.run(args):
            rows.append((name, metric, value, unit))
    width = max([len(f"{n}.{m}") for n, m, _, _ in rows] + [10])
    for name, metric, value, unit in rows:
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        print(f"{name + '.' + metric:<{width}}  {shown:>14}  {unit}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
