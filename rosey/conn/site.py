"""Where a CyTube channel lives: its socket server and its chat length limit (HTTP).

The first half of joining a channel, the same for conn and ``rosey doctor``: GET
``/socketconfig/<channel>.json`` for the socket.io server (a 404 means there is no such
channel: fatal), then, unless ``conn.message_length`` is set, the channel page's chat input
for the server's message limit (PROTOCOL §2, §6.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass
from typing import Literal

import aiohttp

from rosey.config_schema import MESSAGE_LENGTH_DEFAULT, MESSAGE_LENGTH_MAX, MESSAGE_LENGTH_MIN
from rosey.errors import RoseyError

_CHATLINE = re.compile(r"<input\b[^>]*\bid=[\"']chatline[\"'][^>]*>", re.IGNORECASE)
_MAXLENGTH = re.compile(r"\bmaxlength=[\"']?(\d+)", re.IGNORECASE)

Failure = Literal["no_channel", "http", "unreachable", "no_servers"]


class SiteError(RoseyError):
    """The lookup failed; ``kind`` says how (only ``no_channel`` is beyond a retry)."""

    def __init__(self, kind: Failure, detail: str) -> None:
        super().__init__(detail)
        self.kind, self.detail = kind, detail


@dataclass(frozen=True)
class Site:
    socketconfig: str  # the URL asked
    server: str  # the socket.io server to connect to
    page: str  # the channel page
    maxlength: int | None  # its chat input's maxlength, None when not read or not shown


def chat_maxlength(page: str) -> int | None:
    """The ``maxlength`` of the channel page's chat input (the server's message limit)."""
    tag = _CHATLINE.search(page)
    found = _MAXLENGTH.search(tag.group(0)) if tag else None
    return int(found.group(1)) if found else None


def message_limit(found: int | None) -> int:
    """What replies are split to: a believable page maxlength, else CyTube's default."""
    if found and MESSAGE_LENGTH_MIN <= found <= MESSAGE_LENGTH_MAX:
        return found
    return MESSAGE_LENGTH_DEFAULT


async def lookup(domain: str, channel: str, timeout: float, read_page: bool = True) -> Site:
    """The channel's socket server (secure first) and, with ``read_page``, its maxlength."""
    base = domain.rstrip("/")
    url = f"{base}/socketconfig/{channel}.json"
    page = f"{base}/r/{channel}"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http:
        try:
            async with http.get(url) as resp:
                if resp.status == 404:
                    raise SiteError("no_channel", f"{url}: channel {channel!r} does not exist "
                                    f"at {domain} (404)")
                if resp.status != 200:
                    raise SiteError("http", f"{url}: HTTP {resp.status}")
                body = await resp.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise SiteError("unreachable", f"cannot reach {url} ({type(exc).__name__}: "
                            f"{exc})") from exc
        servers = body.get("servers") if isinstance(body, dict) else None
        usable = [s for s in servers or [] if isinstance(s, dict) and s.get("url")]
        if not usable:
            raise SiteError("no_servers", f"{url} lists no socket servers")
        server = str(([s for s in usable if s.get("secure")] or usable)[0]["url"])
        found = await _page_maxlength(http, page) if read_page else None
    return Site(socketconfig=url, server=server, page=page, maxlength=found)


async def _page_maxlength(http: aiohttp.ClientSession, url: str) -> int | None:
    with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError, UnicodeError):
        async with http.get(url) as resp:
            if resp.status == 200:
                return chat_maxlength(await resp.text())
    return None
