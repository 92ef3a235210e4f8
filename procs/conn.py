"""supervisord program ``conn``: the CyTube connection."""

from .common import load
from rosey.cytube.client import main_loop


def main() -> None:
    cfg, _ = load("conn")
    main_loop(cfg)


if __name__ == "__main__":
    main()
