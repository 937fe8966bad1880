"""The runtime must work on the python3 of any rescue system from 3.9 on: vermin checks the package statically."""

import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "rescue"


def test_rescue_package_needs_nothing_newer_than_python_3_9():
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "vermin"),
            "-q",
            "--no-tips",
            "--violations",
            "-t=3.9-",
            "--eval-annotations",
            "--backport",
            "dataclasses",
            str(PACKAGE),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_rescue_package_imports_nothing_outside_the_standard_library():
    stdlib = set(sys.stdlib_module_names)
    third_party = []
    for path in PACKAGE.rglob("*.py"):
        for line in path.read_text().splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] in ("import", "from") and not line.startswith((" ", "\t")):
                top = words[1].split(".")[0].rstrip(",")
                if top and top not in stdlib and top != "rescue" and top != "__future__":
                    third_party.append(f"{path.name}: {line.strip()}")
    assert third_party == []
