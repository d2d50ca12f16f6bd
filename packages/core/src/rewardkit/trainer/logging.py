"""Run outputs: metrics through accelerate trackers, sampled completions, the end PNG.

Trackers: `jsonl` (metrics.jsonl, always available), `tensorboard`, and `wandb` when it
is installed. Only the main process writes.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from accelerate.tracking import GeneralTracker


class JSONLTracker(GeneralTracker):
    """One JSON object per logged step in <output_dir>/metrics.jsonl."""

    name = "jsonl"
    requires_logging_directory = True

    def __init__(self, run_name: str, logging_dir: str | Path):
        super().__init__()
        self.run_name = run_name
        self.path = Path(logging_dir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = None  # opened at the first row: a fresh run first sets old logs aside

    @property
    def tracker(self):
        return self._file

    def store_init_configuration(self, values: dict[str, Any]) -> None:
        (self.path.parent / "config.json").write_text(json.dumps(values, indent=2, default=str))

    def log(self, values: dict[str, Any], step: int | None = None, **kwargs: Any) -> None:
        if self._file is None:
            self._file = self.path.open("a")
        self._file.write(json.dumps({"step": step, **values}, default=float) + "\n")
        self._file.flush()

    def finish(self) -> None:
        if self._file is not None:
            self._file.close()


RUN_LOGS = ("metrics.jsonl", "completions.jsonl")  # appended to step by step


def set_aside_previous_logs(output_dir: str | Path) -> list[Path]:
    """A fresh run (training from step 0) in a directory that holds an earlier run's logs:
    move them to `<name>.before-<UTC time>.jsonl` with a warning, so that the new run's logs
    hold only its own rows. Returns the new paths."""
    moved = []
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for name in RUN_LOGS:
        path = Path(output_dir) / name
        if path.exists():
            target = path.with_name(f"{path.stem}.before-{stamp}.jsonl")
            path.rename(target)
            moved.append(target)
    if moved:
        warnings.warn(
            f"{output_dir} held logs of an earlier run; moved to "
            + ", ".join(p.name for p in moved)
            + " (resume with resume_from=latest to continue that run instead)",
            stacklevel=2,
        )
    return moved


def drop_rows_after(output_dir: str | Path, step: int) -> int:
    """On resume from a checkpoint at `step`: drop the rows that the interrupted run logged
    after it (those steps run again), and a line torn by the interruption. Returns how many
    rows were dropped (with a warning when any)."""
    dropped = 0
    for name in RUN_LOGS:
        path = Path(output_dir) / name
        if not path.exists():
            continue
        lines = path.read_text().splitlines(keepends=True)
        kept = [line for line in lines if _logged_step(line) <= step]
        if len(kept) < len(lines):
            dropped += len(lines) - len(kept)
            path.write_text("".join(kept))  # an open append handle keeps appending at the end
    if dropped:
        warnings.warn(
            f"resuming at step {step}: dropped {dropped} log rows of {output_dir} that the "
            "interrupted run wrote after its last checkpoint",
            stacklevel=2,
        )
    return dropped


def _logged_step(line: str) -> float:
    try:
        return float(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return math.inf  # torn or foreign: not a row of a step before the checkpoint


def trackers(report_to: list[str], output_dir: str | Path) -> list[Any]:
    """Accelerate `log_with` entries for the configured trackers."""
    out: list[Any] = []
    for name in report_to:
        if name == "jsonl":
            out.append(JSONLTracker("rewardkit", output_dir))
        elif name == "tensorboard":
            out.append("tensorboard")
        elif name == "wandb":
            try:
                import wandb  # noqa: F401
            except ImportError:
                continue  # documented: wandb is used when installed
            out.append("wandb")
    return out


def write_completions(path: Path, step: int, samples, raw: dict[str, list[float]], adv) -> None:
    """Append the step's sampled completions with each reward's score."""
    with path.open("a") as f:
        for i, s in enumerate(samples):
            row = {
                "step": step,
                "group": s.group,
                "prompt": s.prompt,
                "completion": s.completion,
                "rewards": {name: values[i] for name, values in raw.items()},
                "advantage": float(adv[i]),
                "truncated": s.truncated,
            }
            f.write(json.dumps(row, default=str) + "\n")


def plot_history(
    history: list[dict[str, float]],
    path: Path,
    title: str = "rewardkit",
    accuracy_reward: str | None = None,
) -> None:
    """PNG of the training reward (total, and the accuracy reward alone) and held-out
    accuracy against steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    steps = [h["step"] for h in history if "reward/total/mean" in h]
    rewards = [h["reward/total/mean"] for h in history if "reward/total/mean" in h]
    if steps:
        ax.plot(steps, rewards, label="train reward (mean)", color="tab:blue", alpha=0.8)
    key = f"reward/{accuracy_reward}/mean"
    train_acc = [(h["step"], h[key]) for h in history if key in h]
    if train_acc and accuracy_reward:
        ax.plot(
            *zip(*train_acc, strict=True),
            label=f"train {accuracy_reward} (mean)",
            color="tab:green",
            alpha=0.6,
        )
    evals = [(h["step"], h["eval/accuracy"]) for h in history if "eval/accuracy" in h]
    evals = [(s, a) for s, a in evals if not math.isnan(a)]
    if evals:
        ax.plot(*zip(*evals, strict=True), "o-", label="held-out accuracy", color="tab:red")
    ax.set_xlabel("step")
    ax.set_ylabel("reward / accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        elif isinstance(v, int | float | str | bool) or v is None:
            out[key] = v if v is not None else "None"
        else:
            out[key] = str(v)
    return out


class LossTotals:
    """Per-token sums of one step's loss terms, kept on the device (no sync per
    micro-batch) and read once at the end of the step."""

    KEYS = ("loss", "clip", "kl", "entropy", "tokens")

    def __init__(self, device: torch.device):
        self.sums = {k: torch.zeros((), device=device) for k in self.KEYS}

    def add(
        self, loss: torch.Tensor, token_loss: Any, entropy: torch.Tensor, mask: torch.Tensor
    ) -> None:
        """One micro-batch: its weighted loss, and clip / KL / entropy over policy tokens."""
        self.sums["loss"] += loss.detach()
        self.sums["clip"] += (token_loss.clipped.float() * mask).sum()
        self.sums["entropy"] += (entropy.detach() * mask).sum()
        if token_loss.kl is not None:
            self.sums["kl"] += (token_loss.kl * mask).sum()
        self.sums["tokens"] += mask.sum()

    def metrics(self, iterations: int) -> dict[str, float]:
        s = {k: v.item() for k, v in self.sums.items()}
        n = max(s["tokens"], 1.0)
        return {
            "loss": s["loss"] / iterations,
            "clip_fraction": s["clip"] / n,
            "entropy": s["entropy"] / n,
            "kl": s["kl"] / n,
        }


def advantage_metrics(adv: torch.Tensor, loss_mask: torch.Tensor) -> dict[str, float]:
    """Mean, std and largest magnitude of the advantages on the tokens that train."""
    a = adv[loss_mask > 0]
    return {
        "advantage/mean": a.mean().item() if a.numel() else 0.0,
        "advantage/std": a.std().item() if a.numel() > 1 else 0.0,
        "advantage/abs_max": a.abs().max().item() if a.numel() else 0.0,
    }
