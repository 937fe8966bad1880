"""rescue: bare-metal recovery from tape.

A rescue tape is a GNU tar tape: a label (tape file 0), the archive (file 1) and a catalog with checksums and
record positions (file 2).  Everything here runs on the standard library of Python 3.9 or newer.
"""

__version__ = "0.1.0"
