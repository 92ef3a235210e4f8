"""supervisord program ``router``: triggers, limits, history and the caller broker."""

from rosey.router.service import main_loop

from .common import load


def main() -> None:
    cfg, args = load("router")
    main_loop(cfg, args["config"])


if __name__ == "__main__":
    main()
