"""Media links -> CyTube {id, type}, case by case as www/js/util.js parseMediaLink does it."""

from __future__ import annotations

import pytest

from rosey.router.media_links import MediaLink, MediaLinkError, parse_media_link

CASES = [
    ("https://www.youtube.com/watch?v=dQw4w9WgXcQ", "yt", "dQw4w9WgXcQ"),
    ("https://youtube.com/watch?feature=share&v=dQw4w9WgXcQ&t=42", "yt", "dQw4w9WgXcQ"),
    ("https://youtu.be/dQw4w9WgXcQ", "yt", "dQw4w9WgXcQ"),
    ("https://www.youtube.com/shorts/abcdefghijkXYZ", "yt", "abcdefghijk"),
    ("https://www.youtube.com/embed/dQw4w9WgXcQ", "yt", "embed/dQw4w9WgXcQ"),  # fall-through
    ("https://www.youtube.com/playlist?list=PL" + "a" * 32, "yp", "PL" + "a" * 32),
    ("https://vimeo.com/76979871", "vi", "76979871"),
    ("https://www.dailymotion.com/video/x7tgad0", "dm", "x7tgad0"),
    ("https://www.twitch.tv/somechannel", "tw", "somechannel"),
    ("https://www.twitch.tv/videos/123456", "tv", "v123456"),
    ("https://www.twitch.tv/somechannel/clip/FunnyClipSlug", "tc", "FunnyClipSlug"),
    ("https://clips.twitch.tv/FunnyClipSlug", "tc", "FunnyClipSlug"),
    ("https://soundcloud.com/artist/track-name", "sc", "https://soundcloud.com/artist/track-name"),
    ("https://streamable.com/abc12", "sb", "abc12"),
    ("https://drive.google.com/file/d/1AbCdEf/view", "gd", "1AbCdEf"),
    ("https://docs.google.com/open?id=1AbCdEf", "gd", "1AbCdEf"),
    ("https://www.bitchute.com/video/AbC123/", "bc", "AbC123"),
    ("https://www.nicovideo.jp/watch/sm9", "nv", "sm9"),
    ("https://odysee.com/@someone:a/some-video:b", "od", "someone;some-video"),
    ("https://livestream.com/accounts/123/events/456", "li", "123;456"),
    ("https://artist.bandcamp.com/track/song-name", "bn", "artist;song-name"),
    ("https://peertube.example/w/abcdefghijklmnopqrstuv", "pt",
     "peertube.example;abcdefghijklmnopqrstuv"),
    ("https://media.example.com/video.mp4", "fi", "https://media.example.com/video.mp4"),
    ("https://media.example.com/live/stream.m3u8", "hl", "https://media.example.com/live/stream.m3u8"),
    ("http://127.0.0.1:8099/clip-a.json", "cm", "http://127.0.0.1:8099/clip-a.json"),
    ("rtmp://live.example.com/app/stream", "rt", "rtmp://live.example.com/app/stream"),
    ("yt:dQw4w9WgXcQ", "yt", "dQw4w9WgXcQ"),
    ("dm:x7tgad0_some-title", "dm", "x7tgad0"),
    ("vi:76979871?foo=1", "vi", "76979871"),
    ("fi:https://media.example.com/a.mp4?token=1", "fi", "https://media.example.com/a.mp4?token=1"),
    ("cm:https://example.com/manifest?x=1", "cm", "https://example.com/manifest?x=1"),
]


@pytest.mark.parametrize(("link", "kind", "media_id"), CASES)
def test_links_name_the_media_as_cytube_does(link: str, kind: str, media_id: str) -> None:
    assert parse_media_link(link) == MediaLink(media_id, kind)


REFUSED = [
    ("not a link", "Could not determine video type"),
    ("www.youtube.com/watch?v=dQw4w9WgXcQ", "Could not determine video type"),  # no scheme
    ("ftp://example.com/file", "Could not determine video type"),
    ("https://www.youtube.com/watch?list=x", "Failed to parse link"),
    ("https://www.youtube.com/playlist?list=RDxyz", "Invalid YouTube Playlist ID"),
    ("https://livestream.com/someone", "Livestream.com link is not supported"),
    ("http://media.example.com/video.mp4", "Raw files must begin with 'https'"),
    ("https://mega.nz/file/abc", "Mega.nz is not supported"),
    ("yt:", "Could not determine video type"),
]


@pytest.mark.parametrize(("link", "message"), REFUSED)
def test_unknown_or_refused_links_get_the_clients_answer(link: str, message: str) -> None:
    with pytest.raises(MediaLinkError, match=message.replace("(", r"\(").replace(".", r"\.")):
        parse_media_link(link)
