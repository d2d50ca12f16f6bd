"""`rewardkit-rm train`: the reward-model training loop, on accelerate.

    rows     = the config's data (JSONL files, or verifier-built sources cached as JSONL),
               split by problem: the "test" problems never reach training
    model    = backbone + head (the loss says how many outputs), LoRA if lora_r > 0
    for each step:
        batch = next batch_size pairs (or rated responses), tokenized once up front
        loss  = registered loss on the head outputs (chosen and rejected in one forward)
        backward, clip, AdamW step, LR schedule
        log (metrics.jsonl), evaluate on held-out pairs, checkpoint
    final/ = the trained model (LoRA merged), loadable by load_reward_model and rm.score

A checkpoint (checkpoint-N/state.pt) holds the trainable weights, optimizer, scheduler and
step; `resume_from` continues from it with the same data order.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed

from rewardkit_rm.config import RMConfig
from rewardkit_rm.data import (
    LoadReport,
    Pair,
    collate_pairs,
    collate_ratings,
    encode_rows,
    load_pairs,
    load_ratings,
    split_rows,
    write_jsonl,
)
from rewardkit_rm.losses import build_loss
from rewardkit_rm.model import RMSpec, build_reward_model, save_reward_model
from rewardkit_rm.scoring import pair_outputs, progress_bar

log = logging.getLogger(__name__)


# -- data -----------------------------------------------------------------------------------


def source_file(source: str, options: dict[str, Any], cache_dir: str | Path) -> Path:
    """The cached JSONL of a verifier-built source, built on first use."""
    from rewardkit_rm.sources import build_source

    key = hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:10]
    path = Path(cache_dir) / f"{source}-{key}.jsonl"
    if not path.is_file():
        pairs, report = build_source(source, **dict(options))
        tmp = path.with_suffix(".tmp")
        write_jsonl(pairs, tmp)
        Path(str(path) + ".report.json").write_text(json.dumps(report, indent=1))
        tmp.rename(path)
    return path


def load_splits(config: RMConfig) -> tuple[list, list, LoadReport]:
    """(train rows, test rows, load report) of every data entry; pairs, or ratings for a
    regression loss."""
    loss = build_loss(config.loss, config.loss_options)
    report = LoadReport()
    train, test = [], []
    if not config.data:
        raise ValueError("the config has no data: add entries with `path` or `source`")
    for i, entry in enumerate(config.data):
        path = entry.path or source_file(entry.source, entry.options, config.cache_dir)
        if loss.data == "ratings":
            rows = load_ratings(path, loss.attributes, loss.scale, report)
        else:
            rows = load_pairs(path, report)
        split = split_rows(rows, config.test_fraction)
        rows_train = split["train"]
        if entry.max_train_pairs and len(rows_train) > entry.max_train_pairs:
            rows_train = random.Random(config.seed + i).sample(rows_train, entry.max_train_pairs)
        train += rows_train
        test += split["test"]
    check_fields(loss, train)
    return train, test, report


def check_fields(loss: Any, rows: list) -> None:
    """The per-pair fields the loss needs are there (an error names the first row without)."""
    needs = []
    if getattr(loss, "margin_mode", None):
        needs.append("margin")
    if getattr(loss, "flip_below", None) is not None:
        needs.append("strength")
    for key in needs:
        for row in rows:
            if getattr(row, key) is None:
                raise ValueError(
                    f"loss needs `{key}` on every pair; problem {row.problem_id!r} "
                    f"({row.source}) has none"
                )


def batches(lengths: list[int], batch_size: int, seed: int, pool: int = 32):
    """Endless shuffled index batches, epoch after epoch (the same order for a seed).

    Rows of similar length go together (less padding): each run of `pool` batches' worth
    of shuffled rows is sorted by length and cut into batches, and the batches are
    shuffled. An epoch's last incomplete batch is left for the next epoch's shuffle."""
    rng = random.Random(seed)
    n, epoch = len(lengths), 0
    while True:
        order = list(range(n))
        rng.shuffle(order)
        usable = n - n % batch_size if n >= batch_size else n
        cut = []
        for start in range(0, usable, pool * batch_size):
            chunk = sorted(
                order[start : min(start + pool * batch_size, usable)], key=lambda i: lengths[i]
            )
            cut += [chunk[k : k + batch_size] for k in range(0, len(chunk), batch_size)]
        rng.shuffle(cut)
        for idx in cut:
            yield epoch, idx
        epoch += 1


# -- one step -------------------------------------------------------------------------------


def step_loss(rm, loss, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of one collated batch and what to log about it."""
    if loss.data == "ratings":
        device = next(rm.parameters()).device
        ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
        out = rm(ids, mask, batch["prompt_last"].to(device))["out"]
        return loss(out, batch), {}
    chosen, rejected, fields = pair_outputs(rm, batch)
    value = loss(chosen, rejected, fields)
    with torch.no_grad():
        pref = loss.preference(chosen, rejected, gate=fields.get("gate"))
        acc = ((pref > 0).float() + 0.5 * (pref == 0).float()).mean().item()
    return value, {"accuracy": acc, "preference_mean": pref.mean().item()}


@torch.no_grad()
def held_out_accuracy(rm, loss, items, pad_id: int, batch_size: int) -> float:
    """Pairwise accuracy on encoded held-out pairs (ties count half)."""
    rm.eval()
    correct = 0.0
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        chosen, rejected, fields = pair_outputs(rm, collate_pairs(chunk, pad_id))
        pref = loss.preference(chosen, rejected, gate=fields.get("gate"))
        correct += ((pref > 0).float() + 0.5 * (pref == 0).float()).sum().item()
    rm.train()
    return correct / max(len(items), 1)


# -- the loop -------------------------------------------------------------------------------


def train(config: RMConfig, rows: tuple[list, list] | None = None) -> Path:
    """Train a reward model as `config` says; returns the final/ folder. `rows`: (train,
    test) rows to use instead of the config's data."""
    c = config
    out = Path(c.output_dir)
    accelerator = Accelerator(mixed_precision="no")
    set_seed(c.seed)
    loss = build_loss(c.loss, c.loss_options)
    if rows is None:
        train_rows, test_rows, report = load_splits(c)
    else:
        (train_rows, test_rows), report = rows, LoadReport()
    if not train_rows:
        raise ValueError("no training rows after the split (check test_fraction and the data)")
    spec = RMSpec(
        kind=c.kind,
        loss=c.loss,
        loss_options=dict(c.loss_options),
        out_dim=loss.out_dim,
        gate_dim=loss.k if loss.uses_gate else 0,
        max_length=c.max_length,
        base_model=c.model,
        pooling=c.pooling,
    )
    rm, tokenizer = build_reward_model(
        c.model, spec, c.tiny_model, c.lora(), c.seed, c.gradient_checkpointing
    )
    pad = tokenizer.pad_token_id
    train_items, truncated = encode_rows(tokenizer, train_rows, c.max_length)
    eval_rows = random.Random(c.seed).sample(test_rows, min(c.eval_pairs, len(test_rows)))
    eval_items = encode_rows(tokenizer, eval_rows, c.max_length)[0] if loss.data == "pairs" else []

    def collate(items):
        if loss.data == "ratings":
            return collate_ratings(items, pad, loss.attributes)
        return collate_pairs(items, pad)

    params = [p for p in rm.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=c.learning_rate, weight_decay=c.weight_decay)
    from transformers import get_scheduler

    scheduler = get_scheduler(c.lr_scheduler, optimizer, c.warmup_steps, max(c.max_steps, 1))
    rm, optimizer, scheduler = accelerator.prepare(rm, optimizer, scheduler)
    start_step = 0
    if c.resume_from:
        start_step = load_checkpoint(
            c.resume_from, accelerator.unwrap_model(rm), optimizer, scheduler
        )

    info = {
        "train_rows": len(train_rows),
        "test_rows": len(test_rows),
        "train_problems": len({r.problem_id for r in train_rows}),
        "test_problems": len({r.problem_id for r in test_rows}),
        "truncated_sequences": truncated,
        "identical_pairs_skipped": report.identical,
        "trainable_parameters": sum(p.numel() for p in params),
    }
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(c.model_dump(mode="json"), indent=1))
        (out / "data.json").write_text(json.dumps(info, indent=1))
    log.info("reward model: %s", info)

    # a resumed run continues its metrics; a fresh one in the same folder starts them anew
    metrics_file = (out / "metrics.jsonl").open("a" if c.resume_from else "w")
    lengths = [len(e.ids) + len(e.rejected_ids or []) for e in train_items]
    stream = batches(lengths, c.batch_size, c.seed)
    for _ in range(start_step):  # the same data order as an uninterrupted run
        next(stream)
    rm.train()
    window: dict[str, list[float]] = {}
    progress = progress_bar(c.progress and accelerator.is_main_process)
    task = progress.add_task("rm", total=c.max_steps, completed=start_step)
    with progress:
        for step in range(start_step + 1, c.max_steps + 1):
            started = time.perf_counter()
            epoch, idx = next(stream)
            value, stats = step_loss(rm, loss, collate([train_items[i] for i in idx]))
            accelerator.backward(value)
            grad_norm = accelerator.clip_grad_norm_(params, c.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            stats |= {
                "loss": value.item(),
                "grad_norm": float(grad_norm),
                "step_seconds": time.perf_counter() - started,
            }
            for k, v in stats.items():
                window.setdefault(k, []).append(v)
            progress.update(task, advance=1, description=f"rm loss {value.item():.3f}")
            evaluate_now = c.eval_every and step % c.eval_every == 0 or step == c.max_steps
            if step % c.log_every == 0 or evaluate_now:
                row = {k: sum(v) / len(v) for k, v in window.items()}
                row |= {"epoch": epoch, "lr": scheduler.get_last_lr()[0]}
                row |= {f"loss/{k}": v for k, v in loss.stats().items()}
                if evaluate_now and eval_items:
                    row["eval/accuracy"] = held_out_accuracy(
                        rm, loss, eval_items, pad, c.batch_size
                    )
                metrics_file.write(json.dumps({"step": step, **row}) + "\n")
                metrics_file.flush()
                window = {}
            if c.save_every and step % c.save_every == 0 and accelerator.is_main_process:
                save_checkpoint(
                    out / f"checkpoint-{step}",
                    accelerator.unwrap_model(rm),
                    optimizer,
                    scheduler,
                    step,
                )
    metrics_file.close()
    final = out / "final"
    if accelerator.is_main_process:
        save_reward_model(accelerator.unwrap_model(rm), tokenizer, final)
    accelerator.wait_for_everyone()
    return final


def save_checkpoint(path: Path, rm, optimizer, scheduler, step: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    trainable = {n: p.detach().cpu() for n, p in rm.named_parameters() if p.requires_grad}
    torch.save(
        {
            "trainable": trainable,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "step": step,
        },
        path / "state.pt",
    )


def load_checkpoint(path: str | Path, rm, optimizer, scheduler) -> int:
    path = Path(path)
    if not (path / "state.pt").is_file():
        raise FileNotFoundError(f"{path} is not a reward-model checkpoint (no state.pt)")
    state = torch.load(path / "state.pt", map_location="cpu", weights_only=True)
    names = {n for n, p in rm.named_parameters() if p.requires_grad}
    if names != set(state["trainable"]):
        raise ValueError(f"{path}: its trainable weights do not match this config's model")
    rm.load_state_dict(state["trainable"], strict=False)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return int(state["step"])


__all__ = ["Pair", "RMConfig", "load_splits", "train"]
