"""Run the ``blit`` command as ``python -m blit``."""

import sys

from blit.cli import main

if __name__ == "__main__":
    sys.exit(main())
