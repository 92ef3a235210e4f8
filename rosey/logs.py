"""Logging setup: one line per event, with the process name, to stderr (supervisord
captures it; under systemd it reaches the journal)."""

from __future__ import annotations

import logging
import sys


def setup(level: str, process: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(
        f"%(asctime)s {process} %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # socket.io and engine.io log every packet at INFO; frame logging is our own switch.
    for noisy in ("socketio", "engineio", "httpx", "httpx2", "httpcore", "httpcore2", "openai",
                  "aiohttp.access", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
