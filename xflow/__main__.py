"""``python -m xflow`` = the ``xflow`` command."""
import sys

from xflow.cli import main

sys.exit(main())
