"""Parity of rewardkit's GRPO loss with `trl.GRPOTrainer._compute_loss` (specs/core.md §1).

Shao et al. 2024 (GRPO) with TRL's aggregations. For one tiny model, one batch and one set of
advantages / old / reference log-probs, the loss value and every parameter's gradient must
agree within 1e-5 (float32).

"Ours" is the real training path of `rewardkit.trainer.GRPOTrainer.train_step`:
`make_micro_batches` (packed and padded, with a small token budget so that there are several
micro-batches) -> `completion_logprobs` -> `per_token_loss` on the gathered (rows, cols) ->
`(token_weights[rows, cols] * l).sum()` -> backward, summed over the micro-batches.

"TRL" is a real `trl.GRPOTrainer` built from a `GRPOConfig`, whose `_compute_loss(model, inputs)`
gets an inputs dict as its `_generate_and_score_completions` would build it:

    prompt_ids / prompt_mask          left-padded prompts (pad id, mask 0 on padding)
    completion_ids / completion_mask  right-padded completions; completion_mask is TRL's
                                      *attention* mask of the completion (1 on every real token)
    tool_mask                         our Sample.completion_mask (1 = policy token, 0 = a token
                                      written by a tool); TRL's loss mask is
                                      completion_mask * tool_mask, ours is that same mask
    advantages                        (B, T), the per-token advantages we give per_token_loss
    old_per_token_logps               our old log-probs (num_iterations > 1); absent = on-policy
    ref_per_token_logps               our reference log-probs (beta > 0)
    num_items_in_batch                number of policy tokens in the generation batch, summed
                                      over processes (TRL: gather(loss_mask.sum()).sum())

Normalisers. TRL divides grpo/bnpo/dr_grpo by `current_gradient_accumulation_steps` (GA) and
dapo by `num_items_in_batch / num_processes * GA / steps_per_generation`. Our step batch is one
TRL generation batch of one process, so:

- GA = steps_per_generation = 1, one `_compute_loss` call on the whole batch: every loss_type
  defines the same quantity as ours (dapo: num_items_in_batch = our global_tokens,
  num_processes = 1; dr_grpo: TRL's B = per_token_loss.size(0) = our B, both with
  GRPOConfig.max_completion_length).
- GA = steps_per_generation = 2, the batch cut into two equal slices, losses summed: grpo,
  dr_grpo and dapo still agree (means of equal-size slices), bnpo does not by definition
  (TRL normalises by the tokens of each slice, ours by those of the whole local batch), so it
  is left out there.

KL: TRL 1.16's `use_bias_correction_kl` (default True, after DeepSeek-V3.2) multiplies the k3
KL by the differentiable ratio ρ_it, which changes the gradient even on-policy (ρ = 1 in value,
not in gradient). specs/core.md §1 and `per_token_loss` use plain β·KL_it, which is TRL with
`use_bias_correction_kl=False`: the parity tests set it. A separate test pins the difference
down: TRL's default equals ours plus β·KL_it·(ρ_it − 1), computed here by hand.

Temperature: both sides divide the logits by it (GRPOConfig.temperature = our
`completion_logprobs(..., temperature)`), 0.7 here.

Position ids: TRL passes none, so a left-padded prompt starts at position = its padding,
ours starts at 0. The tiny model is a Llama with RoPE, whose attention depends only on
relative positions, so the two agree up to float rounding (well under 1e-5 here).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import pytest
import torch

from rewardkit.data import TrainSequence, completion_logprobs, make_micro_batches, scatter_to_batch
from rewardkit.tiny import build_tiny_model
from rewardkit.trainer.loss import per_token_loss, token_weights

datasets = pytest.importorskip("datasets")
trl = pytest.importorskip("trl")

ATOL = 1e-5
TEMPERATURE = 0.7
MAX_COMPLETION_LENGTH = 7  # > the longest completion (6), so dr_grpo's constant matters
TOKEN_BUDGET = 12  # input lengths 7,5,4,9,5,8 -> 3 or more micro-batches in both modes
LOSS_TYPES = ["grpo", "bnpo", "dr_grpo", "dapo"]

# (prompt length, policy mask of the completion): 0 marks a tool token inside a completion
SHAPES = [
    (3, [1, 1, 0, 0, 1]),
    (5, [1]),
    (2, [1, 1, 1]),
    (6, [0, 0, 0, 0]),  # no policy token at all (e.g. a masked truncated completion)
    (4, [1, 1]),
    (3, [1, 0, 1, 1, 1, 1]),
]


@dataclass
class Batch:
    prompts: list[list[int]]
    completions: list[list[int]]
    policy_masks: list[list[int]]
    advantages: torch.Tensor  # (B, MAX_COMPLETION_LENGTH), 0 past each completion
    old_logp: torch.Tensor  # (B, MAX_COMPLETION_LENGTH), log-probs of a different policy
    ref_logp: torch.Tensor  # (B, MAX_COMPLETION_LENGTH)

    @property
    def loss_mask(self) -> torch.Tensor:
        mask = torch.zeros(len(self.prompts), MAX_COMPLETION_LENGTH)
        for i, m in enumerate(self.policy_masks):
            mask[i, : len(m)] = torch.tensor(m, dtype=torch.float)
        return mask

    def seqs(self) -> list[TrainSequence]:
        return [
            TrainSequence(p, c, i) for i, (p, c) in enumerate(zip(self.prompts, self.completions))
        ]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny model saved to disk: TRL loads its reference model (beta > 0) from that path."""
    path = tmp_path_factory.mktemp("parity") / "tiny"
    model, tokenizer = build_tiny_model(path, seed=0, num_layers=2, hidden_size=32, num_heads=2)
    return model, tokenizer, tmp_path_factory.mktemp("trl_out")


@pytest.fixture(scope="module")
def batch(tiny) -> Batch:
    model, tokenizer, _ = tiny
    gen = torch.Generator().manual_seed(0)
    vocab = len(tokenizer)
    prompts = [torch.randint(4, vocab, (p,), generator=gen).tolist() for p, _ in SHAPES]
    completions = [torch.randint(4, vocab, (len(m),), generator=gen).tolist() for _, m in SHAPES]
    B, T = len(SHAPES), MAX_COMPLETION_LENGTH
    real = torch.zeros(B, T, dtype=torch.bool)
    for i, c in enumerate(completions):
        real[i, : len(c)] = True
    # current log-probs, to put the old and reference policies at a controlled distance
    logp = torch.zeros(B, T)
    seqs = [TrainSequence(p, c, i) for i, (p, c) in enumerate(zip(prompts, completions))]
    with torch.no_grad():
        for mb in make_micro_batches(seqs, 10_000, "padded", tokenizer.pad_token_id):
            scatter_to_batch(completion_logprobs(model, mb, TEMPERATURE)[0], mb, logp)
    # |log ratio| up to 0.6 > log(1.28): plenty of tokens on the clipped branch of each side
    old = logp + (torch.rand(B, T, generator=gen) - 0.5) * 1.2
    ref = logp + (torch.rand(B, T, generator=gen) - 0.5) * 1.0
    advantages = torch.randn(B, T, generator=gen)
    return Batch(
        prompts,
        completions,
        [m for _, m in SHAPES],
        advantages * real,
        old * real,
        ref * real,
    )


# ---------------------------------------------------------------- our side: train_step's path


def ours(
    model, batch: Batch, loss_type, beta, eps, eps_high, off_policy, mode, kl_times_ratio=False
):
    """Loss and gradients the way GRPOTrainer.train_step computes them for one iteration.

    `kl_times_ratio` adds β·KL·(ρ − 1) per token (with gradient), turning β·KL into TRL's
    bias-corrected β·KL·ρ; it is not part of rewardkit's loss."""
    model = copy.deepcopy(model).train()
    pad_id = 0
    mbs = make_micro_batches(batch.seqs(), TOKEN_BUDGET, mode, pad_id)
    assert len(mbs) >= 3, "the budget must cut the batch into several micro-batches"
    loss_mask = batch.loss_mask
    weights = token_weights(
        loss_mask,
        loss_type,
        MAX_COMPLETION_LENGTH,
        global_tokens=loss_mask.sum().item(),
        num_processes=1,
    )
    total, clipped, tokens = 0.0, 0.0, 0.0
    for mb in mbs:
        logp, _ = completion_logprobs(model, mb, TEMPERATURE, with_entropy=True)
        r, t = mb.rows, mb.cols
        tl = per_token_loss(
            logp,
            batch.old_logp[r, t] if off_policy else None,
            batch.advantages[r, t],
            eps,
            eps_high,
            beta,
            batch.ref_logp[r, t] if beta > 0 else None,
        )
        token_loss = tl.loss
        if kl_times_ratio:
            old = batch.old_logp[r, t] if off_policy else logp.detach()
            delta = batch.ref_logp[r, t] - logp
            kl = torch.exp(delta) - delta - 1
            token_loss = token_loss + beta * kl * (torch.exp(logp - old) - 1)
        loss = (weights[r, t] * token_loss).sum()
        loss.backward()
        total += loss.item()
        clipped += (tl.clipped.float() * loss_mask[r, t]).sum().item()
        tokens += loss_mask[r, t].sum().item()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    return total, grads, clipped / tokens


# ---------------------------------------------------------------- TRL's side


def _pad(rows: list[list], value, left: bool, dtype) -> torch.Tensor:
    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), value, dtype=dtype)
    for i, r in enumerate(rows):
        if r:
            values = torch.tensor(r, dtype=dtype)
            if left:
                out[i, width - len(r) :] = values
            else:
                out[i, : len(r)] = values
    return out


def trl_inputs(batch: Batch, rows: list[int], pad_id: int, off_policy: bool, beta: float):
    """The dict `_generate_and_score_completions` would hand `_compute_loss` for these rows."""
    prompts = [batch.prompts[i] for i in rows]
    completions = [batch.completions[i] for i in rows]
    width = max(len(c) for c in completions)
    inputs = {
        "prompt_ids": _pad(prompts, pad_id, True, torch.long),
        "prompt_mask": _pad([[1] * len(p) for p in prompts], 0, True, torch.long),
        "completion_ids": _pad(completions, pad_id, False, torch.long),
        "completion_mask": _pad([[1] * len(c) for c in completions], 0, False, torch.long),
        "tool_mask": _pad([batch.policy_masks[i] for i in rows], 1, False, torch.long),
        "advantages": batch.advantages[rows, :width],
        # the whole generation batch's policy tokens (one process)
        "num_items_in_batch": batch.loss_mask.sum(),
    }
    if off_policy:
        inputs["old_per_token_logps"] = batch.old_logp[rows, :width]
    if beta > 0:
        inputs["ref_per_token_logps"] = batch.ref_logp[rows, :width]
    return inputs


def trl_side(
    tiny,
    batch: Batch,
    loss_type,
    beta,
    eps,
    eps_high,
    off_policy,
    accumulation=1,
    bias_correction_kl=False,
):
    model, tokenizer, out_dir = tiny
    B = len(batch.prompts)
    args = trl.GRPOConfig(
        output_dir=str(out_dir),
        report_to="none",
        use_cpu=True,
        bf16=False,
        per_device_train_batch_size=B // accumulation,
        gradient_accumulation_steps=accumulation,
        num_generations=2,
        max_completion_length=MAX_COMPLETION_LENGTH,
        temperature=TEMPERATURE,
        loss_type=loss_type,
        beta=beta,
        epsilon=eps,
        epsilon_high=eps_high,
        num_iterations=2 if off_policy else 1,
        save_strategy="no",
        use_bias_correction_kl=bias_correction_kl,
    )
    assert args.steps_per_generation == accumulation
    train = datasets.Dataset.from_dict({"prompt": ["1+1="] * B})
    trainer = trl.GRPOTrainer(
        model=copy.deepcopy(model),
        reward_funcs=lambda prompts, completions, **kw: [0.0] * len(prompts),
        args=args,
        train_dataset=train,
        processing_class=tokenizer,
    )
    assert (trainer.loss_type, trainer.beta) == (loss_type, beta)
    assert (trainer.epsilon_low, trainer.epsilon_high) == (eps, eps_high)
    trainer.model.train()  # _compute_loss normalises differently in eval mode
    trainer.current_gradient_accumulation_steps = accumulation  # set by Trainer's training loop
    total = 0.0
    size = B // accumulation
    for k in range(accumulation):  # one _compute_loss + backward per accumulation slice
        rows = list(range(k * size, (k + 1) * size))
        inputs = trl_inputs(batch, rows, tokenizer.pad_token_id, off_policy, beta)
        loss = trainer._compute_loss(trainer.model, inputs)
        loss.backward()
        total += loss.item()
    grads = {n: p.grad.clone() for n, p in trainer.model.named_parameters()}
    return total, grads


def assert_same(ours_result, trl_result, label: str):
    loss, grads, _ = ours_result
    trl_loss, trl_grads = trl_result
    assert loss == pytest.approx(trl_loss, abs=ATOL), f"{label}: loss {loss} vs TRL {trl_loss}"
    assert grads.keys() == trl_grads.keys()
    biggest = max(g.abs().max().item() for g in trl_grads.values())
    assert biggest > 1e-3, f"{label}: TRL's gradient is ~0, the comparison would prove nothing"
    for name, g in grads.items():
        diff = (g - trl_grads[name]).abs().max().item()
        assert diff <= ATOL, f"{label}: grad of {name} differs from TRL's by {diff}"


# ---------------------------------------------------------------- the tests

CASES = {
    # name: (beta, epsilon, epsilon_high, off_policy)
    "on_policy": (0.0, 0.2, 0.2, False),
    "off_policy_clipped_kl": (0.05, 0.2, 0.28, True),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_loss_and_gradients_match_trl(tiny, batch, loss_type, case):
    beta, eps, eps_high, off_policy = CASES[case]
    reference = trl_side(tiny, batch, loss_type, beta, eps, eps_high, off_policy)
    for mode in ("padded", "packed"):
        result = ours(tiny[0], batch, loss_type, beta, eps, eps_high, off_policy, mode)
        assert_same(result, reference, f"{loss_type}/{case}/{mode}")
        clip_fraction = result[2]
        if off_policy:  # both branches of the min are exercised
            assert 0.1 < clip_fraction < 0.9, clip_fraction
        else:  # ratio = 1: never clipped
            assert clip_fraction == 0.0


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo"])
def test_trl_gradient_accumulation_matches_one_local_batch(tiny, batch, loss_type):
    """TRL with GA = steps_per_generation = 2 over two equal slices = our one step batch."""
    reference = trl_side(tiny, batch, loss_type, 0.05, 0.2, 0.28, True, accumulation=2)
    result = ours(tiny[0], batch, loss_type, 0.05, 0.2, 0.28, True, "packed")
    assert_same(result, reference, f"{loss_type}/GA=2")


def test_parity_check_detects_a_wrong_normaliser(tiny, batch):
    """The comparison can fail: grpo's loss is not bnpo's on this batch (different lengths)."""
    reference = trl_side(tiny, batch, "grpo", 0.0, 0.2, 0.2, False)
    result = ours(tiny[0], batch, "bnpo", 0.0, 0.2, 0.2, False, "padded")
    with pytest.raises(AssertionError):
        assert_same(result, reference, "bnpo vs grpo")


@pytest.mark.parametrize("off_policy", [False, True])
def test_trl_default_kl_is_bias_corrected(tiny, batch, off_policy):
    """TRL's default use_bias_correction_kl=True is β·KL·ρ, not the spec's β·KL: our loss
    differs from it, and adding β·KL·(ρ − 1) by hand closes the gap exactly."""
    reference = trl_side(tiny, batch, "dapo", 0.05, 0.2, 0.28, off_policy, bias_correction_kl=True)
    plain = ours(tiny[0], batch, "dapo", 0.05, 0.2, 0.28, off_policy, "packed")
    with pytest.raises(AssertionError, match="loss|grad of"):
        assert_same(plain, reference, "plain KL vs TRL's default")
    corrected = ours(tiny[0], batch, "dapo", 0.05, 0.2, 0.28, off_policy, "packed", True)
    assert_same(corrected, reference, "KL·ρ vs TRL's default")
