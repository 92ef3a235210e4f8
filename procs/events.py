"""supervisord ``[eventlistener:events]``: process states and exits as metrics."""

from .common import load
from rosey.supervisor_events import main_loop


def main() -> None:
    cfg, args = load("events", [("--port", int)])
    main_loop(cfg, args["port"])


if __name__ == "__main__":
    main()
