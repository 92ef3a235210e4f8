"""Relay supervisord's stdout when ours is a socket (systemd's journal stream).

In the foreground, the generated supervisord config logs every program to
``stdout_logfile=/dev/stdout``, and supervisord *opens that path*.  Opening
``/dev/stdout`` fails with ENXIO when fd 1 is a socket, which is what systemd gives a
service with ``StandardOutput=journal``: every program would end in
``spawnerr: unknown error making dispatchers … ENXIO`` and nothing would run.  A pipe
opens fine, so ``rosey run`` then gives supervisord a pipe and copies it to its own stdout.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from typing import IO


def stdout_is_socket(stream: IO[str] | None = None) -> bool:
    try:
        return stat.S_ISSOCK(os.fstat((stream or sys.stdout).fileno()).st_mode)
    except (OSError, ValueError, AttributeError):
        return False


def child_stdout() -> int | None:
    """The ``stdout=`` for supervisord's ``Popen``: a pipe if ours is a socket."""
    return subprocess.PIPE if stdout_is_socket() else None


def start(child: subprocess.Popen[bytes]) -> threading.Thread | None:
    """Copy the child's piped stdout to ours until it closes (None when not piped)."""
    if child.stdout is None:
        return None
    thread = threading.Thread(target=copy, args=(child.stdout, sys.stdout.buffer),
                              name="stdout-relay", daemon=True)
    thread.start()
    return thread


def copy(source: IO[bytes], dest: IO[bytes]) -> None:
    read = getattr(source, "read1", source.read)
    try:
        while chunk := read(65536):
            dest.write(chunk)
            dest.flush()
    except (OSError, ValueError):  # our stdout went away: nothing left to tell
        pass
