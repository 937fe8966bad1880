"""A small QEMU runner for tests that boot guests: serial console, wait for output, kill by pid, KVM detection.

API (standard library only):

- `Guest(args, workdir, name="guest", memory="512M")`: a QEMU x86_64 guest. `args` are the machine-specific
  QEMU arguments (`-kernel/-initrd/-append`, `-cdrom`, `-drive ...`); the runner adds `-accel` (see `accel()`),
  `-m`, no display, `-no-reboot`, `-nodefaults` (so no network card: guests reach nothing), and the first
  serial port as a Unix socket it reads in a thread (a boot is not missed: QEMU waits for that connection).
  Everything the guest writes there goes to `workdir/<name>.serial.log` (QEMU's own messages to
  `<name>.qemu.log`) and is kept in memory.
  - `start()` -> self (also a context manager: `with Guest(...) as g:` starts, and stops on exit);
    `started_at` is its `time.monotonic()` start time. QEMU gets SIGKILL when the thread that started it
    exits (PR_SET_PDEATHSIG), so a killed test run leaves no guest behind: start guests from a thread that
    outlives them (normally the test's own).
  - `wait_for(pattern, timeout)` -> `re.Match` of the regex `pattern` (str) in the console output after the
    last match (each call consumes output up to its match); raises `GuestTimeout` with the log's tail when the
    pattern is not seen in time or QEMU exits first.
  - `send(text)` types `text` on the serial console (add "\\n" yourself); `run(command, timeout)` runs a shell
    command between two echoed markers and returns its output and exit status: `(output, status)`.
  - `wait_exit(timeout)` -> QEMU's exit code (guests that power off, e.g. `rescue.run=`); `stop()` kills QEMU
    by its pid (SIGTERM, then SIGKILL) and is idempotent. `output` is all console text so far.
- `accel()` -> "kvm" when a short test boot under KVM works here, else "tcg". The result is cached per process;
  `RESCUE_QEMU_ACCEL=kvm|tcg` overrides. `kvm_works(kernel, initrd)` runs the test boot with the given kernel.
  The rescue image's /init prints "rescue: shell on DEV" when its shell is ready (wait for that, then `run`).
- `ovmf()` -> (code, vars) paths of Debian's OVMF firmware (package ovmf) or None; `uefi_args(workdir,
  variables=None)` -> the `-drive if=pflash` arguments, with a private writable copy of the variables store, or
  the store `variables` (copied from OVMF's on first use): one machine's NVRAM across several boots.
- `QEMU` is the emulator's name; tests call `need_tool(qemu.QEMU)` before booting.
"""

from __future__ import annotations

import codecs
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import List, Optional, Tuple

QEMU = "qemu-system-x86_64"
OVMF_CANDIDATES = [
    ("/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"),
    ("/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"),
]


class GuestTimeout(AssertionError):
    """The guest did not show the expected output in time (an AssertionError so pytest reports it plainly)."""


class Guest:
    def __init__(self, args: List[str], workdir: Path, name: str = "guest", memory: str = "512M"):
        self.args = list(args)
        self.workdir = Path(workdir)
        self.name = name
        self.memory = memory
        self.log_path = self.workdir / f"{name}.serial.log"
        self.proc: Optional[subprocess.Popen] = None
        self.started_at = 0.0
        self._buf = ""
        self._pos = 0
        self._cond = threading.Condition()
        self._sock: Optional[socket.socket] = None
        self._reader: Optional[threading.Thread] = None
        self._closed = False

    # -- life cycle ---------------------------------------------------------------------------------------------

    def command(self, sock_path: str) -> List[str]:
        return [
            QEMU,
            "-accel",
            accel(),
            "-m",
            self.memory,
            "-display",
            "none",
            "-vga",
            "none",
            "-no-reboot",
            "-nodefaults",
            "-chardev",
            f"socket,id=console,path={sock_path},server=on,wait=on",
            "-serial",
            "chardev:console",
            *self.args,
        ]

    def start(self) -> Guest:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # Unix socket paths are limited to 108 bytes: keep it short, outside workdir.
        sock_path = f"/tmp/qemu-{uuid.uuid4().hex[:12]}.sock"
        stderr = (self.workdir / f"{self.name}.qemu.log").open("wb")
        self.proc = subprocess.Popen(
            self.command(sock_path),
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
            start_new_session=True,
        )
        stderr.close()
        self.started_at = time.monotonic()
        deadline = time.monotonic() + 30
        while True:
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(sock_path)
                break
            except OSError:
                s.close()
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise GuestTimeout(f"{self.name}: QEMU did not start: {self._qemu_log()}") from None
                time.sleep(0.05)
        os.unlink(sock_path)
        self._sock = s
        self._reader = threading.Thread(target=self._read, name=f"{self.name}-serial", daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self._sock is not None
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        with self.log_path.open("wb") as log:
            while True:
                try:
                    data = self._sock.recv(65536)
                except OSError:
                    data = b""
                if data:
                    log.write(data)
                    log.flush()
                with self._cond:
                    if not data:
                        self._closed = True
                    else:
                        self._buf += decoder.decode(data)
                    self._cond.notify_all()
                if not data:
                    return

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
                try:
                    os.kill(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        if self._reader is not None:
            self._reader.join(5)

    def __enter__(self) -> Guest:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- console ------------------------------------------------------------------------------------------------

    @property
    def output(self) -> str:
        with self._cond:
            return self._buf

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                m = regex.search(self._buf, self._pos)
                if m:
                    self._pos = m.end()
                    return m
                left = deadline - time.monotonic()
                exited = self.proc is not None and self.proc.poll() is not None
                if left <= 0 or (self._closed and exited):
                    why = "QEMU exited" if exited else f"not seen within {timeout:.0f}s"
                    tail = self._buf[-1500:]
                    raise GuestTimeout(
                        f"{self.name}: {pattern!r} {why} (log {self.log_path}); console tail:\n{tail}\n"
                        f"{self._qemu_log()}"
                    )
                self._cond.wait(min(left, 0.5))

    def send(self, text: str) -> None:
        assert self._sock is not None, "guest not started"
        self._sock.sendall(text.encode())

    def run(self, command: str, timeout: float = 60) -> Tuple[str, int]:
        """Run a shell command on the console; returns (output, exit status).

        The output is taken between two markers the shell echoes; in the typed line they are split by quotes,
        so the terminal's echo of a long (wrapped, redrawn) command line never matches them.
        """
        tag = uuid.uuid4().hex[:8]
        begin, end = f"BEGIN{tag}", f"END{tag}"
        self.send(f"echo {begin[:5]}''{begin[5:]}; {command}; echo {end[:3]}''{end[3:]} $?\n")
        m = self.wait_for(rf"(?s){begin}\r?\n(.*?){end} (\d+)", timeout)
        return m.group(1).replace("\r", "").strip("\n"), int(m.group(2))

    def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            tail = self.output[-1500:]
            raise GuestTimeout(
                f"{self.name}: still running after {timeout:.0f}s; console tail:\n{tail}"
            ) from None

    def _qemu_log(self) -> str:
        path = self.workdir / f"{self.name}.qemu.log"
        try:
            text = path.read_text(errors="replace").strip()
        except OSError:
            return ""
        return f"QEMU said: {text[-800:]}" if text else ""


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL it when the test process dies (prctl(2) PR_SET_PDEATHSIG), so a killed
    test run leaves no QEMU behind."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


# -- acceleration and firmware ---------------------------------------------------------------------------------

_ACCEL: Optional[str] = None


def kvm_works(kernel: Optional[Path] = None, initrd: Optional[Path] = None, timeout: float = 6) -> bool:
    """A short test boot under KVM: the kernel must reach its first console lines (nested KVM often fails)."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK) or shutil.which(QEMU) is None:
        return False
    cmd = [QEMU, "-accel", "kvm", "-m", "128M", "-display", "none", "-vga", "none", "-nodefaults"]
    cmd += ["-no-reboot", "-serial", "stdio"]
    if kernel is not None:
        cmd += ["-kernel", str(kernel), "-append", "console=ttyS0 panic=-1"]
        if initrd is not None:
            cmd += ["-initrd", str(initrd)]
        expect = b"Linux version"
    else:
        expect = b"SeaBIOS"
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen = b""
    deadline = time.monotonic() + timeout
    try:
        os.set_blocking(proc.stdout.fileno(), False)  # type: ignore[union-attr]
        while time.monotonic() < deadline and proc.poll() is None:
            chunk = proc.stdout.read(65536) or b""  # type: ignore[union-attr]
            seen += chunk
            if expect in seen:
                return True
            time.sleep(0.05)
        return False
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def accel() -> str:
    global _ACCEL
    forced = os.environ.get("RESCUE_QEMU_ACCEL")
    if forced in ("kvm", "tcg"):
        return forced
    if _ACCEL is None:
        kernel = _default_kernel()
        _ACCEL = "kvm" if kernel is not None and kvm_works(kernel) else "tcg"
    return _ACCEL


def _default_kernel() -> Optional[Path]:
    """A kernel for the KVM test boot: the rescue image's, when built (iso.mkinitramfs)."""
    path = Path(__file__).resolve().parent.parent / "build" / "out" / "image" / "vmlinuz"
    return path if path.exists() else None


def ovmf() -> Optional[Tuple[Path, Path]]:
    for code, variables in OVMF_CANDIDATES:
        if os.path.exists(code) and os.path.exists(variables):
            return Path(code), Path(variables)
    return None


def uefi_args(workdir: Path, variables: Optional[Path] = None) -> List[str]:
    firmware = ovmf()
    if firmware is None:
        raise FileNotFoundError("OVMF firmware (Debian package ovmf) not found")
    code, template = firmware
    private = variables or Path(workdir) / f"OVMF_VARS-{uuid.uuid4().hex[:8]}.fd"
    if not private.exists():
        shutil.copyfile(template, private)
    return [
        "-machine",
        "q35",
        "-drive",
        f"if=pflash,format=raw,unit=0,readonly=on,file={code}",
        "-drive",
        f"if=pflash,format=raw,unit=1,file={private}",
    ]
