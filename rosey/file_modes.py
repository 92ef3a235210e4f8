"""Who may read what Rosey writes: one umask for every file and folder it creates.

The database holds every chat line and conversation, the run dir the control sockets, so
by default only the bot's own user may read them: folders 0700, files 0600.  ``rosey``
sets the umask once at start (``--umask``, default 077) and every process supervisord
starts inherits it, so SQLite's ``-wal``/``-shm``, backups, logs and sockets follow
without each writer having to remember.  An operator who wants a group to read the data
(a backup user) says so with ``rosey --umask 027 run`` (folders 0750, files 0640).
"""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path

DEFAULT_UMASK = 0o077


def parse_umask(text: str) -> int:
    """argparse type: an octal umask that leaves the owner able to read and write."""
    try:
        mask = int(text, 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an octal umask (e.g. 077)") from None
    if not 0 <= mask <= 0o777 or mask & 0o700:
        raise argparse.ArgumentTypeError(
            f"{text}: the owner must keep read, write and search (use 077, 027 or 022)")
    return mask


def current_umask() -> int:
    mask = os.umask(DEFAULT_UMASK)  # reading the umask means setting it: put it back
    os.umask(mask)
    return mask


def dir_mode() -> int:
    return 0o777 & ~current_umask()


def file_mode() -> int:
    return 0o666 & ~current_umask()


def private_dir(path: str | Path) -> Path:
    """Create ``path`` (and parents) and give it the umask's folder mode, also when it
    already existed with a looser one (a data dir made by an older version)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    wanted = dir_mode()
    mode = path.stat().st_mode & 0o777
    if mode & ~wanted:
        with contextlib.suppress(PermissionError):  # not ours (a shared folder): leave it
            os.chmod(path, mode & wanted)
    return path


def tighten(*paths: str | Path) -> None:
    """Give the existing ones of ``paths`` the umask's file mode (never looser than now)."""
    wanted = file_mode()
    for path in paths:
        try:
            mode = os.stat(path).st_mode & 0o777
        except FileNotFoundError:
            continue
        if mode & ~wanted:
            with contextlib.suppress(PermissionError):
                os.chmod(path, mode & wanted)
