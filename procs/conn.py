"""supervisord program ``conn``: the CyTube connection."""

from rosey.conn.client import main_loop

from .common import load


def main() -> None:
    cfg, _ = load("conn")
    main_loop(cfg)


if __name__ == "__main__":
    main()
