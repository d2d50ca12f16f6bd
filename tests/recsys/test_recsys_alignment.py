"""Supervised alignment (completion-only loss, stream order) and the pipeline's config."""

from __future__ import annotations

import pytest
import torch

from rewardkit.tiny import build_tiny_model
from rewardkit.trainer.config import ConfigError
from rewardkit_recsys.alignment import completion_loss, encode_pairs, supervised_alignment
from rewardkit_recsys.pipeline import PipelineOptions, load


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_model(hidden_size=32, num_heads=2, num_layers=1, seed=1)


def test_loss_covers_completion_tokens_only(tiny):
    model, tok = tiny
    (p, c), (p2, c2) = encode_pairs(
        tok, [{"prompt": "ab", "completion": "c"}, {"prompt": "xyz", "completion": "uv"}]
    )
    assert c == tok("c", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    loss = completion_loss(model, [(p, c), (p2, c2)], tok.pad_token_id)
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


def test_pipeline_config(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("task: recsys.movielens\nmax_steps: 3\nrecsys:\n  sft_epochs: 4\n")
    config, opts = load(str(path), ["recsys.eval_users=7", "task_options.levels=2"])
    assert (config.max_steps, opts.sft_epochs, opts.eval_users) == (3, 4, 7)
    assert config.task_options == {"levels": 2}
    assert config.advantage == "recsys.bgae" and config.beta == 0.001  # the task's defaults
    assert opts.top_k == PipelineOptions().top_k
    with pytest.raises(ConfigError, match="recsys: unknown keys"):
        load(str(path), ["recsys.sft_epoch=1"])
    with pytest.raises(ConfigError, match="not 'core.arith'"):
        load(str(path), ["task=core.arith"])
    with pytest.raises(ConfigError, match="unknown config key 'max_step'"):
        load(str(path), ["max_step=1"])


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

    root = Path(__file__).resolve().parents[2]
    config, opts = load(str(root / "configs" / "recsys" / name), [])
    assert config.advantage == "recsys.bgae" and config.dynamic_sampling
    assert config.tiny_model["max_position_embeddings"] >= config.max_prompt_length + 256
    assert opts.top_k == 10
