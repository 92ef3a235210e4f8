"""When does an answer start to arrive in the channel, streamed vs not?

    python -m bench.streaming [--repeat 2]

The real Rosey (supervisord, conn, router, callers) against the fake CyTube server and a
fake Ollama that streams NDJSON at 10 and 30 tokens/s with its first token at 0.3 s.  The
answer is 600 characters (~130 tokens) and its first sentence 80.  Each rate is measured
with ``llm.stream`` on and off (two deployments, one after the other, in this one run):

* first part: mention sent → the bot's first line logged by the CyTube server;
* last part: mention sent → the line that completes the answer;
* first part − sentence complete: the first line against the moment the provider sent the
  token *after* the first sentence's full stop (the earliest anyone can know the sentence
  has ended: "3." may still become "3.14"); target ≤ 50 ms.  Also shown against the full
  stop's own token;
* last part − end of generation: the governor's pacing after the last token.

Medians over ``--repeat`` mentions; wall time is measured here and only here.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import time
from dataclasses import dataclass

from bench.scenarios import TimedLog, bot_entries, wait_until
from fakes.cytube import FakeCytube
from fakes.deployment import BOT, BOT_PW, Rosey, wait_joined
from fakes.llm import FakeLLM, tokens_of

FIRST = "The film you mean is 2001: A Space Odyssey, directed by Stanley Kubrick in 1968."
ANSWER = FIRST + (
    " It follows a crew sent to Jupiter after a black monolith is found buried on the Moon."
    " The ship is run by HAL 9000, a calm computer that slowly turns against the astronauts."
    " Kubrick wrote it with Arthur C. Clarke, who finished the novel at the same time."
    " Its effects were made without computers, using models, front projection and patience."
    " The music is mostly Strauss and Ligeti, and the opening is famous on its own."
    " Watch it on the biggest screen you can find, and give the slow parts a chance."
    " It still holds up.")
RATES = (10.0, 30.0)
FIRST_TOKEN = 0.3


@dataclass
class Sample:
    first: float  # s from the mention to the first line
    last: float  # s from the mention to the line completing the answer
    parts: int
    after_sentence: float  # first line − the token confirming the first sentence's end
    after_stop: float  # first line − the first sentence's full stop
    after_generation: float  # last line − the last token


def sentence_tokens() -> tuple[int, int]:
    """Indexes of the first sentence's full-stop token and of the token after it."""
    tokens = tokens_of(ANSWER)
    length = 0
    for index, token in enumerate(tokens):
        length += len(token)
        if length >= len(FIRST):
            return index, index + 1
    raise AssertionError("the first sentence is not in the answer")


async def measure(fake: FakeCytube, log: TimedLog, llm: FakeLLM, user: str,
                  streamed: bool) -> Sample:
    clock_skew = time.time() - time.perf_counter()  # token_log is wall clock
    before = len(bot_entries(log))
    want = f"{user}: {ANSWER}".split()
    start = time.perf_counter()
    await fake.say_as(user, "rosey, which film has HAL in it?")

    def complete() -> bool:
        said = " ".join(m for _, m in bot_entries(log)[before:]).split()
        return said == want or (len(said) >= len(want) and said[-1].endswith("…"))

    await wait_until(log, complete, 60)
    lines = bot_entries(log)[before:]
    sample = Sample(first=lines[0][0] - start, last=lines[-1][0] - start, parts=len(lines),
                    after_sentence=math.nan, after_stop=math.nan, after_generation=math.nan)
    if streamed:
        stop, confirm = sentence_tokens()
        tokens = [t - clock_skew for t, _ in llm.token_log]
        sample.after_sentence = lines[0][0] - tokens[confirm]
        sample.after_stop = lines[0][0] - tokens[stop]
        sample.after_generation = lines[-1][0] - tokens[-1]
    return sample


async def deployment(stream: bool, repeat: int) -> dict[float, list[Sample]]:
    fake = FakeCytube("benchchan")
    fake.chat_log = TimedLog()
    log: TimedLog = fake.chat_log
    await fake.start()
    fake.add_account(BOT, BOT_PW, rank=2)
    users = [f"viewer{n}" for n in range(repeat * len(RATES))]
    for user in users:
        fake.add_virtual_user(user, rank=1)
    results: dict[float, list[Sample]] = {}
    async with FakeLLM("ollama", models=["m"], reply=ANSWER) as llm:
        llm.first_token_delay = FIRST_TOKEN
        rosey = Rosey(fake, {"provider": "ollama", "model": "m", "ollama_host": llm.url,
                             "llm_cooldown": 0, "response_timeout": 60, "stream": stream},
                      log={"level": "WARNING"})
        rosey.start()
        try:
            await wait_joined(fake, rosey)
            await asyncio.sleep(2.0)  # callers up
            turn = iter(users)
            for rate in RATES:
                llm.token_rate = rate
                results[rate] = [await measure(fake, log, llm, next(turn), stream)
                                 for _ in range(repeat)]
        finally:
            await rosey.stop()
            rosey.cleanup()
            await fake.stop()
    return results


def med(samples: list[Sample], field: str) -> float:
    return statistics.median(float(getattr(s, field)) for s in samples)


async def main(repeat: int) -> None:
    print(f"answer {len(ANSWER)} chars, {len(tokens_of(ANSWER))} tokens, first sentence "
          f"{len(FIRST)} chars; first token at {FIRST_TOKEN} s; medians of {repeat}", flush=True)
    streamed = await deployment(True, repeat)
    unstreamed = await deployment(False, repeat)
    for rate in RATES:
        s, u = streamed[rate], unstreamed[rate]
        print(f"{rate:.0f} tokens/s  streamed: first part {med(s, 'first'):.2f} s, last part "
              f"{med(s, 'last'):.2f} s, {med(s, 'parts'):.0f} parts | not streamed: first part "
              f"{med(u, 'first'):.2f} s, last part {med(u, 'last'):.2f} s, "
              f"{med(u, 'parts'):.0f} parts", flush=True)
        print(f"    first part {med(u, 'first') / med(s, 'first'):.1f}x sooner streamed; "
              f"last part streamed/unstreamed {med(s, 'last') / med(u, 'last'):.2f}; "
              f"first part {med(s, 'after_sentence') * 1000:.0f} ms after the token that "
              f"confirms the first sentence ({med(s, 'after_stop') * 1000:.0f} ms after its "
              f"full stop); last part {med(s, 'after_generation') * 1000:.0f} ms after the "
              "last token", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    asyncio.run(main(parser.parse_args().repeat))
