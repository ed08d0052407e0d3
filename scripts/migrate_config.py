#!/usr/bin/env python3
"""Convert a blit v1 daemon config into a blitd v2 config.toml.

The same as "blit migrate-config OLD [-o NEW] ...": this script runs that
command's code from the installed blit package. Run it with the Python of
the environment where blit is installed, such as .venv/bin/python.
"""

import sys

try:
    from blit.cli.migrate import migrate_config_main
except ImportError as error:
    sys.exit(
        f"migrate_config.py: error: cannot import blit ({error}); install it first "
        "(pip install . from the source tree, or scripts/setup.sh) and run this script "
        "with that Python"
    )

if __name__ == "__main__":
    sys.exit(migrate_config_main(sys.argv[1:]))
