"""`python -m core.cli`: the same as the `fewlabel` command."""

import sys

from core.cli import main

sys.exit(main())
