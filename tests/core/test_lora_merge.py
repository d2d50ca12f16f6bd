"""A LoRA policy generates with its adapters merged (rewardkit.trainer.lora_merge): the same
completions as through the adapters, the weights restored bit for bit after, also after an
exception, and a logged fallback where merging is not supported."""

import logging

import pytest
import torch
from peft import LoraConfig, get_peft_model

from rewardkit.tiny import build_tiny_model
from rewardkit.trainer.lora_merge import merge_unsupported, merged_lora
from rewardkit.trainer.rollout import HFGenerate

TINY = {"num_layers": 2, "hidden_size": 32, "num_heads": 2}


def lora_policy(seed=0, **lora):
    """A tiny model with LoRA on every linear layer and random, nonzero lora_B (peft starts
    it at zero, which would make merged and unmerged trivially equal)."""
    model, tok = build_tiny_model(seed=seed, **TINY)
    options = dict(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM")
    policy = get_peft_model(model, LoraConfig(**{**options, **lora}))
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in policy.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    return policy, tok


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def prompts(tok):
    return [tok.encode(t, add_special_tokens=False) for t in ("12+3=", "7+45=", "1+1=")]


def test_merged_generation_matches_unmerged_and_restores_weights_exactly():
    policy, tok = lora_policy()
    policy.train()
    before = snapshot(policy)
    trainable = {n for n, p in policy.named_parameters() if p.requires_grad}
    unmerged = HFGenerate(lambda: policy, tok, merge_lora=False)
    merged = HFGenerate(lambda: policy, tok)
    a = unmerged.generate(prompts(tok), 24, greedy=True)
    b = merged.generate(prompts(tok), 24, greedy=True)
    assert merged.lora_merged and not unmerged.lora_merged and merged.merge_fallback is None
    assert [g.ids for g in a] == [g.ids for g in b]
    # the adapters matter: the base model alone writes something else
    with policy.disable_adapter():
        base = unmerged.generate(prompts(tok), 24, greedy=True)
    assert [g.ids for g in base] != [g.ids for g in a]
    after = snapshot(policy)
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)  # bit for bit
    assert {n for n, p in policy.named_parameters() if p.requires_grad} == trainable
    assert policy.training  # back in train mode


def test_merged_logits_equal_unmerged_to_float32_tolerance():
    policy, tok = lora_policy(seed=3)
    policy.eval()
    ids = torch.tensor([prompts(tok)[0]])
    with torch.no_grad():
        unmerged = policy(input_ids=ids).logits
        with merged_lora(policy):
            merged = policy(input_ids=ids).logits
        again = policy(input_ids=ids).logits
    with torch.no_grad(), policy.disable_adapter():
        base = policy(input_ids=ids).logits
    torch.testing.assert_close(merged, unmerged, rtol=1e-5, atol=1e-5)
    assert torch.equal(again, unmerged)
    assert not torch.allclose(base, unmerged, atol=1e-3)


def test_weights_and_adapters_are_restored_when_generation_raises():
    policy, tok = lora_policy()
    before = snapshot(policy)
    backend = HFGenerate(lambda: policy, tok)

    def broken(*args, **kwargs):
        assert policy.base_model.model.model.layers[0].self_attn.q_proj.disable_adapters
        raise RuntimeError("generation failed")

    policy.generate = broken
    policy.train()
    with pytest.raises(RuntimeError, match="generation failed"):
        backend.generate(prompts(tok), 8)
    after = snapshot(policy)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not policy.base_model.model.model.layers[0].self_attn.q_proj.disable_adapters
    assert policy.training
    assert all(p.requires_grad for n, p in policy.named_parameters() if "lora_" in n)


def test_training_after_merged_generation_updates_the_adapters_only():
    """Gradients flow to lora_A/lora_B as before; the base weights do not move."""
    policy, tok = lora_policy()
    policy.train()
    HFGenerate(lambda: policy, tok).generate(prompts(tok), 8)
    base = {n: p.detach().clone() for n, p in policy.named_parameters() if not p.requires_grad}
    ids = torch.tensor([prompts(tok)[0]])
    policy(input_ids=ids, labels=ids).loss.backward()
    grads = {n: p.grad for n, p in policy.named_parameters() if p.requires_grad}
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads.values())
    assert all(torch.equal(p, base[n]) for n, p in policy.named_parameters() if n in base)


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda: lora_policy(use_dora=True), "variant"),
        (lambda: lora_policy(lora_bias=True), "bias"),
        (lambda: lora_policy(modules_to_save=["lm_head"]), "modules_to_save"),
    ],
)
def test_unsupported_adapters_fall_back_with_one_logged_reason(make, reason, caplog):
    policy, tok = make()
    assert reason in merge_unsupported(policy)
    before = snapshot(policy)
    backend = HFGenerate(lambda: policy, tok)
    with caplog.at_level(logging.WARNING, logger="rewardkit.trainer.rollout"):
        out = backend.generate(prompts(tok), 8, greedy=True)
        backend.generate(prompts(tok), 8, greedy=True)
    warnings = [r for r in caplog.records if "unmerged" in r.getMessage()]
    assert len(warnings) == 1 and reason in warnings[0].getMessage()
    assert not backend.lora_merged and reason in backend.merge_fallback
    assert len(out) == 3
    assert all(torch.equal(before[k], v) for k, v in snapshot(policy).items())


def test_two_adapters_and_plain_models_are_not_merged():
    policy, tok = lora_policy()
    policy.add_adapter("second", LoraConfig(r=2, target_modules="all-linear"))
    assert "2 adapters" in merge_unsupported(policy)
    plain, tok = build_tiny_model(**TINY)
    backend = HFGenerate(lambda: plain, tok)
    backend.generate(prompts(tok), 4)
    assert not backend.lora_merged and backend.merge_fallback is None  # nothing to merge


def test_zero3_sharded_parameters_are_not_merged():
    policy, _ = lora_policy()
    weight = policy.base_model.model.model.layers[0].mlp.up_proj.base_layer.weight
    weight.ds_id = 0  # what DeepSpeed ZeRO-3 puts on the parameters it partitions
    assert "ZeRO-3" in merge_unsupported(policy)


def test_trainer_generates_merged_and_says_so(tmp_path):
    from test_trainer import tiny_config

    from rewardkit.trainer.trainer import GRPOTrainer

    on = GRPOTrainer(tiny_config(tmp_path / "on", lora_r=4, max_steps=1)).train_step()
    off = GRPOTrainer(
        tiny_config(tmp_path / "off", lora_r=4, max_steps=1, merge_lora_for_generation=False)
    ).train_step()
    assert on["lora_merged_generation"] == 1.0 and off["lora_merged_generation"] == 0.0
    # peft starts lora_B at zero, so on step 0 both generate from the same policy
    assert on["completion_length"] == off["completion_length"]
    assert on["loss"] == pytest.approx(off["loss"], rel=1e-5, abs=1e-7)
