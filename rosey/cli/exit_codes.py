"""Every exit code of the ``rosey`` command, in one place (docs/CLI.md lists them all).

A script tells outcomes apart by these numbers, so they never change meaning; a new
outcome gets a new name and number here, a row in docs/CLI.md, and the test
(tests/unit/test_cli_doc.py) fails until both agree.
"""

from __future__ import annotations

OK = 0
# The command ran but did not get what was asked: doctor found a problem, ctl was refused,
# scale did not settle, backup had no database yet, run found rosey already running.
FAILED = 1
# Bad config or usage (argparse also exits 2 on a bad option), or an input file named on
# the command line (`rosey replay LOG`) that is missing or unreadable: one line names the fix.
CONFIG = 2
# `rosey ask`: the model call failed; the fallback the channel would see was printed.
MODEL_FAILED = 3
# `rosey status`: supervisord is not running in paths.run_dir.
NOT_RUNNING = 4
# `rosey status`: conn gave up connecting (ban, wrong password, registered name, missing
# channel); the status output says why and what to change.
CONN_STOPPED = 5

ALL: dict[str, int] = {name: value for name, value in globals().items()
                       if name.isupper() and isinstance(value, int)}
