"""Shared-prompt micro-batches give the padded layout's log-probs, entropies and gradients."""

import math
import random

import pytest
import torch

from rewardkit.data import TrainSequence, completion_logprobs, make_micro_batches
from rewardkit.shared_prompt import SharedPromptBatch
from rewardkit.tiny import build_tiny_model


def groups_of_sequences(seed=0, num_prompts=3, per_prompt=(4, 2, 3), vocab=60):
    rng = random.Random(seed)
    seqs, index = [], 0
    for k in range(num_prompts):
        prompt = [rng.randrange(4, vocab) for _ in range(rng.randint(2, 9))]
        for _ in range(per_prompt[k % len(per_prompt)]):
            completion = [rng.randrange(4, vocab) for _ in range(rng.randint(1, 7))]
            seqs.append(TrainSequence(prompt, completion, index))
            index += 1
    return seqs


def per_sample(model, mbs, n, width, with_grad=True):
    """(B, T) log-probs and entropies over all micro-batches, and the summed gradient of
    sum(logp * weight) for fixed per-token weights."""
    model.zero_grad(set_to_none=True)
    logp_out = torch.zeros(n, width)
    ent_out = torch.zeros(n, width)
    weights = torch.linspace(-1, 1, n * width).reshape(n, width)
    for mb in mbs:
        logp, ent = completion_logprobs(model, mb, temperature=0.7, with_entropy=True)
        if with_grad:
            (logp * weights[mb.rows, mb.cols]).sum().backward()
        logp_out[mb.rows, mb.cols] = logp.detach()
        ent_out[mb.rows, mb.cols] = ent.detach()
    grads = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
    return logp_out, ent_out, grads


@pytest.mark.parametrize("budget", [10_000, 30])
def test_same_logprobs_entropies_and_gradients_as_padded(budget):
    model, _ = build_tiny_model(num_layers=2, hidden_size=32, num_heads=4, seed=3)
    model = model.double()
    seqs = groups_of_sequences()
    n, width = len(seqs), max(len(s.completion_ids) for s in seqs)
    padded = make_micro_batches(seqs, 10_000, "padded")
    shared = make_micro_batches(seqs, budget, "shared_prompt")
    assert all(isinstance(mb, SharedPromptBatch) for mb in shared)
    if budget == 30:
        assert len(shared) > 1  # whole groups per micro-batch, several micro-batches
    lp_a, ent_a, g_a = per_sample(model, padded, n, width)
    lp_b, ent_b, g_b = per_sample(model, shared, n, width)
    torch.testing.assert_close(lp_b, lp_a, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(ent_b, ent_a, rtol=1e-9, atol=1e-9)
    assert g_a.keys() == g_b.keys() and g_a
    # the forward passes agree to the last bit in float64; the attention backward kernels
    # see different shapes and agree to about 1e-7 relative (a lost gradient path would be
    # off by order 1)
    for k in g_a:
        torch.testing.assert_close(g_b[k], g_a[k], rtol=1e-5, atol=1e-6)


def test_each_prompt_runs_once_and_every_target_is_covered():
    seqs = groups_of_sequences(num_prompts=4)
    seqs.append(TrainSequence([5, 6], [], len(seqs)))  # an empty completion: nothing to score
    (mb,) = make_micro_batches(seqs, 10_000, "shared_prompt")
    assert mb.prompt_ids.shape[0] == 4
    expected = {(s.index, t) for s in seqs for t in range(len(s.completion_ids))}
    got = set(zip(mb.rows.tolist(), mb.cols.tolist()))
    assert got == expected and len(got) == mb.target_ids.numel()
    padded_tokens = sum(
        len(s.prompt_ids) + len(s.completion_ids) - 1 for s in seqs if s.completion_ids
    )
    assert mb.num_tokens < padded_tokens


def test_completions_of_one_token_need_no_second_pass():
    model, _ = build_tiny_model(num_layers=1, hidden_size=32, num_heads=2, seed=1)
    seqs = [
        TrainSequence([7, 8, 9], [10], 0),
        TrainSequence([7, 8, 9], [11], 1),
        TrainSequence([4, 5], [12], 2),
    ]
    (mb,) = make_micro_batches(seqs, 1000, "shared_prompt")
    assert mb.completion_ids.shape[1] == 0
    a = completion_logprobs(model, mb)[0]
    b = torch.zeros(3)
    for m in make_micro_batches(seqs, 1000, "padded"):
        b[m.rows] = completion_logprobs(model, m)[0].detach()
    torch.testing.assert_close(a.detach()[torch.argsort(mb.rows)], b, rtol=1e-5, atol=1e-6)


def test_trainer_runs_with_shared_prompts(tmp_path):
    from rewardkit.trainer.config import ConfigError, GRPOConfig
    from rewardkit.trainer.trainer import GRPOTrainer

    config = GRPOConfig(
        model="tiny",
        tiny_model={"num_layers": 1, "hidden_size": 32, "num_heads": 2},
        task="core.chat_arith",
        prompts_per_step=2,
        num_generations=3,
        max_completion_length=4,
        eval_size=2,
        max_steps=2,
        share_prompts=True,
        output_dir=str(tmp_path),
        report_to=[],
        progress=False,
        rewards=[{"name": "core.last_number"}],
    )
    history = GRPOTrainer(config).train()
    steps = [h for h in history if "loss" in h]
    assert len(steps) == 2 and all(h["micro_batches"] == 1 for h in steps)
    with pytest.raises(ConfigError, match="share_prompts and packing"):
        GRPOConfig(share_prompts=True, packing=True)


def test_target_logprobs_by_hand_and_the_entropy_metric_outside_autograd():
    from rewardkit.data import target_logprobs

    logits = torch.tensor([[1.0, 2.0, 0.0], [0.5, 0.5, 0.5]], requires_grad=True)
    logp, entropy = target_logprobs(logits, torch.tensor([1, 2]), 2.0, with_entropy=True)
    # row 0: logits / 2 = [0.5, 1, 0]; log p(1) = 1 - log(e^0.5 + e^1 + e^0)
    assert torch.allclose(
        logp, torch.tensor([1 - math.log(math.exp(0.5) + math.e + 1), -math.log(3)]), atol=1e-6
    )
    p0 = torch.softmax(torch.tensor([0.5, 1.0, 0.0]), -1)
    assert torch.allclose(
        entropy, torch.stack([-(p0 * p0.log()).sum(), torch.tensor(math.log(3))]), atol=1e-6
    )
    assert not entropy.requires_grad  # a metric: the backward keeps nothing for it
    logp.sum().backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
