"""``python -m spica.skywatcher`` (``bin/spica skywatcher``): see :mod:`spica.skywatcher.cli`."""

import sys

from spica.skywatcher.cli import main

sys.exit(main())
