"""supervisord's stdout: relayed when ours is a socket, appended to when it is a file.

In the foreground, the generated supervisord config logs every program to
``stdout_logfile=/dev/stdout``, and supervisord *opens that path*.  Opening
``/dev/stdout`` fails with ENXIO when fd 1 is a socket, which is what systemd gives a
service with ``StandardOutput=journal``: every program would end in
``spawnerr: unknown error making dispatchers … ENXIO`` and nothing would run.  A pipe
opens fine, so ``rosey run`` then gives supervisord a pipe and copies it to its own stdout.

``rosey run > run.log``: the shell opens the file without ``O_APPEND``.  Opening
``/dev/stdout`` (``/proc/self/fd/1``) on a regular file makes a *new* open file with its
own offset: each program's log handler (supervisor opens it ``ab``) appends at the end,
while supervisord's own lines go through the inherited descriptor at an offset that the
programs' writes never move, so they overwrite the programs' lines.  With ``O_APPEND``
set on the inherited descriptor every writer appends, as with ``>>``.
"""

from __future__ import annotations

import fcntl
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


def append_when_file(*streams: IO[str]) -> None:
    """Set ``O_APPEND`` on each stream's descriptor that is a regular file (see above)."""
    for stream in streams:
        try:
            fd = stream.fileno()
            if stat.S_ISREG(os.fstat(fd).st_mode):
                fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_APPEND)
        except (OSError, ValueError, AttributeError):  # closed or not a real file
            continue


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
