"""``python -m twin`` = the ``twin`` command."""

import sys

from twin.app.cli import main

sys.exit(main())
