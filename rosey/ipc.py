"""ZeroMQ plumbing shared by the processes: endpoints, socket options, the run-dir lock."""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import IO

import zmq
import zmq.asyncio

from rosey import metrics
from rosey.errors import RoseyError
from rosey.protocol import AnyMessage, DecodeError, Message, decode, encode

HWM = 1000


def endpoint(run_dir: str, name: str) -> str:
    return f"ipc://{Path(run_dir) / name}"


def prepare_run_dir(run_dir: str) -> None:
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    os.chmod(run_dir, 0o700)


class RunDirLocked(RoseyError):
    pass


def lock_run_dir(run_dir: str, owner: str) -> IO[str]:
    """A second bind() on an ipc path silently steals it: only one binder per run dir."""
    handle = open(Path(run_dir) / f"{owner}.lock", "w")  # noqa: SIM115 - held for life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        handle.close()
        raise RunDirLocked(f"another {owner} is running in {run_dir}") from exc
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def router_socket(ctx: zmq.asyncio.Context, address: str) -> zmq.asyncio.Socket:
    sock = ctx.socket(zmq.ROUTER)
    # Without MANDATORY a send to a gone peer vanishes silently; without HANDOVER
    # a restarted peer reusing its identity is ignored.
    sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
    sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
    sock.setsockopt(zmq.SNDHWM, HWM)
    sock.setsockopt(zmq.RCVHWM, HWM)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind(address)
    return sock


def dealer_socket(ctx: zmq.asyncio.Context, address: str, identity: str) -> zmq.asyncio.Socket:
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.IDENTITY, identity.encode())
    sock.setsockopt(zmq.SNDHWM, HWM)
    sock.setsockopt(zmq.RCVHWM, HWM)
    sock.setsockopt(zmq.LINGER, 500)
    sock.setsockopt(zmq.RECONNECT_IVL, 100)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
    sock.connect(address)
    return sock


def decode_or_count(data: bytes, process: str, log: logging.Logger,
                    accept: tuple[type[Message], ...] = (Message,)) -> AnyMessage | None:
    """Decode a frame; a bad one is counted, logged and dropped (never raised).  A valid
    message of a kind this socket does not carry (``accept``) is malformed here too."""
    try:
        msg = decode(data)
    except DecodeError as exc:
        metrics.IPC_DECODE_ERRORS.labels(process).inc()
        log.warning("dropped undecodable IPC frame (%d bytes): %s", len(data), exc)
        return None
    if not isinstance(msg, accept):
        metrics.IPC_DECODE_ERRORS.labels(process).inc()
        log.warning("dropped IPC %s: not carried on this socket", type(msg).__name__)
        return None
    return msg


async def send_to(sock: zmq.asyncio.Socket, identity: bytes, msg: Message) -> bool:
    """Send through a ROUTER; False when the peer is gone or full (never blocks).

    The plain (synchronous, non-blocking) send of the base class: the asyncio wrapper
    would add a future, a lookup of the socket's events and a scheduled callback per frame
    for a send that cannot wait anyway.  A send can consume the edge-triggered wakeup of
    the socket's FD that the pending recv of the same socket waits for, so it is re-armed
    as pyzmq's own send does (the same as conn's ``to_router``)."""
    data = encode(msg)
    try:
        zmq.Socket.send(sock, identity, zmq.SNDMORE | zmq.NOBLOCK)
        zmq.Socket.send(sock, data, zmq.NOBLOCK)
    except (zmq.Again, zmq.ZMQError):
        return False
    finally:
        rearm = getattr(sock, "_schedule_remaining_events", None)
        if rearm is not None:
            rearm()
    return True
