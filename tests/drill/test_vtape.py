"""The virtual tape: the patched tgtd serves an SSC unit over iSCSI on 127.0.0.1 only and stops by its pid."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from drill.vtape import IQN, SEGMENT, VirtualTape
from tests.support import need, need_tool

ROOT = Path(__file__).resolve().parent.parent.parent
TGT = ROOT / "build" / "out" / "tgt"


@pytest.fixture(scope="module")
def tgt_bin():
    built = all((TGT / n).exists() for n in ("tgtd", "tgtadm", "tgtimg"))
    need(built or os.geteuid() == 0, "building the patched tgt needs root the first time (apt-get source)")
    need_tool("gcc", "make", "patch")
    subprocess.run(["bash", str(ROOT / "drill" / "build-tgt.sh")], check=True)
    return TGT


def listening(pid: int) -> list:
    """(address, port) of the TCP sockets process `pid` listens on, from /proc (IPv4 and IPv6)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                cols = line.split()
                local, state, inode = cols[1], cols[3], cols[9]
                if state == "0A" and inode in inodes:  # TCP_LISTEN
                    addr, port = local.split(":")
                    if len(addr) == 8:
                        addr = ".".join(str(int(addr[i : i + 2], 16)) for i in (6, 4, 2, 0))
                    found.append((addr, int(port, 16)))
    return found


def test_the_tape_listens_on_loopback_only_and_stops_by_pid(tgt_bin, tmp_path):
    tape = VirtualTape(tmp_path / "tape.img", tgt_bin)
    tape.create(64)
    with tape:
        pid = tape.proc.pid
        assert listening(pid) == [("127.0.0.1", tape.port)]
        shown = tape.tgtadm("--mode", "target", "--op", "show")
        assert IQN in shown and "Type: tape" in shown and "Backing store type: ssc" in shown
    assert not os.path.exists(f"/proc/{pid}") or "zombie" in Path(f"/proc/{pid}/status").read_text()
    assert tape.proc is None


def test_the_target_offers_256k_segments_and_bursts(tgt_bin, tmp_path):
    with VirtualTape(tmp_path / "tape.img", tgt_bin) as tape:
        params = tape.tgtadm("--mode", "target", "--op", "show", "--tid", "1")
    for name in (
        "MaxRecvDataSegmentLength",
        "MaxXmitDataSegmentLength",
        "FirstBurstLength",
        "MaxBurstLength",
    ):
        assert f"{name}={SEGMENT}" in params


def test_an_iscsi_initiator_on_loopback_sees_a_sequential_access_device(tgt_bin, tmp_path):
    need_tool("iscsi-inq")
    with VirtualTape(tmp_path / "tape.img", tgt_bin) as tape:
        out = subprocess.run(["iscsi-inq", tape.url], capture_output=True, text=True, timeout=30).stdout
    assert "Peripheral Device Type:SEQUENTIAL_ACCESS" in out
    assert "Product:VIRTUAL-TAPE" in out


def test_the_cartridge_persists_across_drive_restarts(tgt_bin, tmp_path):
    image = tmp_path / "tape.img"
    tape = VirtualTape(image, tgt_bin)
    tape.create(64)
    before = image.stat().st_ino
    tape.start()
    tape.stop()
    tape.start()
    try:
        assert image.stat().st_ino == before and str(image) in tape.tgtadm("--mode", "target", "--op", "show")
    finally:
        tape.stop()
