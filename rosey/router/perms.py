"""CyTube's permission rules for the bot's own actions (src/channel/permissions.js). Pure.

A value in ``setPermissions`` is the minimum rank for that action. While the playlist is
unlocked, a ``playlist…`` action is also allowed at the rank of its ``o…`` twin.
"""

from __future__ import annotations

# PROTOCOL §4: the defaults of a new channel, used until the server sends setPermissions.
DEFAULTS: dict[str, float] = {
    "seeplaylist": -1, "playlistadd": 1.5, "playlistnext": 1.5, "playlistmove": 1.5,
    "playlistdelete": 2, "playlistjump": 1.5, "playlistaddlist": 1.5, "oplaylistadd": -1,
    "oplaylistnext": 1.5, "oplaylistmove": 1.5, "oplaylistdelete": 2, "oplaylistjump": 1.5,
    "oplaylistaddlist": 1.5, "playlistaddcustom": 3, "playlistaddrawfile": 2,
    "playlistaddlive": 1.5, "addnontemp": 2, "settemp": 2, "voteskip": -1, "mute": 1.5,
    "kick": 1.5, "chat": 0,
}
LIVE_TYPES = frozenset({"li", "tw", "rt", "cu", "hl"})  # src/utilities.js isLive


def allowed(node: str, rank: float, permissions: dict[str, float], locked: bool) -> bool:
    def need(key: str) -> float:
        return permissions.get(key, DEFAULTS.get(key, 0.0))

    if node.startswith("playlist") and not locked and rank >= need("o" + node):
        return True
    return rank >= need(node)


def needed(node: str, permissions: dict[str, float], locked: bool) -> float:
    """The lowest rank that may do ``node`` now."""
    value = permissions.get(node, DEFAULTS.get(node, 0.0))
    if node.startswith("playlist") and not locked:
        value = min(value, permissions.get("o" + node, DEFAULTS.get("o" + node, value)))
    return value


def add_nodes(media_type: str, pos: str) -> list[str]:
    """What ``queue`` checks (src/channel/playlist.js handleQueue), in its order."""
    nodes = ["playlistadd"]
    if pos == "next":
        nodes.append("playlistnext")
    if media_type == "yp":
        nodes.append("playlistaddlist")
    elif media_type == "cu":
        nodes.append("playlistaddcustom")
    elif media_type in ("fi", "cm"):
        nodes.append("playlistaddrawfile")
    if media_type in LIVE_TYPES:
        nodes.append("playlistaddlive")
    return nodes
