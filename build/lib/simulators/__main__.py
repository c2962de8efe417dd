"""``python -m simulators``."""

import sys

from simulators.app import main

sys.exit(main())
