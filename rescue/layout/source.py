"""Where `layout show` and `layout recreate` get a layout and the catalog's usage: a file, or the tape.

Contract: `load_layout_file(path) -> dict` (a layout.json, or a rescue-label.json holding one under "layout",
as `rescue label --json` prints it); `from_tape(device, want_usage) -> (layout, usage or None)` reads the label
(tape file 0) and, when asked, the catalog (tape file 2), and returns `model.usage_by_mount` of its members so
the catalog never has to sit in memory; `usage_from_catalog(layout, path)` does the same for a catalog file.
Errors are one line naming the file or device (LayoutError, exit 2).
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Optional, Tuple

from rescue.layout.model import LayoutError, load, usage_by_mount
from rescue.tape import open_tape
from rescue.tapeset.catalog import open_catalog
from rescue.tapeset.catalog_tape import CATALOG_NAME, read_catalog
from rescue.tapeset.label import read_label


def load_layout_file(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise LayoutError(f"{path}: {e.strerror}") from None
    except ValueError as e:
        raise LayoutError(f"{path}: not JSON ({e})") from None
    if isinstance(data, dict) and "layout" in data and "format" in data and data["format"] != "rescue-layout":
        data = data["layout"]
    return load(data, path)


def usage_from_catalog(layout: dict, path: str) -> dict:
    if os.path.isdir(path):
        path = os.path.join(path, CATALOG_NAME)
    _, members = open_catalog(path)
    return usage_by_mount(layout, members)


def from_tape(device: str, want_usage: bool) -> Tuple[dict, Optional[dict]]:
    with open_tape(device) as tape:
        label = read_label(tape)
        if label is None:
            raise LayoutError(f"{device}: no rescue label in tape file 0, so no layout; give --from FILE")
        if label.layout is None:
            raise LayoutError(f"{device}: the label holds no layout.json; give --from FILE")
        layout = load(label.layout, f"{device}: layout.json")
        usage = None
        if want_usage:
            with tempfile.TemporaryDirectory(prefix="rescue-layout-") as spool:
                files = read_catalog(tape, label.catalog_file, spool)
                usage = usage_from_catalog(layout, files.catalog)
        tape.rewind()
    return layout, usage
