"""Parity of rewardkit's GRPO step with `trl.GRPOTrainer._compute_loss` (docs/training.md).

Shao et al. 2024 (GRPO) with TRL's aggregations. For one tiny model, one batch and one set of
advantages, the loss value and every parameter's gradient of each optimizer step must agree
within 1e-5 (float32).

"Ours" is the real `rewardkit.trainer.GRPOTrainer.train_step`, run on a fixed batch: the test
replaces only what produces the batch (`sample_and_score`: no generation, no rewards) and
gives an estimator that returns fixed advantages; everything else is the trainer's own path
(config -> epsilon_low / epsilon_high / beta / loss_type / mask_truncated_completions,
`make_micro_batches` with a small token budget so that there are several micro-batches,
packed and padded, the old / reference log-prob pre-pass, the loss, backward, the optimizer
step). The gradient and the parameters are read just before each optimizer step.

"TRL" is a real `trl.GRPOTrainer` built from a `GRPOConfig`, whose `_compute_loss(model, inputs)`
gets, for each of our optimizer steps, our parameters at that step and an inputs dict as its
`_generate_and_score_completions` would build it:

    prompt_ids / prompt_mask          left-padded prompts (pad id, mask 0 on padding)
    completion_ids / completion_mask  right-padded completions; completion_mask is TRL's
                                      *attention* mask of the completion (1 on every real token,
                                      0 on a truncated completion when mask_truncated_completions)
    tool_mask                         our Sample.completion_mask (1 = policy token, 0 = a token
                                      written by a tool); TRL's loss mask is
                                      completion_mask * tool_mask, ours is that same mask
    advantages                        (B, T), the per-token advantages our estimator returns
    old_per_token_logps               the log-probs of the policy before the step's first update
                                      (num_iterations = 2), computed by TRL's own
                                      `_get_per_token_logps_and_entropies`; absent = on-policy
    ref_per_token_logps               the same for the reference (beta > 0: our reference is the
                                      initial policy)
    num_items_in_batch                number of policy tokens in the generation batch

With num_iterations = 2 the second iteration runs on updated weights (learning rate 0.03), so
its ratios are far from 1 and many tokens are clipped, on both sides: a trainer that swapped
epsilon_low and epsilon_high would fail (a test checks that such a swap is caught).

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
not in gradient). docs/training.md and rewardkit's loss use plain β·KL_it, which is TRL with
`use_bias_correction_kl=False`: the parity tests set it. A separate test pins the difference
down: TRL's default equals ours plus β·KL_it·(ρ_it − 1), computed here by hand.

Temperature: both sides divide the logits by it (GRPOConfig.temperature), 0.7 here.

Position ids: TRL passes none, so a left-padded prompt starts at position = its padding,
ours starts at 0. The tiny model is a Llama with RoPE, whose attention depends only on
relative positions, so the two agree up to float rounding (well under 1e-5 here).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import pytest
import torch

from rewardkit.rewards.scoring import ScoreResult, WeightedReward
from rewardkit.tasks.base import Task
from rewardkit.tiny import build_tiny_model
from rewardkit.trainer.components import Components
from rewardkit.trainer.config import GRPOConfig
from rewardkit.types import RewardOutput, Sample

datasets = pytest.importorskip("datasets")
trl = pytest.importorskip("trl")

ATOL = 1e-5
TEMPERATURE = 0.7
LEARNING_RATE = 0.03  # big enough that the second iteration's ratios leave the clip range
MAX_COMPLETION_LENGTH = 7  # > the longest completion (6), so dr_grpo's constant matters
TOKEN_BUDGET = 12  # input lengths 7,5,4,9,5,8 -> 3 or more micro-batches in both modes
LOSS_TYPES = ["grpo", "bnpo", "dr_grpo", "dapo"]

# (prompt length, policy mask of the completion): 0 marks a tool token inside a completion
SHAPES = [
    (3, [1, 1, 0, 0, 1]),
    (5, [1]),
    (2, [1, 1, 1]),
    (6, [0, 0, 0, 0]),  # no policy token at all
    (4, [1, 1]),
    (3, [1, 0, 1, 1, 1, 1]),
]
TRUNCATED = [False, False, True, False, False, True]  # cut by the length limit


@dataclass
class Batch:
    prompts: list[list[int]]
    completions: list[list[int]]
    policy_masks: list[list[int]]
    advantages: torch.Tensor  # (B, MAX_COMPLETION_LENGTH), 0 past each completion

    @property
    def width(self) -> int:
        return max(len(c) for c in self.completions)

    def samples(self) -> list[Sample]:
        return [
            Sample(
                "p",
                "",
                prompt_ids=p,
                completion_ids=c,
                completion_mask=m,
                group=i // 2,
                truncated=t,
            )
            for i, (p, c, m, t) in enumerate(
                zip(self.prompts, self.completions, self.policy_masks, TRUNCATED, strict=True)
            )
        ]


class OneRowTask(Task):
    def rows(self, split):
        return [{"prompt": "p"}]


class FixedAdvantages:
    """An estimator that returns the test's advantages, cut to the batch's width."""

    requires = frozenset()

    def __init__(self, advantages: torch.Tensor):
        self.advantages = advantages

    def __call__(self, batch):
        return self.advantages[:, : batch.completion_mask.shape[1]].clone()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny model saved to disk: TRL loads its reference model (beta > 0) from that path."""
    path = tmp_path_factory.mktemp("parity") / "tiny"
    model, tokenizer = build_tiny_model(path, seed=0, num_layers=2, hidden_size=32, num_heads=2)
    return model, tokenizer, tmp_path_factory.mktemp("trl_out")


@pytest.fixture(scope="module")
def batch(tiny) -> Batch:
    _, tokenizer, _ = tiny
    gen = torch.Generator().manual_seed(0)
    vocab = len(tokenizer)
    prompts = [torch.randint(4, vocab, (p,), generator=gen).tolist() for p, _ in SHAPES]
    completions = [torch.randint(4, vocab, (len(m),), generator=gen).tolist() for _, m in SHAPES]
    real = torch.zeros(len(SHAPES), MAX_COMPLETION_LENGTH, dtype=torch.bool)
    for i, c in enumerate(completions):
        real[i, : len(c)] = True
    advantages = torch.randn(len(SHAPES), MAX_COMPLETION_LENGTH, generator=gen) * real
    return Batch(prompts, completions, [m for _, m in SHAPES], advantages)


# ---------------------------------------------------------------- our side: the real train_step


@dataclass
class Step:
    """One optimizer step of our trainer: the weights it ran on, its loss and gradients."""

    params: dict[str, torch.Tensor]
    loss: float
    grads: dict[str, torch.Tensor]


def train_step(
    tiny, batch, loss_type, beta, eps, eps_high, off_policy, mode, mask_truncated=False, tmp="/tmp"
):
    """Run GRPOTrainer.train_step once on `batch`; return its optimizer steps and metrics."""
    from rewardkit.trainer.trainer import GRPOTrainer

    model, tokenizer, out_dir = tiny
    config = GRPOConfig(
        model="tiny",
        task="test.fixed",
        num_generations=2,
        prompts_per_step=3,
        max_completion_length=MAX_COMPLETION_LENGTH,
        temperature=TEMPERATURE,
        loss_type=loss_type,
        beta=beta,
        epsilon=eps,
        epsilon_high=eps_high,
        num_iterations=2 if off_policy else 1,
        learning_rate=LEARNING_RATE,
        max_grad_norm=0.0,
        micro_batch_tokens=TOKEN_BUDGET,
        packing=mode == "packed",
        mask_truncated_completions=mask_truncated,
        output_dir=str(out_dir / "ours"),
        report_to=[],
        log_completions_every=0,
        progress=False,
    )
    parts = Components(
        OneRowTask(),
        [WeightedReward("zero", lambda s: [0.0] * len(s))],
        FixedAdvantages(batch.advantages),
        "zero",
    )
    trainer = GRPOTrainer(config, model=copy.deepcopy(model), tokenizer=tokenizer, components=parts)
    samples = batch.samples()
    B = len(samples)
    scored = ScoreResult(torch.zeros(B), {"zero": [0.0] * B}, [RewardOutput(0.0)] * B)
    trainer.sample_and_score = lambda: (samples, scored, {})  # the fixed batch, nothing else
    steps, losses = [], []
    policy = trainer.accelerator.unwrap_model(trainer.model)
    backward, optimizer_step = trainer.accelerator.backward, trainer.optimizer.step

    def record_loss(loss, **kwargs):
        losses.append(loss.item())
        return backward(loss, **kwargs)

    def record_step(*args, **kwargs):
        steps.append(
            Step(
                {n: p.detach().clone() for n, p in policy.named_parameters()},
                sum(losses),
                {n: p.grad.clone() for n, p in policy.named_parameters()},
            )
        )
        losses.clear()
        return optimizer_step(*args, **kwargs)

    trainer.accelerator.backward = record_loss
    trainer.optimizer.step = record_step
    metrics = trainer.train_step()
    trainer.scorer.close()
    assert len(steps) == config.num_iterations
    assert metrics["micro_batches"] >= 3, "the budget must cut the batch into micro-batches"
    return steps, metrics


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


def trl_trainer(
    tiny,
    loss_type,
    beta,
    eps,
    eps_high,
    accumulation=1,
    bias_correction_kl=False,
    importance_sampling_level="token",
):
    model, tokenizer, out_dir = tiny
    B = len(SHAPES)
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
        save_strategy="no",
        use_bias_correction_kl=bias_correction_kl,
        importance_sampling_level=importance_sampling_level,
    )
    assert args.steps_per_generation == accumulation
    trainer = trl.GRPOTrainer(
        model=copy.deepcopy(model),
        reward_funcs=lambda prompts, completions, **kw: [0.0] * len(prompts),
        args=args,
        train_dataset=datasets.Dataset.from_dict({"prompt": ["1+1="] * B}),
        processing_class=tokenizer,
    )
    assert (trainer.loss_type, trainer.beta) == (loss_type, beta)
    assert (trainer.epsilon_low, trainer.epsilon_high) == (eps, eps_high)
    trainer.model.train()  # _compute_loss normalises differently in eval mode
    trainer.current_gradient_accumulation_steps = accumulation  # set by Trainer's training loop
    return trainer


def trl_inputs(batch: Batch, rows: list[int], pad_id: int, mask_truncated: bool):
    """The dict `_generate_and_score_completions` would hand `_compute_loss` for these rows
    (without old / reference log-probs)."""
    prompts = [batch.prompts[i] for i in rows]
    completions = [batch.completions[i] for i in rows]
    width = max(len(c) for c in completions)
    attention = [
        [0 if mask_truncated and TRUNCATED[i] else 1] * len(batch.completions[i]) for i in rows
    ]
    inputs = {
        "prompt_ids": _pad(prompts, pad_id, True, torch.long),
        "prompt_mask": _pad([[1] * len(p) for p in prompts], 0, True, torch.long),
        "completion_ids": _pad(completions, pad_id, False, torch.long),
        "completion_mask": _pad(attention, 0, False, torch.long),
        "tool_mask": _pad([batch.policy_masks[i] for i in rows], 1, False, torch.long),
        "advantages": batch.advantages[rows, :width],
    }
    return inputs


def load(trainer, params: dict[str, torch.Tensor]) -> None:
    for name, p in trainer.model.named_parameters():
        p.data.copy_(params[name])
        p.grad = None


def trl_logps(trainer, params, inputs, grad=False) -> torch.Tensor:
    """Per-token log-probs of TRL's model with `params` on `inputs`, by TRL's own function."""
    load(trainer, params)
    input_ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)
    attention = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1)
    with torch.set_grad_enabled(grad):
        logps, *_ = trainer._get_per_token_logps_and_entropies(
            trainer.model, input_ids, attention, inputs["completion_ids"].size(1)
        )
    return logps


def trl_steps(trainer, tiny, batch, steps, off_policy, beta, accumulation=1, mask_truncated=False):
    """TRL's loss and gradients at each of our optimizer steps' weights."""
    model, tokenizer, _ = tiny
    B, pad_id = len(SHAPES), tokenizer.pad_token_id
    full = trl_inputs(batch, list(range(B)), pad_id, mask_truncated)
    loss_mask = full["completion_mask"] * full["tool_mask"]
    old = trl_logps(trainer, dict(model.named_parameters()), full)  # before the first update
    out = []
    for step in steps:
        load(trainer, step.params)
        total, size = 0.0, B // accumulation
        for k in range(accumulation):  # one _compute_loss + backward per accumulation slice
            rows = list(range(k * size, (k + 1) * size))
            inputs = trl_inputs(batch, rows, pad_id, mask_truncated)
            width = inputs["completion_ids"].size(1)
            inputs["num_items_in_batch"] = loss_mask.sum()  # the whole generation batch
            if off_policy:
                inputs["old_per_token_logps"] = old[rows, :width]
            if beta > 0:
                inputs["ref_per_token_logps"] = old[rows, :width]  # our reference: the start
            loss = trainer._compute_loss(trainer.model, inputs)
            loss.backward()
            total += loss.item()
        out.append(
            Step(
                step.params, total, {n: p.grad.clone() for n, p in trainer.model.named_parameters()}
            )
        )
    return out


def assert_same(ours: list[Step], theirs: list[Step], label: str):
    assert len(ours) == len(theirs)
    for k, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        where = f"{label}, optimizer step {k + 1}"
        assert a.loss == pytest.approx(b.loss, abs=ATOL), f"{where}: loss {a.loss} vs TRL {b.loss}"
        assert a.grads.keys() == b.grads.keys()
        biggest = max(g.abs().max().item() for g in b.grads.values())
        assert biggest > 1e-3, f"{where}: TRL's gradient is ~0, the comparison would prove nothing"
        for name, g in a.grads.items():
            diff = (g - b.grads[name]).abs().max().item()
            assert diff <= ATOL, f"{where}: grad of {name} differs from TRL's by {diff}"


# ---------------------------------------------------------------- the tests

CASES = {
    # name: (beta, epsilon, epsilon_high, off_policy)
    "on_policy": (0.0, 0.2, 0.2, False),
    "off_policy_clipped_kl": (0.05, 0.2, 0.28, True),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_train_step_matches_trl(tiny, batch, loss_type, case):
    beta, eps, eps_high, off_policy = CASES[case]
    trainer = trl_trainer(tiny, loss_type, beta, eps, eps_high)
    for mode in ("padded", "packed"):
        steps, metrics = train_step(tiny, batch, loss_type, beta, eps, eps_high, off_policy, mode)
        assert_same(
            steps,
            trl_steps(trainer, tiny, batch, steps, off_policy, beta),
            f"{loss_type}/{case}/{mode}",
        )
        if off_policy:  # the second iteration's ratios are clipped on many tokens
            assert 0.05 < metrics["clip_fraction"] < 0.5, metrics["clip_fraction"]
        else:  # ratio = 1: never clipped
            assert metrics["clip_fraction"] == 0.0


@pytest.mark.parametrize("case", list(CASES))
def test_gspo_matches_trl_sequence_importance_sampling(tiny, batch, case):
    """Our loss_type "gspo" (GSPO's sequence-level ratio, grpo aggregation) against TRL's
    importance_sampling_level="sequence" with loss_type "grpo"."""
    beta, eps, eps_high, off_policy = CASES[case]
    trainer = trl_trainer(tiny, "grpo", beta, eps, eps_high, importance_sampling_level="sequence")
    for mode in ("padded", "packed"):
        steps, metrics = train_step(tiny, batch, "gspo", beta, eps, eps_high, off_policy, mode)
        assert_same(
            steps, trl_steps(trainer, tiny, batch, steps, off_policy, beta), f"gspo/{case}/{mode}"
        )
        if off_policy:  # whole sequences are clipped in the second iteration
            assert metrics["clip_fraction"] > 0.05, metrics["clip_fraction"]
    token_level = trl_trainer(tiny, "grpo", beta, eps, eps_high)
    if off_policy:  # the sequence ratio is not the token ratio: the check can tell them apart
        with pytest.raises(AssertionError):
            assert_same(steps, trl_steps(token_level, tiny, batch, steps, True, beta), "token")


@pytest.mark.parametrize("loss_type", ["grpo", "dapo"])
def test_mask_truncated_completions_matches_trl(tiny, batch, loss_type):
    """mask_truncated_completions: TRL zeroes a truncated completion's mask; so do we."""
    trainer = trl_trainer(tiny, loss_type, 0.05, 0.2, 0.28)
    steps, _ = train_step(
        tiny, batch, loss_type, 0.05, 0.2, 0.28, True, "packed", mask_truncated=True
    )
    reference = trl_steps(trainer, tiny, batch, steps, True, 0.05, mask_truncated=True)
    assert_same(steps, reference, f"{loss_type}/mask_truncated")
    unmasked = trl_steps(trainer, tiny, batch, steps, True, 0.05, mask_truncated=False)
    with pytest.raises(AssertionError):  # the option changes the step
        assert_same(steps, unmasked, "masked vs unmasked")


def test_swapped_clip_bounds_would_be_caught(tiny, batch):
    """A trainer that passed epsilon_high as the lower bound and epsilon as the upper one
    (here: config epsilon=0.28, epsilon_high=0.2 against TRL's 0.2 / 0.28) fails parity."""
    trainer = trl_trainer(tiny, "dapo", 0.0, 0.2, 0.28)
    swapped, _ = train_step(tiny, batch, "dapo", 0.0, 0.28, 0.2, True, "packed")
    with pytest.raises(AssertionError, match="optimizer step 2"):
        assert_same(swapped, trl_steps(trainer, tiny, batch, swapped, True, 0.0), "swapped")
    right, _ = train_step(tiny, batch, "dapo", 0.0, 0.2, 0.28, True, "packed")
    assert_same(right, trl_steps(trainer, tiny, batch, right, True, 0.0), "right")


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo"])
def test_trl_gradient_accumulation_matches_one_local_batch(tiny, batch, loss_type):
    """TRL with GA = steps_per_generation = 2 over two equal slices = our one step batch."""
    trainer = trl_trainer(tiny, loss_type, 0.05, 0.2, 0.28, accumulation=2)
    steps, _ = train_step(tiny, batch, loss_type, 0.05, 0.2, 0.28, True, "packed")
    reference = trl_steps(trainer, tiny, batch, steps, True, 0.05, accumulation=2)
    assert_same(steps, reference, f"{loss_type}/GA=2")


def test_parity_check_detects_a_wrong_normaliser(tiny, batch):
    """The comparison can fail: grpo's loss is not bnpo's on this batch (different lengths)."""
    trainer = trl_trainer(tiny, "grpo", 0.0, 0.2, 0.2)
    steps, _ = train_step(tiny, batch, "bnpo", 0.0, 0.2, 0.2, False, "padded")
    with pytest.raises(AssertionError):
        assert_same(steps, trl_steps(trainer, tiny, batch, steps, False, 0.0), "bnpo vs grpo")


def test_trl_default_kl_is_bias_corrected(tiny, batch):
    """TRL's default use_bias_correction_kl=True is β·KL·ρ, not the spec's β·KL: our step
    differs from it, and TRL's default minus TRL's plain KL is β·Σ w·KL·(ρ − 1) (dapo
    weights w = mask / policy tokens), gradient included, computed here by hand."""
    beta = 0.05
    steps, _ = train_step(tiny, batch, "dapo", beta, 0.2, 0.28, True, "packed")
    default = trl_trainer(tiny, "dapo", beta, 0.2, 0.28, bias_correction_kl=True)
    plain = trl_trainer(tiny, "dapo", beta, 0.2, 0.28)
    with pytest.raises(AssertionError, match="loss|grad of"):
        assert_same(steps, trl_steps(default, tiny, batch, steps, True, beta), "plain vs default")
    theirs_default = trl_steps(default, tiny, batch, steps, True, beta)
    theirs_plain = trl_steps(plain, tiny, batch, steps, True, beta)
    model, tokenizer, _ = tiny
    inputs = trl_inputs(batch, list(range(len(SHAPES))), tokenizer.pad_token_id, False)
    mask = (inputs["completion_mask"] * inputs["tool_mask"]).float()
    old = trl_logps(plain, dict(model.named_parameters()), inputs)
    for step, with_ratio, without in zip(steps, theirs_default, theirs_plain, strict=True):
        logp = trl_logps(plain, step.params, inputs, grad=True)
        delta = old - logp  # the reference is the start, as `old`
        kl = torch.exp(delta) - delta - 1
        extra = beta * (kl * (torch.exp(logp - old) - 1) * mask).sum() / mask.sum()
        extra.backward()
        assert with_ratio.loss == pytest.approx(without.loss + extra.item(), abs=ATOL)
        for name, p in plain.model.named_parameters():
            want = without.grads[name] + p.grad
            assert (with_ratio.grads[name] - want).abs().max().item() <= ATOL, name
