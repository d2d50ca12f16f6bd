"""End to end GREAM on MovieLens-100K: IDs → supervised alignment → SRPO → evaluation.

    rewardkit-recsys run --config configs/recsys/ml100k.yaml [--set key=value ...]

is the same run as `rewardkit train --config configs/recsys/ml100k.yaml` (a thin wrapper:
the task defaults to recsys.movielens, and the metrics table and results file are
named at the end). The config is a plain `GRPOConfig`; the stages around GRPO are task
options, run by the task's hooks (see `tasks.py` and `stages.py`):

1. the task builds (or loads) the semantic-ID map;
2. `prepare_policy`: the ID tokens are added to the policy's tokenizer and embeddings,
   and the policy is taught by supervised alignment over the curriculum stream (seqrec,
   item→ID, ID→title, with reasoning samples mixed in at a growing rate), or loaded from
   `task_options.aligned_model` when that holds a policy aligned with the same settings;
3. `evaluate_policy` before GRPO: both inference modes on the test users;
4. SRPO: GRPO with `recsys.id_match`, `recsys.bgae`, dynamic sampling and β from the config;
5. `evaluate_policy` after GRPO. Results go to `<output_dir>/results.json`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def load(path: str | None, overrides: list[str]):
    """The GRPOConfig of a run: YAML plus `key=value` overrides; task recsys.movielens."""
    from rewardkit.trainer.config import ConfigError, GRPOConfig

    config = GRPOConfig.load(path, ["task=recsys.movielens", *overrides])
    if path is not None:
        import yaml

        named = (yaml.safe_load(Path(path).read_text()) or {}).get("task", config.task)
        if named != "recsys.movielens":
            raise ConfigError(f"rewardkit-recsys run trains recsys.movielens, not {named!r}")
    if config.task != "recsys.movielens":
        raise ConfigError(f"rewardkit-recsys run trains recsys.movielens, not {config.task!r}")
    return config


def run(config) -> dict:
    """Train (the task's hooks do alignment and evaluation); returns results.json."""
    from rewardkit.trainer.components import resolve
    from rewardkit.trainer.trainer import GRPOTrainer

    parts = resolve(config)  # builds or loads the ID map; every name checked
    GRPOTrainer(config, components=parts).train()
    return json.loads((Path(config.output_dir) / "results.json").read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rewardkit-recsys", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="IDs, supervised alignment, SRPO, evaluation of both modes")
    p.add_argument("--config", help="YAML config (a GRPOConfig for recsys.movielens)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    from rewardkit.registry import RegistryError
    from rewardkit.trainer.config import ConfigError

    try:
        config = load(args.config, args.set)
        results = run(config)
    except (ConfigError, RegistryError, FileNotFoundError) as exc:
        print(f"rewardkit-recsys: error: {exc}", file=sys.stderr)
        return 2
    print(f"seconds: {results['seconds']}; results in {config.output_dir}/results.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
