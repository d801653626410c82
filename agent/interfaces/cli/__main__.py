"""`python -m agent.interfaces.cli` runs the `pixloop` command."""

import sys

from agent.interfaces.cli import main

sys.exit(main())
