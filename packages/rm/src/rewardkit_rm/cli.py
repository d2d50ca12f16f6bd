"""`rewardkit-rm`: build preference data, train reward models, evaluate them.

rewardkit-rm data --source code.humaneval --out data/rm/humaneval.jsonl [--option k=v ...]
rewardkit-rm train --config configs/rm/tiny_bt.yaml [--set key=value ...]
rewardkit-rm eval --model runs/rm/final --data PAIRS.jsonl [--split test] [--out report.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml


def _options(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--option {item!r} must look like key=value")
        out[key] = yaml.safe_load(value)
    return out


def cmd_data(args: argparse.Namespace) -> int:
    from rewardkit_rm.data import write_jsonl
    from rewardkit_rm.sources import build_source

    start = time.monotonic()
    pairs, report = build_source(args.source, **_options(args.option))
    n = write_jsonl(pairs, args.out)
    report = {
        "source": args.source,
        "out": str(args.out),
        "seconds": time.monotonic() - start,
        **report,
    }
    Path(str(args.out) + ".report.json").write_text(json.dumps(report, indent=1))
    problems = len({p.problem_id for p in pairs})
    print(f"{args.source}: {n} pairs over {problems} problems -> {args.out}")
    print(json.dumps(report))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from rewardkit_rm.train import RMConfig, train

    config = RMConfig.load(args.config, args.set)
    final = train(config)
    print(f"saved {final}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from rewardkit_rm.evaluate import evaluate_cli

    return evaluate_cli(args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rewardkit-rm", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    data = sub.add_parser("data", help="build preference pairs from a verifier-backed source")
    data.add_argument("--source", required=True)
    data.add_argument("--out", required=True, type=Path)
    data.add_argument("--option", action="append", default=[], help="key=value (YAML value)")
    train = sub.add_parser("train", help="train a reward model")
    train.add_argument("--config", required=True)
    train.add_argument("--set", action="append", default=[], help="key=value override")
    ev = sub.add_parser("eval", help="evaluate a trained reward model on pairs")
    ev.add_argument("--model", required=True, help="a saved reward model folder (final/)")
    ev.add_argument("--data", required=True, nargs="+", help="pair JSONL files")
    ev.add_argument("--split", default="test", choices=["train", "test", "all"])
    ev.add_argument(
        "--test-fraction",
        type=float,
        default=None,
        help="the split's test share (default: the trained model's run config, else 0.2)",
    )
    ev.add_argument("--bootstrap", type=int, default=2000)
    ev.add_argument("--batch-size", type=int, default=16)
    ev.add_argument("--limit", type=int, default=0, help="at most this many problems per source")
    ev.add_argument("--out", type=Path, default=None, help="write the report as JSON")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded in reports
    handlers = {"data": cmd_data, "train": cmd_train, "eval": cmd_eval}
    try:
        return handlers[args.command](args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"rewardkit-rm {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
