"""The ``blitd`` console script: runs the blit daemon inside the extension.

This is the same daemon code as the native ``blitd`` binary, called in this
process rather than started as another program, so the wheel alone is
enough to serve modules.
"""

from __future__ import annotations

import signal
import sys

from blit._blit import blitd_main


def main() -> None:
    """Run ``blitd`` with the process's command line and exit with its status.

    The daemon stops gracefully on SIGTERM or SIGINT and exits with 0. Run
    ``blitd --help`` for its options and exit statuses.
    """
    # Python's SIGINT handler would raise KeyboardInterrupt once the daemon
    # returns, turning a graceful Ctrl-C shutdown into a traceback and exit
    # status 130. The daemon installs its own SIGTERM and SIGINT handlers,
    # which stay in effect after the default is restored here.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    sys.exit(blitd_main(sys.argv))


if __name__ == "__main__":
    main()
