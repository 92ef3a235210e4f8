"""The deployment runner, now fakes/deployment.py (the benches use it too)."""

from fakes.deployment import (
    BOT,
    BOT_PW,
    SCRUBBED_ENV,
    SETTLE,
    Rosey,
    bot_lines,
    deployed,
    expect_lines,
    free_port,
    free_port_range,
    merge,
    run_rosey,
    wait_joined,
)

__all__ = [  # the old import path, for tests written against it
    "BOT", "BOT_PW", "SCRUBBED_ENV", "SETTLE", "Rosey", "bot_lines", "deployed", "expect_lines",
    "free_port", "free_port_range", "merge", "run_rosey", "wait_joined",
]
