"""`rosey run` with stdout on a Unix socket, as under systemd (StandardOutput=journal).

supervisord opens ``stdout_logfile=/dev/stdout`` by path, which fails with ENXIO on a
socket, so without the relay in ``rosey.cli.stdout_relay`` no program would ever start.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from rosey.cli.stdout_relay import copy, stdout_is_socket
from tests.e2e.harness import SCRUBBED_ENV, free_port

ROOT = Path(__file__).resolve().parents[2]


def test_programs_start_and_log_through_a_socket_stdout() -> None:
    home = Path(os.path.realpath("/tmp")) / f"rosey-j{os.getpid()}"
    home.mkdir(exist_ok=True)
    config = home / "config.json"
    config.write_text(json.dumps({
        "domain": f"http://127.0.0.1:{free_port()}", "channel": "testchan",
        "user": ["roseybot", ""], "callers": {"count": 1, "max": 1},
        "metrics": {"enabled": False}, "paths": {"run_dir": "run", "data_dir": "data"}}))
    env = {k: v for k, v in os.environ.items()
           if k not in SCRUBBED_ENV and not k.startswith("ROSEY_")}
    ours, theirs = socket.socketpair()
    proc = subprocess.Popen([sys.executable, "-m", "rosey.cli.main", "--config", str(config),
                             "run"],
                            stdout=theirs.fileno(), stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                            start_new_session=True)
    theirs.close()
    seen = bytearray()
    reader = threading.Thread(target=_read_all, args=(ours, seen), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        wanted = [b"success: router entered RUNNING", b"success: conn entered RUNNING",
                  b"success: caller-0 entered RUNNING", b"conn INFO rosey.conn"]
        while time.monotonic() < deadline and not all(w in seen for w in wanted):
            time.sleep(0.1)
        text = bytes(seen).decode(errors="replace")
        assert all(w in seen for w in wanted), text[-4000:]
        assert "ENXIO" not in text and "spawnerr" not in text
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
        reader.join(timeout=5)
        ours.close()
        shutil.rmtree(home, ignore_errors=True)
    assert code == 0
    assert b"stopped: router (exit status 0)" in seen  # the shutdown reached the socket too


def _read_all(sock: socket.socket, into: bytearray) -> None:
    while chunk := sock.recv(65536):
        into.extend(chunk)


def test_relay_copies_until_eof_and_detects_sockets(tmp_path: Path) -> None:
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"line one\nline two\n")
    os.close(write_fd)
    out = tmp_path / "out"
    with os.fdopen(read_fd, "rb") as source, out.open("wb") as dest:
        copy(source, dest)
    assert out.read_bytes() == b"line one\nline two\n"
    a, b = socket.socketpair()
    with a, b, a.makefile("w") as as_file, out.open("w") as plain:
        assert stdout_is_socket(as_file) is True
        assert stdout_is_socket(plain) is False
