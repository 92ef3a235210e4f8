"""The command-shaped model answers, now fakes/command_replies.py (bench.scenarios uses them)."""

from fakes.command_replies import (
    CHANNEL_LINES,
    LONG,
    PM,
    PM_LINES,
    SHORT,
    Outcome,
    answer,
    ask,
    long_answer,
)

__all__ = [  # the old import path, for tests written against it
    "CHANNEL_LINES", "LONG", "PM", "PM_LINES", "SHORT", "Outcome", "answer", "ask",
    "long_answer",
]
