"""`rewardkit serve`: build the named rewards and run the server in the foreground."""

from __future__ import annotations

import argparse
import os
import sys

from rewardkit.external import (
    build_reward_set,
    parse_options,
    parse_reward_set,
    task_reward_specs,
)
from rewardkit.registry import RegistryError
from rewardkit.serve.app import ServeSettings, serve


def run_serve(args: argparse.Namespace) -> int:
    try:
        if bool(args.reward) == bool(args.task):
            raise ValueError("name the rewards to serve with --reward, or a task with --task")
        specs = (
            task_reward_specs(args.task)
            if args.task
            else parse_reward_set([part for item in args.reward for part in item.split(",")])
        )
        settings = ServeSettings(
            max_concurrency=args.max_concurrency,
            max_queue=args.max_queue,
            timeout=args.timeout,
            max_body_bytes=int(args.max_body_mb * 2**20),
            token=os.environ.get(args.token_env) or None,
            on_error=args.on_error,
            label_key=args.label_key,
            strip_suffixes=tuple(args.strip_suffix),
        )
        rewards = build_reward_set(specs, parse_options(args.option))
    except (ValueError, RegistryError) as exc:
        print(f"rewardkit serve: error: {exc}", file=sys.stderr)
        return 2
    weights = ", ".join(f"{r.name}:{r.weight:g}" for r in rewards)
    auth = "bearer token required" if settings.token else "no token"
    print(
        f"rewardkit serve: {weights} on http://{args.host}:{args.port} ({auth}; "
        f"POST /score, POST /get_reward, GET /health)",
        flush=True,
    )
    serve(rewards, settings, args.host, args.port, args.log_level)
    return 0
