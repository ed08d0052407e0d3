"""Migration from blit v1 to v2: daemon configs, addresses and shell scripts.

- :mod:`blit.migrate.rsyncd` reads a v1 config, an rsyncd.conf-style INI
  file read with rsyncd's rules.
- :mod:`blit.migrate.config` converts it into a blitd v2 ``config.toml``,
  and :mod:`blit.migrate.v2config` validates the result with the daemon's
  own parser and writes it.
- :mod:`blit.migrate.addresses` converts v1 addresses (``HOST:MODULE/PATH``,
  ``HOST::MODULE/PATH``, ``rsync://HOST/MODULE/PATH``) into ``blit://`` ones.
- :mod:`blit.migrate.scripts` rewrites v1 ``blit SRC DST [--mir]`` command
  lines in shell scripts.

The ``blit migrate-config`` and ``blit migrate-url`` commands
(:mod:`blit.cli.migrate`) and ``scripts/migrate_config.py`` wrap these
modules. docs/migration_v1_to_v2.md is the user guide.
"""

from __future__ import annotations

from blit.migrate.report import Location, Report

__all__ = ["Location", "Report"]
