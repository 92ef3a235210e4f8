"""``rosey apply``: a changed config reaches the running deployment without a restart.

The config is validated first (a bad one is never signalled: exit 2 with the usual line),
then supervisord sends SIGHUP to conn and router (XML-RPC ``supervisor.signalProcess`` on
the run dir's supervisor.sock). Each re-reads the config and applies the channel diff:
conn joins new channels, lets removed ones drain and leave, restarts a channel whose
connection settings changed, and leaves the others untouched (no rejoin); each logs one line
per change ("channel anime: added").
"""

from __future__ import annotations

import xmlrpc.client
from dataclasses import dataclass, field
from typing import Any

# Who re-reads the config on SIGHUP (the callers and the event listener take theirs from
# the router and from supervisord).
PROGRAMS = ("conn", "router")


@dataclass
class Applied:
    signalled: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def apply(proxy: Any) -> Applied:
    """SIGHUP every program of ``PROGRAMS`` that runs; ``OSError`` when no supervisord."""
    done = Applied()
    for name in PROGRAMS:
        try:
            proxy.supervisor.signalProcess(name, "HUP")
        except xmlrpc.client.Fault as fault:  # NOT_RUNNING, BAD_NAME, …
            done.errors.append(f"{name}: {fault.faultString}")
        else:
            done.signalled.append(name)
    return done
