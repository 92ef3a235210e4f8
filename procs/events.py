"""supervisord ``[eventlistener:events]``: process states and exits as metrics.

Kept lean (see ``rosey.events.listener``): the settings come as arguments from the
supervisord config that ``rosey run`` rendered from the validated config, so this
process never imports the config loader.
"""

import argparse

from rosey import logs
from rosey.events.listener import main_loop


def main() -> None:
    parser = argparse.ArgumentParser(prog="rosey-events")
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--caller-base-port", type=int, required=True)
    parser.add_argument("--metrics", choices=("on", "off"), default="on")
    parser.add_argument("--response-timeout", type=float, required=True)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--version", default="0+unknown")
    args = parser.parse_args()
    logs.setup(args.log_level, "events")
    main_loop(run_dir=args.run_dir, host=args.host, port=args.port,
              caller_base_port=args.caller_base_port, enabled=args.metrics == "on",
              response_timeout=args.response_timeout, version=args.version)


if __name__ == "__main__":
    main()
