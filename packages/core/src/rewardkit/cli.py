"""The `rewardkit` command line: list, models, train, eval, demo, serve, replay."""

from __future__ import annotations

import argparse
import sys


def cmd_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from rewardkit.registry import ALL_REGISTRIES

    table = Table(title="rewardkit: installed components")
    for col in ("name", "kind", "distribution", "target"):
        table.add_column(col)
    for registry in ALL_REGISTRIES:
        if args.kind and registry.kind != args.kind:
            continue
        for e in registry.entries():
            table.add_row(e.name, e.kind, e.distribution, e.target)
    Console(width=200 if not sys.stdout.isatty() else None).print(table)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from rewardkit.models import CACHE_ENV, cache_dir, model_table

    table = Table(title="rewardkit: packaged models (`model: <name>` in a config)")
    for col in ("name", "origin", "licence", "installed", "cache"):
        table.add_column(col)
    for row in model_table():
        table.add_row(*(row[col] for col in ("name", "origin", "licence", "installed", "cache")))
    console = Console(width=200 if not sys.stdout.isatty() else None)
    console.print(table)
    console.print(
        f"cache directory: {cache_dir()} (set {CACHE_ENV} to move it); "
        "`model:` also takes a local folder or a hub id (owner/name)"
    )
    return 0


def _config(args: argparse.Namespace):
    from rewardkit.models import check_model_name
    from rewardkit.trainer.config import GRPOConfig

    overrides = list(args.set or [])
    for key in ("task", "model", "output_dir"):
        if getattr(args, key, None) is not None:
            overrides.insert(0, f"{key}={getattr(args, key)}")
    config = GRPOConfig.load(args.config, overrides)
    check_model_name(config.model)  # a misspelt model name fails before anything loads
    return config


def cmd_train(args: argparse.Namespace) -> int:
    from rewardkit.trainer.components import resolve

    config = _config(args)
    parts = resolve(config)  # every name checked before any model loads
    from rewardkit.trainer.trainer import GRPOTrainer

    history = GRPOTrainer(config, components=parts).train()
    accuracies = [h["eval/accuracy"] for h in history if "eval/accuracy" in h]
    if accuracies:
        print(
            f"held-out accuracy: {accuracies[0]:.3f} -> {accuracies[-1]:.3f}; "
            f"outputs in {config.output_dir}"
        )
    else:
        print(f"no held-out evaluation (eval_size 0); outputs in {config.output_dir}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from rewardkit.trainer.components import resolve

    config = _config(args)
    config.max_steps = 0
    config.report_to = []
    parts = resolve(config)
    from rewardkit.trainer.trainer import GRPOTrainer

    trainer = GRPOTrainer(config, components=parts)
    with trainer.scorer:
        accuracy = trainer.evaluate(args.split)
    print(
        f"{config.task} [{args.split}] greedy accuracy of {config.model}: {accuracy:.3f} "
        f"over {min(config.eval_size, len(parts.task.rows(args.split)))} rows"
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from rewardkit.demo import run_demo

    result = run_demo(
        quick=args.quick,
        output_dir=args.output_dir,
        seed=args.seed,
        warm_start_steps=args.warm_start_steps,
        grpo_steps=args.steps,
        learning_rate=args.learning_rate,
    )
    return 0 if result["accuracy_after_grpo"] >= result["accuracy_before_grpo"] else 1


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from rewardkit.serve.cli import run_serve
    except ModuleNotFoundError as exc:  # fastapi / uvicorn
        print(f"rewardkit serve: {exc}; install rewardkit[serve]", file=sys.stderr)
        return 2

    return run_serve(args)


def cmd_replay(args: argparse.Namespace) -> int:
    from rewardkit.replay import run_replay

    return run_replay(args)


def _registries():
    from rewardkit.registry import ALL_REGISTRIES

    return ALL_REGISTRIES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rewardkit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="show installed rewards, estimators, transforms, tasks, ...")
    p.add_argument("--kind", choices=[r.kind for r in _registries()])
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("models", help="show the packaged model names, their origin and licence")
    p.set_defaults(func=cmd_models)
    for name, func, text in (
        ("train", cmd_train, "train with GRPO from a YAML config and/or key=value settings"),
        ("eval", cmd_eval, "greedy held-out accuracy of a model on a task"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--config", help="YAML config file")
        p.add_argument("--task", help="task name (see `rewardkit list`)")
        p.add_argument(
            "--model",
            help="a packaged model name (see `rewardkit models`), a local "
            "folder, a hub id, or 'tiny'",
        )
        p.add_argument("--output-dir", dest="output_dir")
        p.add_argument(
            "--set",
            action="append",
            metavar="KEY=VALUE",
            help="override a config value (repeatable), e.g. --set beta=0.04",
        )
        p.set_defaults(func=func)
        if name == "eval":
            p.add_argument("--split", default="test")
    p = sub.add_parser("demo", help="warm start + GRPO on arithmetic with a tiny model (CPU)")
    p.add_argument("--quick", action="store_true", help="a shorter run (under a minute)")
    p.add_argument("--output-dir", dest="output_dir", default="runs/demo")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--warm-start-steps", dest="warm_start_steps", type=int, help="supervised steps before GRPO"
    )
    p.add_argument("--steps", type=int, help="GRPO steps")
    p.add_argument("--learning-rate", dest="learning_rate", type=float, help="GRPO learning rate")
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser(
        "serve",
        help="score batches over HTTP (native JSON and OpenRLHF's "
        "remote reward model API); needs the extra rewardkit[serve]",
    )
    p.add_argument(
        "--reward",
        action="append",
        default=[],
        metavar="NAME[:WEIGHT]",
        help="a served reward (repeatable, or comma-separated); weights default 1",
    )
    p.add_argument("--task", help="serve this task's default rewards and weights")
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="REWARD.KEY=VALUE",
        help="a reward option (repeatable), e.g. math.accuracy.timeout=10",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-concurrency", type=int, default=4, help="batches scored at once")
    p.add_argument("--max-queue", type=int, default=64, help="batches waiting; more get 503")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per request (504)")
    p.add_argument("--max-body-mb", type=float, default=16.0, help="request size limit (413)")
    p.add_argument(
        "--token-env",
        default="REWARDKIT_SERVE_TOKEN",
        help="environment variable holding the bearer token (none if unset)",
    )
    p.add_argument(
        "--on-error",
        choices=["raise", "zero"],
        default="raise",
        help="zero: a failing reward scores 0 for the batch, counted in `errors`",
    )
    p.add_argument("--label-key", default="answer", help="/get_reward: meta key of labels")
    p.add_argument(
        "--strip-suffix",
        action="append",
        default=[],
        help="/get_reward: text removed from the end of responses (repeatable)",
    )
    p.add_argument("--log-level", default="info")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser(
        "replay",
        help="re-score a run's completions.jsonl with other rewards "
        "and show where rewards disagree",
    )
    p.add_argument("path", help="RUN/completions.jsonl (or the run directory)")
    p.add_argument("--rewards", required=True, metavar="A,B", help="rewards to score with")
    p.add_argument("--option", action="append", default=[], metavar="REWARD.KEY=VALUE")
    p.add_argument(
        "--task", help="task whose rows give the samples' meta (default: the run's config.json)"
    )
    p.add_argument("--task-option", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument(
        "--no-recorded", action="store_true", help="leave out the rewards recorded in the file"
    )
    p.add_argument(
        "--skip-unmatched",
        action="store_true",
        help="drop (and count) rows whose prompt is not in the task",
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="a gap of normalised scores that counts as a disagreement",
    )
    p.add_argument("--top", type=int, default=10, help="disagreements to print")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.add_argument("--output", help="write every row (CSV or JSON by --format or suffix)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per scored step")
    p.set_defaults(func=cmd_replay)
    return parser


def main(argv: list[str] | None = None) -> int:
    from rewardkit.chat import ChatTemplateError
    from rewardkit.models import ModelError
    from rewardkit.registry import RegistryError
    from rewardkit.trainer.config import ConfigError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, RegistryError, ModelError, ChatTemplateError, FileNotFoundError) as exc:
        print(f"rewardkit {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
