"""rescue.tape.mtio computes what <sys/mtio.h> defines: a C program compiled against the header prints sizes,
offsets, ioctl request numbers, op codes and status bits, and every one must match."""

from __future__ import annotations

import subprocess

from rescue.tape import mtio
from tests.support import need_tool

OPS = list(mtio.OP_NAMES.values())
BITS = [f"GMT_{word}" for word, _ in mtio.GMT_WORDS]
ONLY_IN_LINUX_MTIO_H = {
    "MTWEOFI",
    "GMT_CLN",
}  # glibc's <sys/mtio.h> lags <linux/mtio.h>: compared when present
CONSTANTS = [
    "MT_ISSCSI1",
    "MT_ISSCSI2",
    "MT_ST_BLKSIZE_SHIFT",
    "MT_ST_BLKSIZE_MASK",
    "MT_ST_DENSITY_SHIFT",
    "MT_ST_DENSITY_MASK",
    "MT_ST_SOFTERR_SHIFT",
    "MT_ST_SOFTERR_MASK",
]


def probe_source() -> str:
    lines = [
        "#include <stdio.h>",
        "#include <stddef.h>",
        "#include <sys/ioctl.h>",
        "#include <sys/mtio.h>",
        '#define P(name, value) printf("%s %lu\\n", name, (unsigned long)(value))',
        "int main(void) {",
        'P("sizeof_mtop", sizeof(struct mtop));',
        'P("sizeof_mtget", sizeof(struct mtget));',
        'P("sizeof_mtpos", sizeof(struct mtpos));',
        'P("MTIOCTOP", MTIOCTOP);',
        'P("MTIOCGET", MTIOCGET);',
        'P("MTIOCPOS", MTIOCPOS);',
    ]
    for field in mtio.MTOP_OFFSETS:
        lines.append(f'P("mtop.{field}", offsetof(struct mtop, {field}));')
    for field in mtio.MTGET_OFFSETS:
        lines.append(f'P("mtget.{field}", offsetof(struct mtget, {field}));')
    lines.append('P("mtpos.mt_blkno", offsetof(struct mtpos, mt_blkno));')
    for name in OPS + CONSTANTS + BITS:
        value = f"{name}(0xffffffffUL)" if name.startswith("GMT_") else name
        lines += [f"#ifdef {name}", f'P("{name}", {value});', "#endif"]
    lines.append("return 0; }")
    return "\n".join(lines) + "\n"


def test_structs_ioctls_and_codes_match_the_c_header(tmp_path):
    need_tool("gcc")
    src = tmp_path / "probe.c"
    src.write_text(probe_source())
    exe = tmp_path / "probe"
    cc = subprocess.run(["gcc", "-Wall", "-o", str(exe), str(src)], capture_output=True, text=True)
    assert cc.returncode == 0, cc.stderr
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    seen = {name: int(value) for name, value in (line.split() for line in out.splitlines())}
    expected = {
        "sizeof_mtop": mtio.MTOP.size,
        "sizeof_mtget": mtio.MTGET.size,
        "sizeof_mtpos": mtio.MTPOS.size,
        "MTIOCTOP": mtio.MTIOCTOP,
        "MTIOCGET": mtio.MTIOCGET,
        "MTIOCPOS": mtio.MTIOCPOS,
        "mtpos.mt_blkno": mtio.MTPOS_OFFSETS["mt_blkno"],
    }
    expected.update({f"mtop.{k}": v for k, v in mtio.MTOP_OFFSETS.items()})
    expected.update({f"mtget.{k}": v for k, v in mtio.MTGET_OFFSETS.items()})
    expected.update({name: getattr(mtio, name) for name in OPS + CONSTANTS + BITS})
    for name in ONLY_IN_LINUX_MTIO_H - set(seen):
        del expected[name]
    assert {k: seen.get(k) for k in expected} == expected
    assert len(expected) >= 68  # sizes, offsets, requests, every op code and status bit
