"""Train an implicit PRM from response-level labels (arXiv 2412.01981, spec section 3).

    python -m rewardkit_math.train_implicit_prm --model PATH --data train.jsonl --out DIR \
        [--ref PATH] [--loss ce|dpo] [--beta 0.05] [--lr 1e-5] [--epochs 1] [--batch-size 8]

`--data` is JSONL with one response per line: `{"prompt": ..., "completion": ..., "label": 0|1}`;
responses with the same prompt form a group (the DPO pairs). πθ starts from `--model`, the
frozen reference is `--ref` (default: the same weights). Writes the trained model and its
tokenizer to `--out` and one line of metrics per step to `--out/metrics.jsonl`.
Runs on the CPU for tiny models; `--device cuda` for larger ones.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

import torch

from rewardkit.types import Sample
from rewardkit_math.implicit_prm import DEFAULT_BETA, ImplicitPRM


def load_examples(path: str | Path) -> tuple[list[Sample], list[float]]:
    """Samples (group = index of the distinct prompt) and their labels from a JSONL file."""
    samples, labels, groups = [], [], {}
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        missing = [k for k in ("prompt", "completion", "label") if k not in row]
        if missing:
            raise ValueError(f"{path}:{n}: missing {missing}")
        if row["label"] not in (0, 1, True, False):
            raise ValueError(f"{path}:{n}: label must be 0 or 1, got {row['label']!r}")
        group = groups.setdefault(row["prompt"], len(groups))
        samples.append(Sample(row["prompt"], row["completion"], group=group))
        labels.append(float(row["label"]))
    if not samples:
        raise ValueError(f"{path}: no examples")
    return samples, labels


def train(
    prm: ImplicitPRM,
    samples: list[Sample],
    labels: list[float],
    epochs: int = 1,
    batch_size: int = 8,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Shuffled passes over the examples, one optimizer step per batch; returns metrics.

    For DPO a batch is made of whole groups, so that pairs stay together.
    """
    rng = random.Random(seed)
    history = []
    by_group: dict[int, list[int]] = {}
    for i, s in enumerate(samples):
        by_group.setdefault(s.group, []).append(i)
    for epoch in range(epochs):
        groups = list(by_group.values())
        rng.shuffle(groups)
        if prm.loss_name == "dpo":
            batches, current = [], []
            for g in groups:
                current += g
                if len(current) >= batch_size:
                    batches.append(current)
                    current = []
            batches += [current] if current else []
        else:
            order = [i for g in groups for i in g]
            rng.shuffle(order)
            batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        for idx in batches:
            loss = prm.train_step([samples[i] for i in idx], [labels[i] for i in idx])
            history.append({"epoch": epoch, "step": len(history), "loss": loss})
    return history


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="local path of the initial policy")
    parser.add_argument("--ref", default=None, help="reference model path (default: --model)")
    parser.add_argument("--data", required=True, help="JSONL of prompt, completion, label")
    parser.add_argument("--out", required=True, help="folder for the trained model")
    parser.add_argument("--loss", choices=("ce", "dpo"), default="ce")
    parser.add_argument("--beta", type=float, default=DEFAULT_BETA)
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(args.seed)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    ref = AutoModelForCausalLM.from_pretrained(args.ref or args.model, dtype=torch.float32)
    prm = ImplicitPRM(
        model,
        ref,
        tokenizer,
        beta=args.beta,
        loss=args.loss,
        lr=args.lr,
        batch_size=args.batch_size,
        device=args.device,
    )
    samples, labels = load_examples(args.data)
    history = train(prm, samples, labels, args.epochs, args.batch_size, args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    prm.model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    with open(out / "metrics.jsonl", "w", encoding="utf-8") as f:
        for row in history:
            f.write(json.dumps(row) + "\n")
    print(f"trained {len(history)} steps, last loss {history[-1]['loss']:.4f}; saved to {out}")
    return history


if __name__ == "__main__":
    main()
