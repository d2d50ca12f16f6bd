"""SRPO variants tried on MovieLens-100K that the package does not ship (GREAM, arXiv
2510.20815, §3.3): `rewardkit train` on configs/recsys/ml100k.yaml, with

- BEAM=1: rollouts by trie-constrained beam search; each prompt's group is its top
  `num_generations` beams (every sample a real item) instead of temperature samples;
- RECENT=N: SRPO prompts are only each user's N latest training positions;
- GUIDE=k: off-policy guidance (LUFFY, arXiv 2504.14945): the last k samples of each
  group are replaced by the true next item's ID, so every group holds a hit.

Everything else (reward, advantage, dynamic sampling, KL, evaluation) is the package's.
Results: "SRPO settings tried" in packages/recsys/README.md. None of the variants helped,
which is why none is an option of the task. Example (the S6 row):

    BEAM=1 OMP_NUM_THREADS=1 uv run --no-sync python bench/recsys_srpo_variants.py \\
        task_options.eval_split=valid task_options.reasoning_eval_users=0 \\
        num_generations=16 prompts_per_step=16 learning_rate=3e-5 output_dir=runs/recsys/S6

Arguments are `key=value` config overrides, as `rewardkit train --set` takes them.
"""

from __future__ import annotations

import os
import sys

import torch

from rewardkit.data import left_pad
from rewardkit.trainer.components import resolve
from rewardkit.trainer.config import GRPOConfig
from rewardkit.trainer.rollout import Generated
from rewardkit.trainer.trainer import GRPOTrainer
from rewardkit_recsys.inference import IDTrie
from rewardkit_recsys.tasks import MovieLens


def latest_positions_only(n: int) -> None:
    """Make `recsys.movielens`'s train split each user's n latest training positions."""
    rows = MovieLens.rows

    def recent_rows(self, split):
        out = rows(self, split)
        if split != "train":
            return out
        per_user: dict[str, list] = {}
        for r in out:
            per_user.setdefault(r["user"], []).append(r)
        return [r for user_rows in per_user.values() for r in user_rows[-n:]]

    MovieLens.rows = recent_rows


class BeamRollouts:
    """A generation backend: prompts come in blocks of `group` copies (the trainer repeats
    each prompt num_generations times); each block gets its top-`group` constrained beams.
    Greedy calls (the trainer's accuracy evaluation) go to the sampling backend."""

    def __init__(self, trainer: GRPOTrainer, group: int):
        self.trainer, self.group, self.sampler = trainer, group, trainer.backend
        self.trie = IDTrie(trainer.task.ids, trainer.tokenizer)

    @torch.no_grad()
    def generate(self, prompts, max_new_tokens, greedy=False):
        if greedy:
            return self.sampler.generate(prompts, max_new_tokens, greedy=True)
        g, tr, trie = self.group, self.trainer, self.trie
        model = tr.accelerator.unwrap_model(tr.model)
        batch = left_pad(prompts[::g], tr.pad_id, next(model.parameters()).device)
        width = batch["input_ids"].shape[1]
        was_training = model.training
        model.eval()
        out = model.generate(
            **batch,
            num_beams=g,
            num_return_sequences=g,
            do_sample=False,
            max_new_tokens=trie.depth + 1,
            length_penalty=0.0,
            early_stopping=True,
            prefix_allowed_tokens_fn=lambda _b, ids: trie.allowed(ids[width:].tolist()),
            pad_token_id=tr.pad_id,
            eos_token_id=trie.eos,
        )
        model.train(was_training)
        rows = out[:, width:].tolist()
        return [Generated(r[: r.index(trie.eos) + 1], truncated=False) for r in rows]


def guide_groups(trainer: GRPOTrainer, k: int) -> None:
    """Off-policy guidance (LUFFY, arXiv 2504.14945): in every sampled group the last k
    samples are replaced by the true next item's ID (+ end of sequence), so each group
    holds a hit and the sampled IDs become its negatives. Greedy rollouts are untouched."""
    if not 0 < k < trainer.config.num_generations:
        raise ValueError(f"GUIDE={k}: must be between 1 and num_generations - 1")
    sample_rollout = trainer.rollout
    tok = trainer.tokenizer

    def guided(rows, group_offset=0, greedy=False, generations=None):
        samples = sample_rollout(rows, group_offset, greedy, generations)
        if greedy:
            return samples
        g = generations or trainer.config.num_generations
        for j, s in enumerate(samples):
            if j % g >= g - k:
                ids = tok(s.meta["target_id"], add_special_tokens=False)["input_ids"]
                s.completion_ids = list(ids) + [tok.eos_token_id]
                s.completion_mask = [1] * len(s.completion_ids)
                s.completion = tok.decode(s.completion_ids, skip_special_tokens=True)
                s.truncated = False
        return samples

    trainer.rollout = guided


def main() -> None:
    torch.set_num_threads(1)
    if int(os.environ.get("RECENT", "0")) > 0:
        latest_positions_only(int(os.environ["RECENT"]))
    config = GRPOConfig.load("configs/recsys/ml100k.yaml", sys.argv[1:])
    trainer = GRPOTrainer(config, components=resolve(config))
    if os.environ.get("BEAM", "0") == "1":
        trainer.backend = BeamRollouts(trainer, config.num_generations)
    if int(os.environ.get("GUIDE", "0")) > 0:
        guide_groups(trainer, int(os.environ["GUIDE"]))
    print(
        f"SRPO prompts: {len(trainer.train_rows)}; BEAM={os.environ.get('BEAM', '0')}, "
        f"GUIDE={os.environ.get('GUIDE', '0')}"
    )
    trainer.train()


if __name__ == "__main__":
    main()
