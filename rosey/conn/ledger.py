"""conn's post ledger: what this channel's conn emitted, saw echoed and finished, on disk.

The router re-offers a reply segment until conn acknowledges it, so a conn that dies after
posting but before acknowledging is offered the segment again by the next conn.  The ledger
lets the next conn know better: a finished segment is acknowledged without posting, a
confirmed part is skipped, and a part emitted without an echo is held until the join replay
shows whether the server got it (``Governor.add`` with a ``Prior``).  A streamed segment
whose text rode on a later segment's part (``packer.Streams``) is written down with that
part, as a *rider* of it: it is resumed, and finished, with its carrier, never posted alone.

A part is written down *before* it is emitted (write-ahead), so no emitted part is missing
from the ledger.  The file is an append-only log of one JSON object per line, flushed to the
OS on every write but not fsynced: it must survive a SIGKILL of conn (the page cache does),
not a power cut.  It is compacted on start and whenever it grows past ``COMPACT_LINES``;
only the newest ``KEEP`` segments are kept (the router gives up on a reply after
``conn.post_ttl`` anyway).
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from rosey.conn.governor import Governor
from rosey.conn.segments import Part, Prior, SegKey
from rosey.file_modes import atomic_write
from rosey.protocol import Say

log = logging.getLogger("rosey.conn")
KEEP = 512
COMPACT_LINES = 4096


@dataclass(slots=True)
class Entry:
    parts: list[str] = field(default_factory=list)
    emitted: dict[int, float] = field(default_factory=dict)
    confirmed: set[int] = field(default_factory=set)
    ok: bool | None = None  # the segment's outcome once finished
    by: int | None = None  # a streamed segment whose text rode on this later one's part

    def record(self) -> dict[str, Any]:
        return {"parts": self.parts, "e": {str(i): t for i, t in self.emitted.items()},
                "c": sorted(self.confirmed), "ok": self.ok, "by": self.by}


class Ledger:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.entries: OrderedDict[SegKey, Entry] = OrderedDict()
        self._file: IO[str] | None = None
        self._lines = 0

    # ---- reading -------------------------------------------------------------------------

    def load(self) -> None:
        """Fold the log into entries (a torn last line is skipped), then compact it."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            text = ""
        except OSError as exc:
            log.warning("post ledger %s unreadable (%s): starting empty", self.path, exc)
            text = ""
        for line in text.splitlines():
            try:
                self._apply(json.loads(line))
            except (ValueError, TypeError, KeyError, AttributeError):
                continue
        self.compact()

    def _apply(self, rec: dict[str, Any]) -> None:
        key = (str(rec["k"]), int(rec["q"]))
        entry = self._entry(key)
        if "parts" in rec:
            entry.parts = [str(p) for p in rec["parts"]]
        for index, at in dict(rec.get("e", {})).items():
            entry.emitted[int(index)] = float(at)
        entry.confirmed.update(int(i) for i in rec.get("c", []))
        if rec.get("ok") is not None:
            entry.ok = bool(rec["ok"])
        if rec.get("by") is not None:
            entry.by = int(rec["by"])
        for rider in rec.get("r", []):  # written with the carrier's part (emitting)
            self._entry((key[0], int(rider))).by = key[1]

    def _entry(self, key: SegKey) -> Entry:
        entry = self.entries.get(key)
        if entry is None:
            entry = self.entries[key] = Entry()
            while len(self.entries) > KEEP:
                self.entries.popitem(last=False)
        return entry

    def known(self, key: SegKey) -> bool:
        return key in self.entries

    def _carrier(self, key: SegKey) -> Entry | None:
        """The entry of the segment that carried this rider's text, if it has no parts."""
        entry = self.entries.get(key)
        if entry is None or entry.parts or entry.by is None:
            return None
        return self.entries.get((key[0], entry.by))

    def outcome(self, key: SegKey) -> bool | None:
        """A finished segment's outcome; a rider's is its carrier's."""
        entry = self.entries.get(key)
        if entry is not None and entry.ok is None:
            entry = self._carrier(key) or entry
        return entry.ok if entry else None

    def prior(self, key: SegKey) -> Prior | None:
        """What an earlier conn (or this one) did with an unfinished segment, if anything:
        a rider's prior is its carrier's (``Prior.carrier``)."""
        own = self.entries.get(key)
        if own is None or own.ok is not None:
            return None
        carrier = self._carrier(key)
        entry = carrier or own
        if not entry.parts or entry.ok is not None:
            return None
        return Prior(list(entry.parts), dict(entry.emitted), set(entry.confirmed),
                     own.by if carrier else None)

    # ---- writing -------------------------------------------------------------------------

    def emitting(self, part: Part, parts: list[str], at: float,
                 riders: list[int] | None = None) -> None:
        """Before the part goes on the socket.  ``riders``: the streamed segments whose text
        it carries, recorded in the same line, so a next conn never posts a rider's text on
        its own once the part that carries it may have gone out."""
        entry = self._entry(part.key)
        rec: dict[str, Any] = {"k": part.say_id, "q": part.seq, "e": {str(part.index): at}}
        if entry.parts != parts:
            entry.parts = list(parts)
            rec["parts"] = parts
        new = [r for r in riders or [] if self._entry((part.say_id, r)).by != part.seq]
        if new:
            rec["r"] = new
            for rider in new:
                self.entries[(part.say_id, rider)].by = part.seq
        entry.emitted[part.index] = at
        self._write(rec)

    def confirmed(self, part: Part) -> None:
        entry = self._entry(part.key)
        entry.confirmed.add(part.index)
        self._write({"k": part.say_id, "q": part.seq, "c": [part.index]})

    def finished(self, key: SegKey, ok: bool) -> None:
        self._entry(key).ok = ok
        self._write({"k": key[0], "q": key[1], "ok": ok})

    def _write(self, rec: dict[str, Any]) -> None:
        try:
            if self._file is None:
                self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open
            self._file.write(json.dumps(rec, separators=(",", ":")) + "\n")
            self._file.flush()
        except OSError as exc:  # a full disk must not stop chat; we only lose dedupe
            log.warning("post ledger write failed: %s", exc)
            return
        self._lines += 1
        if self._lines > COMPACT_LINES:
            self.compact()

    def compact(self) -> None:
        """Rewrite the log as one line per kept segment (atomically)."""
        text = "".join(json.dumps({"k": say_id, "q": seq, **entry.record()},
                                  separators=(",", ":")) + "\n"
                       for (say_id, seq), entry in self.entries.items())
        try:
            atomic_write(self.path, text)
        except OSError as exc:
            log.warning("post ledger compaction failed: %s", exc)
            return
        if self._file is not None:
            self._file.close()
            self._file = None
        self._lines = len(self.entries)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def accept(governor: Governor, ledger: Ledger, say: Say, now: float) -> tuple[bool | None, int]:
    """conn's intake of one offered reply segment: ``(outcome, 0)`` when this conn or an
    earlier one finished it (acknowledge it again), else ``(None, parts queued)``."""
    key = (say.id, say.seq)
    if not say.stream:  # maybe a restarted router's whole re-offer of a streamed reply
        governor.end_stream(say, now)
    done = ledger.outcome(key)
    if done is not None:
        return done, 0
    # A streamed segment may start a new packer only after one the ledger knows: else an
    # earlier segment, still to be offered again, would be skipped for ever.
    may_start = say.seq == 0 or ledger.known((say.id, say.seq - 1))
    return None, governor.add(say, now, ledger.prior(key), may_start)
