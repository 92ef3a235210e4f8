"""Media links -> CyTube ``{id, type}``, as CyTube's own web client does it. Pure.

A port of ``parseMediaLink`` in ``www/js/util.js`` of calzoneman/sync (CyTube 3.86, commit
227244e2), including its ``switch`` fall-throughs, plus the checks the client's "add" button
makes before it emits ``queue`` (``www/js/ui.js``: raw files must be https, no
kissanime/mega.nz). The server looks the id up; this only names it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from rosey.errors import RoseyError

UNKNOWN = ("Could not determine video type. Check https://git.io/fjtOK for a list of "
           "supported media providers.")
LIVESTREAM = ("This format of Livestream.com link is not supported. You must use one that has "
              "the numeric account ID.")
BAD_PLAYLIST = ("Invalid YouTube Playlist ID.  Note that only regular user-created playlists "
                "are supported.")
_YP = re.compile(r"^(PL[a-zA-Z0-9_-]{32}|PL[A-F0-9]{16}|OLA[a-zA-Z0-9_-]{38})$")
_SHORT = re.compile(r"^[a-z]{2}:")
_PEERTUBE = re.compile(r"(?:/w/|/videos/watch/)(?:(?P<short>[a-zA-Z0-9]{22})|"
                       r"(?P<long>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}))")
_ODYSEE = re.compile(r"/@(?P<user>[^:]+)(?::\w)?/(?P<video>[^:]+)")
_LIVESTREAM = re.compile(r"/accounts/(?P<account>[0-9]+)/events/(?P<event>[0-9]+)")


class MediaLinkError(RoseyError, ValueError):
    """A link CyTube's client would refuse; the message is the client's own."""


@dataclass(frozen=True, slots=True)
class MediaLink:
    id: str
    type: str


def _check_yp(playlist_id: str | None) -> str:
    if playlist_id is None or not _YP.match(playlist_id):
        raise MediaLinkError(BAD_PLAYLIST)
    return playlist_id


def _first(pattern: str, text: str) -> str:
    found = re.match(pattern, text)
    if found is None:
        raise MediaLinkError(UNKNOWN)
    return found.group(1)


def _short_code(url: str) -> MediaLink:
    kind, rest = url[:2], url[3:]
    if kind == "dm":  # "So we still trim DailyMotion URLs"
        return MediaLink(_first(r"([^?&#_]+)", rest), kind)
    if kind in ("fi", "cm"):  # raw files keep the query string
        return MediaLink(rest, kind)
    if kind == "yp":
        return MediaLink(_check_yp(rest), kind)
    return MediaLink(_first(r"([^?&#]+)", rest), kind)


def _param(query: str, name: str) -> str | None:
    values = parse_qs(query, keep_blank_values=True).get(name)
    return values[0] if values else None


def _by_host(host: str, path: str, query: str, url: str) -> MediaLink | None:
    """The ``switch`` on the host name; ``fall`` carries JavaScript's fall-through."""
    fall = False
    if host == "youtube.com":
        if path == "/watch":
            return MediaLink(_param(query, "v") or "", "yt")
        if path.startswith("/shorts/"):
            return MediaLink(path[8:19], "yt")
        if path == "/playlist":
            return MediaLink(_check_yp(_param(query, "list")), "yp")
        fall = True
    if fall or host == "youtu.be":
        return MediaLink(path[1:], "yt")
    if host == "twitch.tv":
        if "/clip/" in path:
            return MediaLink(path.split("/")[-1], "tc")
        if path.startswith("/videos/"):
            return MediaLink(f"v{path.split('/')[-1]}", "tv")
        return MediaLink(path[1:], "tw")
    if host == "clips.twitch.tv":
        return MediaLink(path[1:], "tc")
    if host == "livestream.com":
        if not path.startswith("/accounts/"):
            raise MediaLinkError(LIVESTREAM)
        found = _LIVESTREAM.search(path)
        if found is None:
            raise MediaLinkError(LIVESTREAM)  # the client throws a TypeError here
        return MediaLink(f"{found['account']};{found['event']}", "li")
    if host == "vimeo.com":
        return MediaLink(path[1:], "vi")
    if host == "dailymotion.com":
        return MediaLink(path[7:], "dm")
    if host == "soundcloud.com":
        return MediaLink(url, "sc")
    if host == "streamable.com":
        return MediaLink(path[1:], "sb")
    chain = ("docs.google.com", "drive.google.com", "bitchute.com", "nicovideo.jp", "odysee.com")
    if host not in chain:
        return None
    at = chain.index(host)
    if at <= 1:
        if path.startswith("/file/"):
            return MediaLink(path[8:].split("/")[0], "gd")
        if path == "/open":
            return MediaLink(_param(query, "id") or "", "gd")
    if at <= 2 and path.startswith("/video/"):
        return MediaLink(path[7:].split("/")[0], "bc")
    if at <= 3 and path.startswith("/watch/"):
        return MediaLink(path[7:].split("/")[0], "nv")
    found = _ODYSEE.search(path)
    return MediaLink(f"{found['user']};{found['video']}", "od") if found else None


def parse_media_link(url: str) -> MediaLink:
    """``{id, type}`` for a link, or :class:`MediaLinkError` with the client's message."""
    url = url.strip()
    if _SHORT.match(url):
        return _short_code(url)
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        raise MediaLinkError(UNKNOWN)
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    path = parts.path or "/"
    if scheme == "rtmp":
        return MediaLink(url, "rt")
    if path.endswith(".m3u8"):
        return MediaLink(url, "hl")
    if path.endswith(".json"):
        return MediaLink(url, "cm")
    found = _by_host(host.replace("www.", "", 1), path, parts.query, url)
    if found is None and host.endswith(".bandcamp.com") and path.startswith("/track/"):
        found = MediaLink(f"{host.removesuffix('.bandcamp.com')};{path[7:]}", "bn")
    if found is None and re.search(r"^/w/|^/videos/watch/", path):
        peer = _PEERTUBE.search(path)
        if peer is not None:
            found = MediaLink(f"{host};{peer['short'] or peer['long']}", "pt")
    if found is None and scheme.startswith("http"):
        found = MediaLink(url, "fi")
    if found is None:
        raise MediaLinkError(UNKNOWN)
    if not found.id:  # the client's {id: null}: "Failed to parse link"
        raise MediaLinkError(f"Failed to parse link {url}.  Please check that it is correct")
    return _client_checks(found)


def _client_checks(link: MediaLink) -> MediaLink:
    """What www/js/ui.js refuses before it emits ``queue``."""
    if link.type == "fi":
        if link.id.startswith("http:"):
            raise MediaLinkError("Raw files must begin with 'https'.  Plain http is not "
                                 "supported.")
        if re.search(r"kissanime|kimcartoon|kisscartoon", link.id, re.IGNORECASE):
            raise MediaLinkError("Kisscartoon and Kissanime are not supported.")
        if "mega.nz" in link.id:
            raise MediaLinkError("Mega.nz is not supported.")
    return link
