"""The reward model: pooling, kinds, LoRA, save/load, and BT against TRL's RewardTrainer."""

import pytest
import torch

from rewardkit_rm.data import Pair, collate_pairs, encode_rows
from rewardkit_rm.losses import build_loss
from rewardkit_rm.model import (
    RMSpec,
    build_reward_model,
    last_token,
    load_reward_model,
    mean_over_response,
    save_reward_model,
)
from rewardkit_rm.scoring import head_outputs, pair_outputs

TINY = {"num_layers": 1, "hidden_size": 32, "num_heads": 2}
PAIRS = [
    Pair("2+2=", "4", "5"),
    Pair([{"role": "user", "content": "Say hi"}], "hi there", "no"),
    Pair("x", "a longer chosen answer", "b"),
]


def test_last_token_right_and_left_padding():
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 1, 1], [1, 1, 1, 1]])
    assert last_token(mask).tolist() == [2, 0, 3, 3]


def test_causal_head_reads_the_last_real_token_whatever_the_padding():
    rm, tok = build_reward_model("tiny", RMSpec(), tiny_model=TINY)
    rm.eval()
    ids = torch.tensor([tok("abc")["input_ids"]])
    alone = rm(ids, torch.ones_like(ids))["out"]
    padded = torch.cat([ids, torch.zeros(1, 3, dtype=torch.long)], 1)
    mask = torch.tensor([[1] * ids.shape[1] + [0, 0, 0]])
    assert torch.allclose(rm(padded, mask)["out"], alone, atol=1e-5)


def test_mean_over_response_by_hand():
    hidden = torch.arange(2 * 5 * 1, dtype=torch.float32).reshape(2, 5, 1)  # row 0: 0..4
    mask = torch.tensor([[1, 1, 1, 1, 0], [0, 1, 1, 1, 1]])
    # row 0: prompt ends at 1 -> mean of positions 2, 3 (4 is padding) = 2.5
    # row 1 (left padded, values 5..9): prompt ends at 2 -> positions 3, 4 -> (8 + 9) / 2
    # a prompt cut away (prompt_last 0) keeps every kept position after 0
    pooled = mean_over_response(hidden, mask, torch.tensor([1, 2]))
    assert pooled[:, 0].tolist() == [2.5, 8.5]
    assert mean_over_response(hidden, mask, torch.tensor([0, 0]))[:, 0].tolist() == [2.0, 7.5]


def test_mean_pooling_ignores_padding_and_the_prompt_and_survives_save(tmp_path):
    rm, tok = build_reward_model("tiny", RMSpec(pooling="mean"), tiny_model=TINY, seed=1)
    rm.eval()
    prompts, responses = ["2+2=", "a much longer prompt here", "x"], ["4", "five", "a b c d"]
    together, _, _ = head_outputs(rm, tok, prompts, responses, 64, batch_size=3)
    alone = torch.cat([head_outputs(rm, tok, [p], [r], 64)[0] for p, r in zip(prompts, responses)])
    assert torch.allclose(together, alone, atol=1e-5)
    # the pooled state is the mean over the response's positions, read by the head
    ids = torch.tensor([tok("2+2=4")["input_ids"]])
    n_prompt = len(tok("2+2=")["input_ids"])
    with torch.no_grad():
        hidden = rm.backbone(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
        by_hand = rm.head(hidden[0, n_prompt:].mean(0))
    assert torch.allclose(together[0], by_hand, atol=1e-5)
    save_reward_model(rm, tok, tmp_path / "m")
    loaded, tok2, _ = load_reward_model(tmp_path / "m")
    assert loaded.spec.pooling == "mean"
    assert torch.allclose(
        head_outputs(loaded, tok2, prompts, responses, 64)[0], together, atol=1e-5
    )
    with pytest.raises(ValueError, match="pools by itself"):
        build_reward_model("tiny", RMSpec(kind="seqcls", pooling="mean"), tiny_model=TINY)
    with pytest.raises(ValueError, match="pooling must be"):
        build_reward_model("tiny", RMSpec(pooling="max"), tiny_model=TINY)


def trl_loss(backbone, tokenizer, items, tmp_path):
    """The loss TRL's RewardTrainer computes on the same pairs (its own collator)."""
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer
    from trl.trainer.reward_trainer import DataCollatorForPreference

    examples = [{"chosen_ids": e.ids, "rejected_ids": e.rejected_ids} for e in items]
    args = RewardConfig(
        output_dir=str(tmp_path / "trl"),
        report_to=[],
        max_length=None,
        bf16=False,
        use_cpu=True,
        gradient_checkpointing=False,
    )
    trainer = RewardTrainer(
        model=backbone,
        args=args,
        train_dataset=Dataset.from_list(examples),
        processing_class=tokenizer,
    )
    inputs = DataCollatorForPreference(pad_token_id=tokenizer.pad_token_id)(examples)
    with torch.no_grad():
        return trainer.compute_loss(trainer.model, inputs).item()


def test_plain_bt_matches_trl_reward_trainer(tmp_path):
    rm, tok = build_reward_model("tiny", RMSpec(kind="seqcls"), tiny_model=TINY, seed=3)
    items, _ = encode_rows(tok, PAIRS, max_length=64)
    rm.eval()
    with torch.no_grad():
        chosen, rejected, fields = pair_outputs(rm, collate_pairs(items, tok.pad_token_id))
        ours = build_loss("bt")(chosen, rejected, fields).item()
    theirs = trl_loss(rm.backbone, tok, items, tmp_path)
    assert abs(ours - theirs) < 1e-5, (ours, theirs)
    # and the causal_head kind, given the same weights, computes the same rewards
    head_rm, _ = build_reward_model("tiny", RMSpec(), tiny_model=TINY, seed=3)
    head_rm.backbone.load_state_dict(rm.backbone.model.state_dict())
    head_rm.head.weight.data.copy_(rm.backbone.score.weight.data)
    head_rm.eval()
    with torch.no_grad():
        c2, r2, f2 = pair_outputs(head_rm, collate_pairs(items, tok.pad_token_id))
    assert torch.allclose(c2, chosen, atol=1e-5) and torch.allclose(r2, rejected, atol=1e-5)
    assert abs(build_loss("bt")(c2, r2, f2).item() - theirs) < 1e-5


@pytest.mark.parametrize("kind", ["causal_head", "seqcls"])
def test_lora_trains_adapters_and_head_only_and_saved_model_scores_the_same(kind, tmp_path):
    spec = RMSpec(kind=kind, loss="ordinal", loss_options={"num_ratings": 4}, out_dim=4)
    rm, tok = build_reward_model("tiny", spec, tiny_model=TINY, lora={"r": 4, "alpha": 8})
    trainable = [n for n, p in rm.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or "head" in n or "score" in n for n in trainable)
    assert any("lora_" in n for n in trainable)
    # one optimisation step moves the outputs, then the saved folder scores the same
    items, _ = encode_rows(tok, PAIRS, 64)
    batch = collate_pairs(items, tok.pad_token_id)
    loss = build_loss("ordinal", {"num_ratings": 4})
    opt = torch.optim.AdamW([p for p in rm.parameters() if p.requires_grad], lr=1e-2)
    c, r, f = pair_outputs(rm, batch)
    loss(c, r, f).backward()
    opt.step()
    rm.eval()
    prompts, responses = [p.prompt for p in PAIRS], [p.chosen for p in PAIRS]
    before, _, _ = head_outputs(rm, tok, prompts, responses, 64)
    save_reward_model(rm, tok, tmp_path / "rm")
    loaded, tok2, loaded_loss = load_reward_model(tmp_path / "rm")
    after, _, _ = head_outputs(loaded, tok2, prompts, responses, 64)
    assert torch.allclose(before, after, atol=1e-5)
    assert loaded.spec == spec and loaded_loss.K == 4


def test_gpm_gate_is_saved_and_read_back(tmp_path):
    spec = RMSpec(loss="gpm", loss_options={"k": 2, "gate": True}, out_dim=4, gate_dim=2)
    rm, tok = build_reward_model("tiny", spec, tiny_model=TINY)
    torch.nn.init.normal_(rm.gate.weight)
    rm.eval()
    out, gates, _ = head_outputs(rm, tok, ["p"], ["r"], 64)
    assert gates.shape == (1, 2) and (gates >= 0).all()
    save_reward_model(rm, tok, tmp_path / "g")
    loaded, _, _ = load_reward_model(tmp_path / "g")
    out2, gates2, _ = head_outputs(loaded, tok, ["p"], ["r"], 64)
    assert torch.allclose(gates, gates2, atol=1e-5) and torch.allclose(out, out2, atol=1e-5)
    with pytest.raises(ValueError, match="causal_head"):
        build_reward_model("tiny", RMSpec(kind="seqcls", gate_dim=2), tiny_model=TINY)


def test_load_rejects_a_folder_that_is_not_a_reward_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a saved reward model"):
        load_reward_model(tmp_path)


@pytest.mark.slow
def test_smollm2_backbone_with_lora_scores_chat_pairs():
    """The packaged SmolLM2-135M-Instruct (converted once on this machine) as a backbone."""
    rm, tok = build_reward_model("smollm2-135m-instruct", RMSpec(), lora={"r": 4})
    assert rm.backbone.config.hidden_size == 576
    items, _ = encode_rows(tok, PAIRS[1:2], 128)
    # the chat template wraps the response as the assistant's turn
    assert "<|im_start|>assistant\nhi there<|im_end|>" in tok.decode(items[0].ids)
    c, r, f = pair_outputs(rm, collate_pairs(items, tok.pad_token_id))
    loss = build_loss("bt")(c, r, f)
    loss.backward()
    assert torch.isfinite(loss) and rm.head.weight.grad is not None
