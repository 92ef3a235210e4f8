"""Labelled trigger corpus: what a channel operator expects vs. what TriggerMatcher does.

``tests/data/triggers.tsv`` holds chat lines as they arrive after conn's HTML reversal
(links as bare URLs, ``*bold*``/``_italic_`` kept), labelled ``1`` (should trigger) or
``0`` (should not) for a bot named ``Rosey`` with ``llm_triggers = ["hey bot", "re:^!ask\\b"]``.
"""

from __future__ import annotations

from pathlib import Path

from rosey.router.triggers import TriggerMatcher

CORPUS = Path(__file__).resolve().parents[1] / "data" / "triggers.tsv"
BOT_NAME = "Rosey"
TRIGGERS = ["hey bot", "re:^!ask\\b"]
MIN_ROWS = 220
MIN_PER_LABEL = 80
MIN_AGREEMENT = 0.99


def load_corpus() -> list[tuple[bool, str]]:
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "expected\ttext", f"unexpected header: {lines[0]!r}"
    rows: list[tuple[bool, str]] = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        label, sep, text = line.partition("\t")
        assert sep and label in ("0", "1"), f"line {number}: bad row {line!r}"
        assert text, f"line {number}: empty text"
        rows.append((label == "1", text))
    return rows


def test_trigger_corpus_agreement() -> None:
    rows = load_corpus()
    positives = sum(1 for expected, _ in rows if expected)
    negatives = len(rows) - positives
    assert len(rows) >= MIN_ROWS, f"corpus has {len(rows)} rows, want >= {MIN_ROWS}"
    assert positives >= MIN_PER_LABEL, f"only {positives} rows labelled 1"
    assert negatives >= MIN_PER_LABEL, f"only {negatives} rows labelled 0"

    matcher = TriggerMatcher(BOT_NAME, TRIGGERS)
    disagreements: list[tuple[bool, str, str]] = []
    for expected, text in rows:
        hit = matcher.match(text)
        if (hit is not None) != expected:
            got = f"{hit.kind}:{hit.trigger}" if hit is not None else "no match"
            disagreements.append((expected, text, got))

    agreement = 1 - len(disagreements) / len(rows)
    # >= 99 % agreement: at most floor(1 % of the rows) may disagree (2 for 220 rows).
    allowed = len(rows) // 100
    report = [
        f"trigger corpus: {len(rows)} rows ({positives} x 1, {negatives} x 0), "
        f"agreement {agreement:.2%}, {len(disagreements)} disagreement(s), {allowed} allowed"
    ]
    report += [
        f"  expected {int(expected)}, got {got}: {text!r}" for expected, text, got in disagreements
    ]
    print("\n".join(report))
    assert agreement >= MIN_AGREEMENT and len(disagreements) <= allowed, "\n".join(report)
