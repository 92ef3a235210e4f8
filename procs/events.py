"""supervisord ``[eventlistener:events]``: process states and exits as metrics."""

from rosey.supervisor_events import main_loop

from .common import load


def main() -> None:
    cfg, args = load("events", [("--port", int)])
    main_loop(cfg, args["port"])


if __name__ == "__main__":
    main()
