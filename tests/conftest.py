"""pytest options shared by the suite.

`--tape=DEVICE` runs the tape contract suite against a real device (the drill runs it inside a VM against
/dev/nst0); without it the contract suite runs against the emulated backends only.
"""


def pytest_addoption(parser):
    parser.addoption("--tape", default=None, help="also run the tape contract suite against this device")
