"""A streamed reply survives a SIGKILL of conn or router without posting any text twice.

``Conn`` is conn's intake, send loop and ledger (``client.ChannelClient`` minus the sockets):
the same ``ledger.accept``, write-ahead ``Ledger.emitting`` and ``Delivered`` bookkeeping.
A "crash" is a new ``Conn`` over the same ledger file; the join replay is fed as the real
session does.  Regressions for the review of the delivery + streaming merge (bugs 1, 2, 7
and the offer-order suspicion (a)).
"""

from __future__ import annotations

from pathlib import Path

from rosey.conn.governor import Governor
from rosey.conn.ledger import Ledger, accept
from rosey.conn.segments import Outcome
from rosey.protocol import Say
from rosey.router.prompts import address

SEG0 = "alice: It is a 1968 film by Stanley Kubrick about a voyage to Jupiter."
SEG1 = " HAL, the ship's computer, is the one you remember."
SEG2 = " " + " ".join(f"word{n}" for n in range(60)) + "."
END = " The end."


def seg(seq: int, text: str, final: bool = False, pm_to: str = "") -> Say:
    return Say(id="r1", channel="c", text=text, expires_at=1e12, seq=seq, final=final,
               stream=True, pm_to=pm_to)


def whole(text: str) -> Say:
    """A restarted router's re-offer of a replied journal row: the shown text as seq 0."""
    return Say(id="r1", channel="c", text=text, expires_at=1e12)


class Conn:
    def __init__(self, path: Path, replay: list[str] | None = None) -> None:
        self.gov, self.ledger = Governor(), Ledger(path)
        self.ledger.load()
        self.posted: list[str] = []
        self.acked: dict[int, bool] = {}
        if replay is not None:  # joined: the server replays its last lines, ours included
            self.gov.new_join()
            for line in replay:
                self.report(self.gov.on_replayed_echo(line, 0.5))

    def offer(self, *says: Say) -> None:
        for say in says:
            done, _ = accept(self.gov, self.ledger, say, 1.0)
            if done is not None:
                self.acked[say.seq] = done

    def send(self) -> list[str]:
        sent = []
        while (part := self.gov.next_part(1.0)) is not None:
            self.ledger.emitting(part, self.gov.parts_of(part.key), 1.0,
                                 self.gov.riders_of(part.key))
            sent.append(part.text)
        self.posted += sent
        return sent

    def echo(self, n: int = 1, private: bool = False) -> None:
        for _ in range(n):
            self.report(self.gov.on_echo(private))
        self.flush()

    def report(self, outcome: Outcome | None) -> None:
        if outcome is not None:
            self.ledger.finished((outcome.say_id, outcome.seq), outcome.ok)
            self.acked[outcome.seq] = outcome.ok

    def flush(self) -> None:  # ChannelClient._send_step's expire + _flush
        for outcome in self.gov.expire(1.0):
            self.report(outcome)
        for part in self.gov.confirmed:
            self.ledger.confirmed(part)
        self.gov.confirmed.clear()


def old_conn_with_a_rider_in_flight(path: Path) -> list[str]:
    """Seg 0 posted and acked; seg 1 held by the packer; seg 2's first part carries seg 1's
    text and is emitted; conn is SIGKILLed before its echo."""
    conn = Conn(path)
    conn.offer(seg(0, SEG0))
    assert conn.send() == [SEG0]
    conn.echo()
    conn.offer(seg(1, SEG1))
    assert conn.send() == []  # held: riding on what comes next
    conn.offer(seg(2, SEG2))
    sent = conn.send()
    assert len(sent) == 1 and sent[0].startswith(SEG1.strip())  # seg 1 rides on seg 2
    assert conn.acked == {0: True}
    return conn.posted


def test_a_rider_segment_is_not_posted_again_by_the_next_conn(tmp_path: Path) -> None:
    path = tmp_path / "conn-c.posted"
    posted = old_conn_with_a_rider_in_flight(path)
    fresh = Conn(path, replay=posted)  # the server did get seg 2's part
    # Offered back to back: seg 2 finishes at intake (replay) before its Delivered is in
    # the ledger, so the second offer must not queue it again either.
    fresh.offer(seg(1, SEG1), seg(2, SEG2), seg(2, SEG2), seg(3, END, final=True))
    again = fresh.send()
    assert not any(SEG1.strip() in t or "word0" in t for t in again), again
    assert again and again[-1].endswith("The end.")  # the tail after seg 2 did go out
    fresh.echo(len(again))
    assert fresh.acked == {1: True, 2: True, 3: True}
    fresh.offer(seg(1, SEG1), seg(2, SEG2))  # later re-offers are answered from the ledger
    assert fresh.send() == [] and fresh.acked == {1: True, 2: True, 3: True}


def test_a_carrier_part_that_never_arrived_is_posted_once_and_every_segment_acked(
        tmp_path: Path) -> None:
    path = tmp_path / "conn-c.posted"
    posted = old_conn_with_a_rider_in_flight(path)
    fresh = Conn(path, replay=posted[:1])  # the server never got seg 2's part
    for _ in range(3):  # the router re-offers what is unacknowledged, again and again
        fresh.offer(*(seg(n, t, n == 3) for n, t in ((1, SEG1), (2, SEG2), (3, END))
                      if n not in fresh.acked))
        fresh.echo(len(fresh.send()))
    assert fresh.posted[0] == posted[1]  # seg 2's part (with seg 1's text) once, as split
    assert sum(SEG1.strip() in t for t in fresh.posted) == 1
    assert fresh.posted[-1].endswith("The end.")
    assert fresh.acked == {1: True, 2: True, 3: True}


def test_a_segment_offered_before_the_one_it_follows_waits_for_it(tmp_path: Path) -> None:
    """Suspicion (a): a fresh conn offered seg 2 first (a re-offer timer) must not start its
    packer there, or seg 1 would be ignored for ever and never acknowledged."""
    path = tmp_path / "conn-c.posted"
    conn = Conn(path)
    conn.offer(seg(0, SEG0))
    conn.send()
    conn.echo()
    conn.offer(seg(1, SEG1))  # held by the packer when conn dies: its text is lost with it
    fresh = Conn(path, replay=conn.posted)
    fresh.offer(seg(2, " And Dave."))
    assert fresh.send() == [] and fresh.acked == {}  # waits: seg 1 is not known yet
    fresh.offer(seg(1, SEG1), seg(2, " And Dave."), seg(3, END, final=True))
    sent = fresh.send()
    assert " ".join(sent) == (SEG1 + " And Dave." + END).strip()  # each segment once
    fresh.echo(len(sent))
    assert fresh.acked == {1: True, 2: True, 3: True}


def test_router_restart_whole_reoffer_does_not_repost_the_text_in_flight(
        tmp_path: Path) -> None:
    conn = Conn(tmp_path / "l")
    segs = ["Sure!", " It is a 1968 film by Stanley Kubrick about a voyage to Jupiter."]
    conn.offer(seg(0, address("alice", segs[0])), seg(1, segs[1]))
    first = conn.send()  # emitted, echo not back yet
    assert first == ["alice: Sure! It is a 1968 film by Stanley Kubrick about a voyage to "
                     "Jupiter."]
    # The router restarts: resume() re-offers the journaled shown text as seq 0.
    conn.offer(whole(address("alice", "".join(segs).strip())))
    assert conn.send() == [] and conn.acked == {}
    conn.echo()
    assert conn.posted == first and conn.acked[0] is True


def test_router_restart_flushes_the_held_text_and_the_shown_text_conn_never_had(
        tmp_path: Path) -> None:
    conn = Conn(tmp_path / "l")
    conn.offer(seg(0, SEG0))
    conn.send()
    conn.echo()
    conn.offer(seg(1, SEG1))  # held, waiting for more
    assert conn.send() == []
    # seg 2 was journaled by the old router, which died before offering it to conn.
    conn.offer(whole(SEG0 + SEG1 + " And Dave."))
    assert conn.acked == {0: True}  # from the ledger
    tail = conn.send()
    assert tail == [(SEG1 + " And Dave.").strip()]
    conn.echo()
    assert conn.posted == [SEG0, *tail] and conn.acked[1] is True
    conn.offer(whole(SEG0 + SEG1 + " And Dave."))  # re-offered again: nothing more
    assert conn.send() == []


def test_a_pm_part_whose_echo_was_lost_is_not_sent_again(tmp_path: Path) -> None:
    """Bug 7: PMs are not in the join replay, so a maybe-sent PM part counts as sent."""
    path = tmp_path / "l"
    conn = Conn(path)
    conn.offer(seg(0, "It is a 1968 film by Stanley Kubrick about a voyage to Jupiter.",
                   final=True, pm_to="alice"))
    assert len(conn.send()) == 1
    conn.gov.on_disconnect()  # the socket drops before the PM's echo
    conn.flush()
    assert conn.send() == [] and conn.acked == {0: True}
    # And across a conn crash: the next conn finds it emitted in the ledger.
    conn.offer(Say(id="r2", channel="c", text="Hello bob.", pm_to="bob", expires_at=1e12))
    assert conn.send() == ["Hello bob."]
    fresh = Conn(path, replay=[])
    fresh.offer(Say(id="r2", channel="c", text="Hello bob.", pm_to="bob", expires_at=1e12))
    fresh.flush()
    assert fresh.send() == [] and fresh.acked == {0: True}


def test_a_part_whose_emit_failed_is_sent_on_the_next_socket(tmp_path: Path) -> None:
    conn = Conn(tmp_path / "l")
    conn.offer(Say(id="r1", channel="c", text="Hello bob.", pm_to="bob", expires_at=1e12))
    part = conn.gov.next_part(1.0)
    assert part is not None
    conn.gov.unsent(part)  # no live socket: nothing went on the wire
    conn.gov.on_disconnect()
    assert conn.send() == ["Hello bob."] and conn.acked == {}
    conn.echo(private=True)
    assert conn.acked == {0: True}
