"""One socket.io connection to a CyTube server: connect, frames in, emits out (no channel logic).

The second half of joining a channel, the same for conn and ``rosey doctor``: the server
answers a refused connect with ``connect_error {"message": …}`` ("Rate limit exceeded",
"You are banned from the server"), which python-socketio does not put in its exception, so
it is captured here and classified once (``refusals.connect_reason``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import socketio

from rosey.conn import refusals
from rosey.errors import RoseyError

log = logging.getLogger("rosey.conn")

_SECRET_KEYS = ("pw", "password")

FrameHandler = Callable[[str, Any], Awaitable[None]]


def redact(event: str, data: Any) -> Any:
    """A frame as it may be logged: passwords never reach the log (docs/DECISIONS.md)."""
    if event == "channelPassword":
        return "***"
    if isinstance(data, dict) and any(k in data for k in _SECRET_KEYS):
        return {k: ("***" if k in _SECRET_KEYS and v else v) for k, v in data.items()}
    return data


class Refused(RoseyError):
    """The server refused the connection; ``reason`` classifies what it said."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text
        self.reason: refusals.Reason = refusals.connect_reason(text)


class Socket:
    """A socket.io client without auto-reconnect (the caller's backoff decides when)."""

    def __init__(self, on_frame: FrameHandler,
                 on_connect: Callable[[], Awaitable[None]] | None = None,
                 log_frames: bool = False) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.closed = asyncio.Event()  # set when the server or we hung up
        self.log_frames = log_frames
        self._refusal = ""
        self.sio.on("connect_error", self._on_connect_error)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("*", on_frame)
        if on_connect is not None:
            self.sio.on("connect", on_connect)

    async def connect(self, url: str, timeout: float) -> None:
        """Raises ``Refused``: what the server said, or why no server answered."""
        try:
            await self.sio.connect(url, transports=["websocket"], wait_timeout=timeout)
        except (socketio.exceptions.ConnectionError, OSError) as exc:
            raise Refused(self._refusal or str(exc)) from exc

    @property
    def usable(self) -> bool:
        # not sio.connected: that is only set after the connect handler, which joins
        return "/" in self.sio.namespaces

    async def emit(self, event: str, data: Any) -> bool:
        """False when there is no live socket to emit on (nothing was sent)."""
        if not self.usable:
            return False
        if self.log_frames:
            log.info("frame out %s %s", event, redact(event, data))
        try:
            await self.sio.emit(event, data)
        except socketio.exceptions.SocketIOError:
            return False
        return True

    async def close(self) -> None:
        try:
            await self.sio.disconnect()
        except Exception as exc:  # a half-dead socket: it is going away anyway
            log.debug("disconnect: %s", exc)

    async def _on_connect_error(self, data: Any = None) -> None:
        message = data.get("message") if isinstance(data, dict) else data
        self._refusal = str(message or "")

    async def _on_disconnect(self, *reason: Any) -> None:
        if self.log_frames:
            log.info("frame in disconnect %s", reason)
        self.closed.set()
