"""The base of every wire message (see :mod:`rosey.protocol`). Imports nothing of Rosey."""

from __future__ import annotations

import msgspec

from rosey.errors import RoseyError

PROTOCOL_VERSION = 1


class DecodeError(RoseyError):
    """Bytes that are not a valid message of this protocol version."""


class Message(msgspec.Struct, tag_field="k", kw_only=True, omit_defaults=True):
    v: int = PROTOCOL_VERSION
