"""Received chat HTML -> the plain text the user typed (PROTOCOL §6.2). Pure, stdlib."""

from __future__ import annotations

import html
import re

__all__ = ["html_to_text"]

# A tag; quoted attribute values may contain '>'. No part of a tag may contain a raw '<' (the
# server escapes it everywhere), so each match attempt stops at the next '<': linear time even
# on hostile 1 MiB frames.
_TAG_RE = re.compile(r"""<(/?)([A-Za-z][A-Za-z0-9]*)((?:[^<>"']|"[^"<]*"|'[^'<]*')*)>""")
_ATTR_RE = re.compile(r"""([A-Za-z_:][-A-Za-z0-9_:.]*)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")
# Reversal of the default chat filters (src/channel/filters.js).
_MARKS = {"strong": "*", "em": "_", "code": "`", "s": "~~"}


def _attrs(raw: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for m in _ATTR_RE.finditer(raw):
        value = m.group(2) if m.group(2) is not None else m.group(3)
        if value is None:
            value = m.group(4) or ""
        out.setdefault(m.group(1).lower(), value)
    return out


def html_to_text(html_text: str) -> str:
    """Plain text from a received ``msg``: reverses CyTube's filters, unescapes entities.

    ``<strong>x</strong>`` -> ``*x*``, ``<em>`` -> ``_``, ``<code>`` -> backtick, ``<s>`` -> ``~~``,
    ``<span class="spoiler">x</span>`` -> ``[sp]x[/sp]``, ``<a href="U">…</a>`` -> ``U``; any
    other tag is dropped (its text kept); entities are unescaped once.
    """
    out: list[str] = []
    anchor: list[str] | None = None  # text inside an open <a href>, dropped when it closes
    spans: list[str] = []
    pos = 0
    for m in _TAG_RE.finditer(html_text):
        text = html.unescape(html_text[pos : m.start()])
        if anchor is not None:
            anchor.append(text)
        else:
            out.append(text)
        pos = m.end()
        closing = m.group(1) == "/"
        name = m.group(2).lower()
        if name == "a":
            if closing:
                anchor = None
            elif anchor is None:
                href = _attrs(m.group(3)).get("href")
                if href is not None:
                    out.append(html.unescape(href))
                    anchor = []
            continue
        if anchor is not None:
            continue
        if name in _MARKS:
            out.append(_MARKS[name])
        elif name == "span":
            if closing:
                out.append(spans.pop() if spans else "")
            else:
                spoiler = "spoiler" in _attrs(m.group(3)).get("class", "").split()
                out.append("[sp]" if spoiler else "")
                spans.append("[/sp]" if spoiler else "")
    tail = html.unescape(html_text[pos:])
    if anchor is not None:  # unclosed <a>: keep its text rather than lose it
        out.extend(anchor)
    out.append(tail)
    return "".join(out)
