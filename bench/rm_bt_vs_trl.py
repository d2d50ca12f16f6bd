"""Bradley-Terry reward-model training step: rewardkit-rm vs TRL's RewardTrainer.

Same model (the packaged `smollm2-135m-instruct`, float32), same pairs, batch (pairs per
step), LoRA (r 16, α 32, every linear layer of the top `--lora-layers` decoder layers; the
scalar head trained in full: TRL's `modules_to_save=["score"]`, our head), AdamW at the
same learning rate, no gradient checkpointing and no mixed precision on either side
(TRL's defaults switch both on; they change the work done).

The pairs are HumanEval canonical-vs-mutant pairs (`rewardkit-rm data --source
code.humaneval`) whose chosen and rejected both encode to at least `--length` tokens,
cut to their last `--length` tokens by our encoder: every sequence of every batch is
exactly `--length` tokens, so any batch either trainer draws costs the same, and both get
the very same token ids. rewardkit-rm runs its real `train()` loop (step_seconds in its
metrics), TRL its `RewardTrainer.train()` (timed per step by a callback). Runs go
rewardkit, TRL, rewardkit (each in its own subprocess, same thread count) so that a change
of load shows as a gap between the two rewardkit runs; the first step of each run is left
out (it warms caches). Reported: median step seconds of each run and the ratio
TRL / rewardkit (each TRL step against the rewardkit runs' pooled median).

    OMP_NUM_THREADS=1 uv run --no-sync python bench/rm_bt_vs_trl.py --steps 4
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL = "smollm2-135m-instruct"


def pairs_of_length(data: Path, length: int, count: int):
    """`count` pairs whose chosen and rejected both encode to >= `length` tokens, and the
    tokenizer's encoding of them cut to `length` tokens."""
    from transformers import AutoTokenizer

    from rewardkit.models import resolve_model
    from rewardkit_rm.data import encode, load_pairs

    tok = AutoTokenizer.from_pretrained(resolve_model(MODEL))
    picked = []
    for pair in load_pairs(data):
        c = encode(tok, pair.prompt, pair.chosen, 10_000)[0]
        r = encode(tok, pair.prompt, pair.rejected, 10_000)[0]
        if len(c) >= length and len(r) >= length:
            picked.append(pair)
        if len(picked) == count:
            return picked
    raise SystemExit(f"only {len(picked)} pairs of {data} reach {length} tokens")


def run_ours(args, out: Path) -> list[float]:
    from rewardkit_rm.config import RMConfig
    from rewardkit_rm.train import train

    pairs = pairs_of_length(args.data, args.length, args.batch_size * args.steps)
    config = RMConfig(
        model=MODEL,
        loss="bt",
        lora_r=16,
        lora_alpha=32,
        lora_layers=args.lora_layers,
        max_length=args.length,
        batch_size=args.batch_size,
        max_steps=args.steps,
        learning_rate=1e-4,
        lr_scheduler="constant",
        log_every=1,
        eval_pairs=0,
        output_dir=str(out),
        progress=False,
        data=[{"path": str(args.data)}],  # unused: the rows are given
    )
    train(config, rows=(pairs, []))
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return [r["step_seconds"] for r in rows]


def run_trl(args, out: Path) -> list[float]:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, TrainerCallback
    from trl import RewardConfig, RewardTrainer

    from rewardkit.models import resolve_model
    from rewardkit_rm.data import encode_rows

    path = resolve_model(MODEL)
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    pairs = pairs_of_length(args.data, args.length, args.batch_size * args.steps)
    items, _ = encode_rows(tok, pairs, args.length)
    assert all(len(e.ids) == len(e.rejected_ids) == args.length for e in items)
    dataset = Dataset.from_list(
        [{"chosen_ids": e.ids, "rejected_ids": e.rejected_ids} for e in items]
    )
    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=1, dtype=torch.float32
    )
    model.config.pad_token_id = tok.pad_token_id
    n_layers = model.config.num_hidden_layers
    names = sorted(
        {
            n.rsplit(".", 1)[-1]
            for n, m in model.model.named_modules()
            if isinstance(m, torch.nn.Linear)
        }
    )
    lora = LoraConfig(
        r=16,
        lora_alpha=32,
        lora_dropout=0.0,
        target_modules=names,
        layers_to_transform=list(range(n_layers - args.lora_layers, n_layers)),
        layers_pattern="layers",
        task_type="SEQ_CLS",
        modules_to_save=["score"],
    )
    times: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.start = time.perf_counter()

        def on_step_end(self, *a, **k):
            times.append(time.perf_counter() - self.start)

    config = RewardConfig(
        output_dir=str(out),
        report_to=[],
        max_length=None,
        per_device_train_batch_size=args.batch_size,
        max_steps=args.steps,
        learning_rate=1e-4,
        lr_scheduler_type="constant",
        bf16=False,
        use_cpu=True,
        gradient_checkpointing=False,
        logging_steps=10_000,
        save_strategy="no",
        dataloader_num_workers=0,
    )
    trainer = RewardTrainer(
        model=model,
        args=config,
        train_dataset=dataset,
        processing_class=tok,
        peft_config=lora,
        callbacks=[StepTimer()],
    )
    trainer.train()
    return times


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="code.humaneval pairs JSONL")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--lora-layers", type=int, default=8)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "rm_bt_vs_trl")
    parser.add_argument("--worker", choices=["ours", "trl"], default=None)
    parser.add_argument("--worker-out", type=Path, default=None)
    args = parser.parse_args()
    if args.data is None:
        from rewardkit_rm.train import source_file

        args.data = source_file("code.humaneval", {}, ROOT / "runs" / "rm_data")
    if args.worker:
        run = run_ours if args.worker == "ours" else run_trl
        with tempfile.TemporaryDirectory() as tmp:
            times = run(args, Path(tmp) / "run")
        args.worker_out.write_text(json.dumps(times))
        return

    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    runs = []
    for who in ("ours", "trl", "ours"):
        with tempfile.TemporaryDirectory() as tmp:
            result = Path(tmp) / "times.json"
            before = uptime()
            cmd = [sys.executable, __file__, "--worker", who, "--worker-out", str(result),
                   "--data", str(args.data), "--steps", str(args.steps),
                   "--batch-size", str(args.batch_size), "--length", str(args.length),
                   "--lora-layers", str(args.lora_layers)]  # fmt: skip
            subprocess.run(cmd, check=True)
            times = json.loads(result.read_text())
        runs.append({"trainer": who, "step_seconds": times, "uptime_before": before,
                     "uptime_after": uptime()})  # fmt: skip
        print(who, [round(t, 2) for t in times], flush=True)
    ours = [t for r in runs if r["trainer"] == "ours" for t in r["step_seconds"][1:]]
    trl = runs[1]["step_seconds"][1:]
    report = {
        "command": "OMP_NUM_THREADS=" + threads + " uv run --no-sync python bench/rm_bt_vs_trl.py "
        + " ".join(sys.argv[1:]),
        "settings": {"model": MODEL, "pairs_per_step": args.batch_size, "tokens_per_sequence":
                     args.length, "steps_per_run": args.steps, "lora": {"r": 16, "alpha": 32,
                     "layers": f"top {args.lora_layers}", "modules": "every linear"},
                     "threads": threads, "dtype": "float32", "gradient_checkpointing": False},
        "runs": runs,
        "median_step_seconds": {"rewardkit_rm": statistics.median(ours),
                                "trl": statistics.median(trl)},
        "ratio_trl_over_rewardkit_rm": statistics.median(trl) / statistics.median(ours),
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Path(str(args.out) + ".json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report["median_step_seconds"]), report["ratio_trl_over_rewardkit_rm"])


if __name__ == "__main__":
    main()
