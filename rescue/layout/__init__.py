"""The machine's storage: capture it into the label, show it, and recreate it on (other) disks.

Modules: `mounts` (mountinfo, the minimal layout and pseudo filesystems the backup leaves out), `tools` (running
read-only tools), `parse_disks`, `parse_stack`, `parse_fs` (pure parsers of the tools' output), `capture` (the
full layout, docs/layout-format.md), `boot` (firmware and bootloader facts), `model` (reading a layout and its
dependency tree), `show` (the tree with the catalog's data per mount point), `plan` (pure: what recreate will run),
`recreate` (refusals, confirmation, running the plan, checks, mounts).

The backup job calls `backup_layout(root)` (the capture, never failing the backup) and `pseudo_mounts(read_mounts(), root)`.
"""

from rescue.layout.capture import FORMAT, VERSION, backup_layout, capture
from rescue.layout.mounts import (
    MINIMAL_FORMAT,
    PSEUDO_FSTYPES,
    minimal_layout,
    parse_mountinfo,
    pseudo_mounts,
    read_mounts,
)

__all__ = [
    "FORMAT",
    "VERSION",
    "MINIMAL_FORMAT",
    "PSEUDO_FSTYPES",
    "backup_layout",
    "capture",
    "minimal_layout",
    "parse_mountinfo",
    "pseudo_mounts",
    "read_mounts",
]
