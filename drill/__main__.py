"""`python -m drill`: run the recovery drill (see drill/run.py)."""

import sys

from drill.run import main

sys.exit(main())
