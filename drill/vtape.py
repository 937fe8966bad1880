"""A virtual SCSI tape: the patched tgtd serving one SSC logical unit on 127.0.0.1, backed by a file.

Contract:
- `VirtualTape(image, tgt_bin)` holds a tape image (made with `tgtimg` when missing) and, once `start()`ed, a
  tgtd process that listens on 127.0.0.1 only, on a free port, with its control socket in a private temporary
  directory (TGT_IPC_SOCKET), so it never meets a system tgtd.  `stop()` ends that process by its pid.
- `qemu_args(drive_id)` gives the QEMU arguments that attach the tape through QEMU's iSCSI initiator to a
  virtio-scsi controller as `scsi-generic`, so the guest's st(4) driver sees a real tape (/dev/nst0).
- The image persists across `start()`/`stop()` and across VMs: it is the tape cartridge.

tgt's iSCSI defaults (8 KiB data segments, 64 KiB first burst) made writes 3-4x slower than 256 KiB, so the target
is set to 256 KiB segments and bursts (RFC 7143 13.12-13.14).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import List, Optional

IQN = "iqn.2026-01.org.rescue:drill.tape"
SEGMENT = 256 * 1024
ISCSI_PARAMS = {
    "MaxRecvDataSegmentLength": SEGMENT,
    "MaxXmitDataSegmentLength": SEGMENT,
    "FirstBurstLength": SEGMENT,
    "MaxBurstLength": SEGMENT,
}


class VirtualTapeError(RuntimeError):
    """tgtd or tgtadm failed; the message carries their output."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_image(tgtimg: Path, image: Path, size_mb: int, barcode: str = "DRILL001") -> None:
    """A new, blank tape cartridge image (tgtimg writes the MAM and the BOT/EOD headers)."""
    image.parent.mkdir(parents=True, exist_ok=True)
    if image.exists():
        image.unlink()
    run(
        [
            str(tgtimg),
            "--op",
            "new",
            "--device-type",
            "tape",
            f"--barcode={barcode}",
            f"--size={size_mb}",
            "--type=data",
            f"--file={image}",
            "--thin-provisioning",
        ]
    )


def run(argv: List[str], env: Optional[dict] = None) -> str:
    proc = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise VirtualTapeError(f"{' '.join(argv)}: exit {proc.returncode}: {proc.stdout.strip()}")
    return proc.stdout


class VirtualTape:
    def __init__(self, image: Path, tgt_bin: Path, port: Optional[int] = None):
        self.image = Path(image)
        self.tgt_bin = Path(tgt_bin)
        self.port = port
        self.proc: Optional[subprocess.Popen] = None
        self._tmp: Optional[tempfile.TemporaryDirectory] = None
        self.log_path: Optional[Path] = None

    # the cartridge
    def create(self, size_mb: int = 2048) -> None:
        make_image(self.tgt_bin / "tgtimg", self.image, size_mb)

    # the daemon
    @property
    def env(self) -> dict:
        assert self._tmp is not None, "not started"
        env = dict(os.environ)
        env["TGT_IPC_SOCKET"] = os.path.join(self._tmp.name, "socket")
        return env

    def tgtadm(self, *args: str) -> str:
        return run([str(self.tgt_bin / "tgtadm"), "--lld", "iscsi", *args], env=self.env)

    def start(self) -> VirtualTape:
        if self.proc is not None:
            return self
        if not self.image.exists():
            self.create()
        self._tmp = tempfile.TemporaryDirectory(prefix="vtape-")
        self.port = self.port or free_port()
        self.log_path = Path(self._tmp.name) / "tgtd.log"
        log = open(self.log_path, "wb")
        # -f: foreground, logs to stderr; portal= restricts the listener to loopback.
        self.proc = subprocess.Popen(
            [str(self.tgt_bin / "tgtd"), "-f", "--iscsi", f"portal=127.0.0.1:{self.port}"],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        try:
            self._wait_ready()
            self.tgtadm("--mode", "target", "--op", "new", "--tid", "1", "--targetname", IQN)
            self.tgtadm(
                "--mode",
                "logicalunit",
                "--op",
                "new",
                "--tid",
                "1",
                "--lun",
                "1",
                "--device-type",
                "tape",
                "--bstype",
                "ssc",
                "--backing-store",
                str(self.image),
            )
            for name, value in ISCSI_PARAMS.items():
                self.tgtadm(
                    "--mode", "target", "--op", "update", "--tid", "1", "--name", name, "--value", str(value)
                )
            self.tgtadm("--mode", "target", "--op", "bind", "--tid", "1", "--initiator-address", "127.0.0.1")
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise VirtualTapeError(f"tgtd exited with {self.proc.returncode}: {self.log()}")
            try:
                self.tgtadm("--mode", "target", "--op", "show")
            except VirtualTapeError:
                time.sleep(0.05)
                continue
            with contextlib.closing(socket.socket()) as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise VirtualTapeError(f"tgtd did not come up on 127.0.0.1:{self.port}: {self.log()}")

    def log(self) -> str:
        if self.log_path and self.log_path.exists():
            return self.log_path.read_text(errors="replace")[-4000:]
        return ""

    def stop(self) -> None:
        """End our tgtd: the shutdown tgt documents (system offline, target deleted, system deleted; tgtd
        ignores SIGTERM), then SIGKILL by its pid if it lingers; drop the control socket directory."""
        if self.proc is not None:
            if self.proc.poll() is None:
                with contextlib.suppress(VirtualTapeError):
                    self.tgtadm("--mode", "system", "--op", "update", "--name", "State", "--value", "offline")
                    self.tgtadm("--mode", "target", "--op", "delete", "--force", "--tid", "1")
                    self.tgtadm("--mode", "system", "--op", "delete")
                for sig, wait in ((None, 5), (signal.SIGKILL, 10)):
                    if sig is not None and self.proc.poll() is None:
                        os.kill(self.proc.pid, sig)
                    try:
                        self.proc.wait(timeout=wait)
                        break
                    except subprocess.TimeoutExpired:
                        continue
            self.proc = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> VirtualTape:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # the initiator side
    @property
    def url(self) -> str:
        return f"iscsi://127.0.0.1:{self.port}/{IQN}/1"

    def qemu_args(self, drive_id: str = "tape") -> List[str]:
        """QEMU options attaching the tape as a pass-through SCSI device (the guest sees /dev/nst0)."""
        return [
            "-device",
            "virtio-scsi-pci,id=scsi0",
            "-drive",
            f"file={self.url},if=none,id={drive_id},format=raw",
            "-device",
            f"scsi-generic,drive={drive_id},bus=scsi0.0",
        ]
