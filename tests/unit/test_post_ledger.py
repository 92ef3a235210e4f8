"""conn's post ledger and the governor's resumption of a segment an earlier conn touched."""

from __future__ import annotations

from pathlib import Path

from rosey.conn.governor import Governor
from rosey.conn.ledger import Ledger
from rosey.conn.segments import Prior
from rosey.protocol import Say

LONG = " ".join(f"word{n}" for n in range(60))  # three parts at a 100-unit limit


def seg(text: str, seq: int = 0, say_id: str = "r1") -> Say:
    return Say(id=say_id, channel="c", text=text, expires_at=1e12, seq=seq,
               final=seq == 0)


def post_first_parts(gov: Governor, ledger: Ledger, emit: int, echo: int) -> list[str]:
    """Emit ``emit`` parts (write-ahead) and confirm the first ``echo`` of them."""
    sent = []
    for _ in range(emit):
        part = gov.next_part(1000.0)
        assert part is not None
        ledger.emitting(part, gov.parts_of(part.key), 1000.0)
        sent.append(part.text)
    for _ in range(echo):
        gov.on_echo(private=False)
    for part in gov.confirmed:
        ledger.confirmed(part)
    gov.confirmed.clear()
    return sent


def test_a_crash_mid_segment_resumes_without_repeating_a_part(tmp_path: Path) -> None:
    path = tmp_path / "conn-c.posted"
    gov, ledger = Governor(limit=100), Ledger(path)
    ledger.load()
    assert gov.add(seg(LONG), 1000.0) == 3
    parts = gov.parts_of(("r1", 0))
    sent = post_first_parts(gov, ledger, emit=2, echo=1)  # part 1 emitted, echo lost
    assert sent == parts[:2]
    # conn is SIGKILLed: nothing was closed.  The next conn reads the ledger...
    again = Ledger(path)
    again.load()
    prior = again.prior(("r1", 0))
    assert prior is not None and prior.parts == parts
    assert prior.confirmed == {0} and set(prior.emitted) == {0, 1}
    # ...and joins: the replay shows that part 1 did reach the server.
    fresh = Governor(limit=100)
    fresh.new_join()
    assert fresh.on_replayed_echo(parts[1], 1000.5) is None  # no Say yet: remembered
    assert fresh.add(seg(LONG), 1001.0, prior) == 1  # only the part never emitted
    assert [fresh.next_part(1001.0).text] == [parts[2]]  # type: ignore[union-attr]
    outcome = fresh.on_echo(private=False)
    assert outcome is not None and outcome.ok and (outcome.say_id, outcome.seq) == ("r1", 0)


def test_a_part_not_in_the_replay_is_posted_again_and_old_identical_lines_do_not_count(
        tmp_path: Path) -> None:
    gov, ledger = Governor(), Ledger(tmp_path / "l")
    gov.add(seg("alice: Sorry!"), 1000.0)
    post_first_parts(gov, ledger, emit=1, echo=0)
    prior = ledger.prior(("r1", 0))
    assert prior is not None
    fresh = Governor()
    fresh.on_replayed_echo("alice: Sorry!", 900.0)  # an earlier identical reply, 100 s older
    assert fresh.add(seg("alice: Sorry!"), 1001.0, prior) == 1
    part = fresh.next_part(1001.0)
    assert part is not None and part.text == "alice: Sorry!"


def test_finished_segments_are_acknowledged_from_disk_and_a_torn_line_is_skipped(
        tmp_path: Path) -> None:
    path = tmp_path / "l"
    ledger = Ledger(path)
    gov = Governor()
    gov.add(seg("hello"), 0.0)
    gov.add(seg("second segment", seq=1), 0.0)
    post_first_parts(gov, ledger, emit=2, echo=2)
    ledger.finished(("r1", 0), True)
    ledger.close()
    with open(path, "a", encoding="utf-8") as out:
        out.write('{"k":"r1","q":1,"ok":tr')  # killed mid-write
    again = Ledger(path)
    again.load()
    assert again.outcome(("r1", 0)) is True
    assert again.outcome(("r1", 1)) is None  # its outcome never made it: resumed instead
    prior = again.prior(("r1", 1))
    assert prior is not None and prior.confirmed == {0}
    fresh = Governor()
    assert fresh.add(seg("second segment", seq=1), 0.0, prior) == 0
    (done,) = fresh.expire(0.0)
    assert done.ok and done.seq == 1
    assert len(path.read_text().splitlines()) == 2  # compacted on load


def test_segments_of_one_reply_are_tracked_apart() -> None:
    gov = Governor()
    assert gov.add(seg("first", seq=0), 0.0) == 1
    assert gov.add(seg("then", seq=1), 0.0) == 1
    assert gov.add(seg("first", seq=0), 0.0) == 0  # a re-offer while posting
    assert [gov.next_part(0.0).text for _ in range(2)] == ["first", "then"]  # type: ignore[union-attr]
    first, second = gov.on_echo(False), gov.on_echo(False)
    assert first is not None and second is not None
    assert [(o.say_id, o.seq) for o in (first, second)] == [("r1", 0), ("r1", 1)]
    assert Prior(["x"]).confirmed == set()
