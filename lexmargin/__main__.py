"""``python -m lexmargin`` runs the command line (see ``lexmargin.cli``)."""

import sys

from .cli import main

sys.exit(main())
