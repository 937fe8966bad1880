"""`python -m rescue` and the entry point of rescue.pyz."""

import sys

from rescue.cli import main

if __name__ == "__main__":
    sys.exit(main())
