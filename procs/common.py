"""Shared argument parsing for the process entry points."""

from __future__ import annotations

import argparse
import gc
import sys
from typing import Any

from rosey import logs
from rosey.config import Config, ConfigError, load_config


def load(process: str, extra: list[tuple[str, type]] | None = None
         ) -> tuple[Config, dict[str, Any]]:
    parser = argparse.ArgumentParser(prog=f"rosey-{process}")
    parser.add_argument("--config", default=None, help="config.json (default $ROSEY_CONFIG)")
    for flag, kind in extra or []:
        parser.add_argument(flag, type=kind, required=True)
    args = vars(parser.parse_args())
    try:
        cfg = load_config(args["config"])
    except ConfigError as exc:
        print(f"rosey-{process}: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    logs.setup(cfg.log.level, process if "index" not in args else f"caller-{args['index']}")
    # Everything imported so far lives for the whole process: out of the collector's sight,
    # a full collection no longer walks the libraries' ~100k objects in the middle of a
    # mention (bench/pipeline.py on a busy machine: 8 % less CPU per mention, p99 47-61 ->
    # 39-40 ms; on a quiet one the difference is within the noise).
    gc.freeze()
    return cfg, args
