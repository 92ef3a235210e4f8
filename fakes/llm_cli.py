"""``python -m fakes.llm``: a FakeLLM in its own process, for e2e tests that need one
(flags are the FakeLLM knobs; see fakes/llm.py).  Prints ``READY <url>`` and serves until
SIGTERM / SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import fakes.llm
from fakes.llm import FakeLLM


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeLLM(args.kind, port=args.port, models=args.models or None)
    if args.reply is not None:
        fake.reply = args.reply
    fake.delay = args.delay
    fake.fail_status = args.fail_status
    fake.hang = args.hang
    fake.api_key = args.api_key
    fake.token_rate = args.token_rate
    fake.first_token_delay = args.first_token_delay
    fake.break_after = args.break_after
    fake.break_mode = args.break_mode
    fake.max_concurrency = args.max_concurrency
    fake.max_queue = args.max_queue
    await fake.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"READY {fake.url}", flush=True)
    await stop.wait()
    await fake.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m fakes.llm",
        description=fakes.llm.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--kind", choices=["openai", "ollama"], default="ollama")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--reply", default=None, help="fixed reply text (default: echo)")
    parser.add_argument(
        "--models",
        type=lambda s: [m for m in s.split(",") if m],
        default=None,
        help="comma-separated model names present",
    )
    parser.add_argument("--fail-status", type=int, default=None)
    parser.add_argument("--hang", action="store_true")
    parser.add_argument("--api-key", default=None, help="require this bearer key")
    parser.add_argument("--token-rate", type=float, default=0.0, help="streamed tokens/s")
    parser.add_argument("--first-token-delay", type=float, default=0.0)
    parser.add_argument("--break-after", type=int, default=None,
                        help="streamed tokens before the stream breaks")
    parser.add_argument("--break-mode", choices=["drop", "error", "hang"], default="drop")
    parser.add_argument("--max-concurrency", type=int, default=None,
                        help="chat calls answered at once; the rest wait")
    parser.add_argument("--max-queue", type=int, default=None,
                        help="waiting calls beyond which a call gets 503 (OLLAMA_MAX_QUEUE)")
    asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
