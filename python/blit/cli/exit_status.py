"""Exit statuses of the ``blit`` command, shared by every sub-command."""

OK = 0
"""Every entry was transferred, skipped as up to date, or deleted."""

ERROR = 1
"""The command could not start: invalid arguments, address or source, or an unreachable daemon."""

FAILED_ENTRIES = 2
"""Some entries failed and were named on stderr; the others were done."""

INTERRUPTED = 130
"""Ctrl-C stopped the command (128 + SIGINT, as shells report it)."""

HELP = """\
exit status:
  0    every entry was transferred, skipped as up to date, or deleted
  1    the command could not start: an invalid option, pattern or
       address, a missing source, a daemon that cannot be reached, or
       another error, printed on stderr as "blit: error: MESSAGE"
  2    some entries failed, each named on stderr as
       "blit: failed: PATH: MESSAGE"; the others were transferred
  130  interrupted by Ctrl-C; no partial file is left under its final name
"""

HELP_NO_TRANSFER = """\
exit status:
  0    done
  1    an invalid option or address, a path or module not found, a daemon
       that cannot be reached, or another error, printed on stderr as
       "blit: error: MESSAGE"
  130  interrupted by Ctrl-C
"""
