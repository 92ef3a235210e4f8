"""Client side of the router's control socket (``rosey ctl``)."""

from __future__ import annotations

import zmq

from rosey.ipc import endpoint
from rosey.protocol import CtlReply, CtlRequest, DecodeError, decode, encode


def send_command(run_dir: str, words: list[str], timeout: float = 5.0,
                 channel: str = "") -> tuple[bool, str]:
    """One command for the router; ``channel`` "" means its only channel."""
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint(run_dir, "control"))
        sock.send(encode(CtlRequest(command=words[0], args=words[1:], channel=channel)))
        if not sock.poll(int(timeout * 1000)):
            return False, f"no answer from the router within {timeout:g} s (is rosey running?)"
        try:
            reply = decode(sock.recv())
        except DecodeError as exc:
            return False, f"bad reply from the router: {exc}"
        if not isinstance(reply, CtlReply):
            return False, f"unexpected reply {type(reply).__name__}"
        return reply.ok, reply.text
    finally:
        sock.close()
