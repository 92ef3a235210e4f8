"""The one exception root: ``except RoseyError`` catches every problem Rosey itself raises.

Each process still raises its own kind (a bad frame, a failed provider call, a bad
config); they share this root so the CLI and the service loops can tell "ours, already
phrased for the operator" from a bug.  Only the kernel-wide kinds live here; the others
stay beside the code that raises them and derive from ``RoseyError``.
"""

from __future__ import annotations


class RoseyError(Exception):
    """Something Rosey detected and phrased itself (not a bug)."""


class ConfigError(RoseyError):
    """A config problem, already phrased for the operator: ``path: problem; fix``."""
