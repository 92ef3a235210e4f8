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
import itertools
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


_tmp_names = itertools.count()


def atomic_write(path: str | Path, data: bytes | str, *, durable: bool = False) -> None:
    """Replace ``path`` with ``data`` so that a reader (or a crash) sees the old file or the
    new one, never half of one: write a sibling temporary file, then rename it over.

    The new file gets the umask's mode, like any file Rosey creates.  ``durable`` also
    fsyncs before the rename (a power cut keeps the new content); without it the data is
    handed to the OS, which survives a crash of the process (a SIGKILL), not of the host.
    Raises ``OSError`` (the temporary file is removed).
    """
    path = Path(path)
    raw = data.encode() if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{next(_tmp_names)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
