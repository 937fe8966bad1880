"""Run `rescue.cli.main(argv)` in a child process forked from the test process, with a timeout.

The child is a real separate process (its own memory, file descriptors and exit status; killed when it overruns),
but it starts with the test process's imports already done, so a corpus of a hundred restores does not pay a
Python start-up for each. stdout and stderr go to files and come back as text; a traceback (an exception main()
let through) is printed to the child's stderr, exit status 99.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import tempfile
import time
import traceback
from typing import List, Optional


@dataclasses.dataclass
class Finished:
    returncode: Optional[int]  # None: killed at the timeout
    stdout: str
    stderr: str


def run_main(argv: List[str], timeout: float) -> Finished:
    with tempfile.TemporaryDirectory(prefix="forkrun-") as where:
        out, err = os.path.join(where, "out"), os.path.join(where, "err")
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns into the test process
            code = 99
            try:
                for fd, path in ((1, out), (2, err)):
                    os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
                os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
                sys.stdin = open(0, closefd=False)
                sys.stdout = open(1, "w", closefd=False)
                sys.stderr = open(2, "w", closefd=False)
                os.environ.pop("TAPE", None)
                from rescue.cli import main

                code = int(main(argv) or 0)
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 2
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        deadline = time.monotonic() + timeout
        status = None
        while status is None:
            done, raw = os.waitpid(pid, os.WNOHANG)
            if done:
                status = os.waitstatus_to_exitcode(raw)
            elif time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                break
            else:
                time.sleep(0.01)
        with (
            open(out, encoding="utf-8", errors="replace") as f,
            open(err, encoding="utf-8", errors="replace") as g,
        ):
            return Finished(status, f.read(), g.read())
