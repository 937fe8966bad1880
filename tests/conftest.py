"""pytest options shared by the suite.

`--tape=DEVICE` runs the tape contract suite against a real device (the drill runs it inside a VM against
/dev/nst0); without it the contract suite runs against the emulated backends only.
"""

import pytest

from rescue.archive import parallel_extract


def pytest_addoption(parser):
    parser.addoption("--tape", default=None, help="also run the tape contract suite against this device")


@pytest.fixture(params=["one-process", "workers"])
def extract_mode(request, monkeypatch):
    """Run a test with the single-process extractor and again with worker processes writing the files (from
    the first file on: the tests' archives are small).  Modules opt in with
    `pytestmark = pytest.mark.usefixtures("extract_mode")`."""
    if request.param == "workers":
        monkeypatch.setattr(parallel_extract, "default_jobs", lambda: 2)
        monkeypatch.setattr(parallel_extract, "START_AFTER", 0)
    else:
        monkeypatch.setattr(parallel_extract, "default_jobs", lambda: 1)
    return request.param
