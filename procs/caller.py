"""supervisord program ``caller`` (a pool, one process per ``--index``): LLM calls."""

from rosey.caller.service import main_loop

from .common import load


def main() -> None:
    cfg, args = load("caller", [("--index", int)])
    main_loop(cfg, args["index"])


if __name__ == "__main__":
    main()
