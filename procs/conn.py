"""supervisord program ``conn``: the CyTube connections, one session per channel."""

from rosey.conn.service import main_loop

from .common import load


def main() -> None:
    cfg, args = load("conn")
    main_loop(cfg, args["config"])


if __name__ == "__main__":
    main()
