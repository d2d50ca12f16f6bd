"""Supervised alignment (completion loss, history loss, stream order) and the run's config."""

from __future__ import annotations

import pytest
import torch

from rewardkit.tiny import build_tiny_model
from rewardkit.trainer.config import ConfigError
from rewardkit_recsys.alignment import (
    IGNORE,
    completion_loss,
    encode_pairs,
    supervised_alignment,
)
from rewardkit_recsys.pipeline import load
from rewardkit_recsys.stages import StageOptions


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_model(hidden_size=32, num_heads=2, num_layers=1, seed=1)


def test_loss_covers_completion_tokens_only(tiny):
    model, tok = tiny
    (p, c, lp), (p2, c2, lp2) = encode_pairs(
        tok, [{"prompt": "ab", "completion": "c"}, {"prompt": "xyz", "completion": "uv"}]
    )
    assert c == tok("c", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert lp == [IGNORE] * 2 and lp2 == [IGNORE] * 3  # no label_prompt: prompts not trained
    loss = completion_loss(model, [(p, c, lp), (p2, c2, lp2)], tok.pad_token_id)
    # by hand: −log p of each completion token given everything before it, averaged over
    # the 2 + 3 completion tokens (prompt tokens and padding excluded)
    nll = []
    for prompt, comp in ((p, c), (p2, c2)):
        ids = torch.tensor([prompt + comp])
        logp = torch.log_softmax(model(input_ids=ids).logits[0], -1)
        nll += [-logp[len(prompt) - 1 + j, t] for j, t in enumerate(comp)]
    expected = torch.stack(nll).mean().detach()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_alignment_learns_and_rejects_bad_input():
    model, tok = build_tiny_model(hidden_size=32, num_heads=2, num_layers=1, seed=2)
    stream = [{"prompt": f"{i}=", "completion": "abc"[i % 3]} for i in range(12)] * 8
    losses = supervised_alignment(model, tok, stream, batch_size=12, learning_rate=1e-2)
    assert len(losses) == 8 and losses[-1] < 0.5 * losses[0]
    assert not model.training
    with pytest.raises(ValueError, match="stream is empty"):
        supervised_alignment(model, tok, [])
    with pytest.raises(ValueError, match=r"exceed 4 tokens \(first: stream\[0\], task 'x'\)"):
        supervised_alignment(
            model, tok, [{"prompt": "long", "completion": "y", "task": "x"}], max_length=4
        )


def test_label_prompt_trains_the_chosen_prompt_tokens_too(tiny):
    model, tok = tiny
    x, y = tok.convert_tokens_to_ids(["x", "y"])
    pairs = [
        {"prompt": "xay>", "completion": "b", "label_prompt": True},
        {"prompt": "yx>", "completion": "c"},  # no label_prompt: completion only
    ]
    encoded = encode_pairs(tok, pairs, prompt_label_ids={x, y})
    (p, c, lp), (p2, c2, lp2) = encoded
    assert lp == [x, IGNORE, y, IGNORE] and lp2 == [IGNORE] * 3
    loss = completion_loss(model, encoded, tok.pad_token_id)
    # by hand: the labelled tokens are y (p[2], given "xa"), b and eos in the first pair
    # (x = p[0] has nothing before it), c and eos in the second: 5 terms averaged
    nll = []
    for prompt, comp, targets in ((p, c, [2, 4, 5]), (p2, c2, [3, 4])):
        ids = torch.tensor([prompt + comp])
        logp = torch.log_softmax(model(input_ids=ids).logits[0], -1)
        nll += [-logp[t - 1, ids[0, t]] for t in targets]
    assert len(nll) == 5
    assert loss.item() == pytest.approx(torch.stack(nll).mean().item(), rel=1e-5)


def test_buckets_sort_each_chunk_by_length_and_keep_chunk_order(monkeypatch):
    import rewardkit.sft as sft  # the SFT loop the alignment runs on

    model, tok = build_tiny_model(hidden_size=32, num_heads=2, num_layers=1, seed=3)
    seen = []

    def spy(model, batch, pad):
        seen.append([len(p) for p, _, _ in batch])
        return completion_loss(model, batch, pad)

    monkeypatch.setattr(sft, "completion_loss", spy)
    lengths = [5, 1, 3, 2, 6, 4, 1]  # prompts of 1..6 characters; batch 2, bucket 2
    stream = [{"prompt": "a" * n, "completion": "b"} for n in lengths]
    supervised_alignment(model, tok, stream, batch_size=2, bucket=2)
    # chunks of 2 x 2 = 4 pairs: [5,1,3,2] → [1,2],[3,5]; [6,4,1] → [1,4],[6]
    assert seen == [[1, 2], [3, 5], [1, 4], [6]]
    seen.clear()
    supervised_alignment(model, tok, stream, batch_size=2)  # bucket 1: the stream's batches
    assert seen == [[1, 5], [2, 3], [4, 6], [1]]  # (sorted within a batch only)
    with pytest.raises(ValueError, match="bucket must be >= 1"):
        supervised_alignment(model, tok, stream, bucket=0)


def test_run_command_reports_config_errors(tmp_path, capsys):
    from rewardkit_recsys.pipeline import main

    path = tmp_path / "c.yaml"
    path.write_text("task_options: {sft_epoch: 4}\n")  # misspelt stage option
    assert main(["run", "--config", str(path)]) == 2
    assert "unknown options ['sft_epoch']" in capsys.readouterr().err


def test_run_config_and_stage_options(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("max_steps: 3\ntask_options: {sft_epochs: 4}\n")
    config = load(str(path), ["task_options.eval_users=7", "task_options.levels=2"])
    assert config.task == "recsys.movielens" and config.max_steps == 3
    assert config.task_options == {"sft_epochs": 4, "eval_users": 7, "levels": 2}
    with pytest.raises(ConfigError, match="not 'core.arith'"):
        load(str(path), ["task=core.arith"])
    (tmp_path / "arith.yaml").write_text("task: core.arith\n")
    with pytest.raises(ConfigError, match="not 'core.arith'"):
        load(str(tmp_path / "arith.yaml"), [])
    with pytest.raises(ConfigError, match="unknown config key 'max_step'"):
        load(str(path), ["max_step=1"])
    with pytest.raises(ConfigError, match="unknown config key 'recsys'"):  # the old section
        load(str(path), ["recsys.sft_epochs=1"])
    assert StageOptions.from_options({"sft_epochs": 2}).sft_epochs == 2
    for options, message in [
        ({"sft_epoch": 1}, r"unknown options \['sft_epoch'\]"),
        ({"sft_epochs": 0}, "sft_epochs must be an int >= 1, got 0"),
        ({"window_stride": True}, "window_stride must be an int >= 1"),
        ({"eval_users": 0}, "eval_users must be an int >= 1, got 0"),
        ({"reasoning_eval_users": -1}, "reasoning_eval_users must be an int >= 0"),
        ({"p_end": 1.5}, r"p_end must be in \[0, 1\]"),
        ({"sft_learning_rate": 0.0}, "sft_learning_rate must be > 0"),
        ({"reasoning_temperature": 0}, "reasoning_temperature must be > 0"),
        ({"sft_bucket": 0}, "sft_bucket must be an int >= 1"),
        ({"num_beams": 0}, "num_beams must be an int >= 1"),
        ({"top_k": 10, "num_beams": 5}, r"num_beams \(5\) must be >= top_k \(10\)"),
    ]:
        with pytest.raises(ConfigError, match=message):
            StageOptions.from_options(options)


def test_policy_embeddings_mean_pool_ignores_padding(tiny):
    from rewardkit_recsys.embeddings import policy_embeddings

    model, tok = tiny
    texts = ["Heat (1995)", "Up"]
    pooled = policy_embeddings(model, tok, texts, batch_size=2)  # "Up" is padded
    assert pooled.shape == (2, 32)
    for row, text in zip(pooled, texts, strict=True):
        ids = torch.tensor([tok(text)["input_ids"]])
        alone = model(input_ids=ids, output_hidden_states=True).hidden_states[-1][0].mean(0)
        assert row == pytest.approx(alone.detach().double().numpy(), abs=1e-5)
    with pytest.raises(ValueError, match="no texts"):
        policy_embeddings(model, tok, [])


@pytest.mark.parametrize("name", ["ml100k.yaml", "ml100k_quick.yaml"])
def test_shipped_configs_load(name):
    from pathlib import Path

    from rewardkit.trainer.config import GRPOConfig

    root = Path(__file__).resolve().parents[2]
    config = load(str(root / "configs" / "recsys" / name), [])
    assert config.advantage == "recsys.bgae" and config.group_filter == "zero_variance"
    assert config.tiny_model["max_position_embeddings"] >= config.max_prompt_length + 256
    data_keys = {"mode", "levels", "codes_per_level", "embedding", "id_map", "max_train_rows"}
    stages = {k: v for k, v in config.task_options.items() if k not in data_keys}
    assert StageOptions.from_options(stages).top_k == 10
    # the core CLI's loader accepts the same file
    assert GRPOConfig.load(root / "configs" / "recsys" / name).task == "recsys.movielens"
