"""Benchmarks run by `make bench` (`python -m bench`): each module with `run(args)` adds rows to one table."""
