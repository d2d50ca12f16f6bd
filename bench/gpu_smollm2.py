"""One-command GPU check: GRPO at SmolLM2-135M size in bf16 on the padding-free path,
rewardkit and TRL side by side. Needs torch, transformers, accelerate and peft; no network,
no weights, and rewardkit need not be installed (packages/core/src is put on the path).

    python bench/gpu_smollm2.py                       # CUDA, 8 steps each
    python bench/gpu_smollm2.py --device cpu --steps 2 --prompts 2 --generations 2 \
        --max-completion-length 8 --layers 2          # a dry run of the same code on a CPU

What it does:
1. builds a randomly initialised Llama with SmolLM2-135M's configuration (30 layers × 576,
   9 heads / 3 KV heads, vocabulary 49,152, tied embeddings; `--layers` shrinks it for a dry
   run) in bfloat16, and the character tokenizer of rewardkit.tiny (no download);
2. runs rewardkit's GRPOTrainer for `--steps` steps with `packing: true` (padding-free
   micro-batches: sequences back to back, position ids restarting; flash-attention's varlen
   kernel when `flash_attn` is installed, else sdpa with a block-diagonal mask), and asserts
   that every loss, gradient norm and weight is finite and that the weights changed;
3. runs TRL's GRPOTrainer on a copy of the same model and settings (bf16, no gradient
   checkpointing) when `trl` imports; if it is not installed, `--wheels DIR` installs it
   offline from wheels carried there (`pip install --no-index --find-links DIR trl`);
4. prints completion tokens/s, median step time and peak GPU memory for both, and writes
   them as JSON (`--out`, default bench/results/gpu_smollm2.json).

The reward counts the even token ids in a completion (a random model's samples differ on
it, so advantages are non-zero); with random weights nothing is learnt, and completions run to
the length limit, so both trainers generate the same number of tokens.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
try:
    import rewardkit  # noqa: F401
except ImportError:
    sys.path.insert(0, str(ROOT / "packages" / "core" / "src"))

import torch  # noqa: E402

SMOLLM2_135M = dict(  # the configuration of HuggingFaceTB/SmolLM2-135M(-Instruct)
    vocab_size=49152,
    hidden_size=576,
    intermediate_size=1536,
    num_hidden_layers=30,
    num_attention_heads=9,
    num_key_value_heads=3,
    head_dim=64,
    hidden_act="silu",
    max_position_embeddings=8192,
    rms_norm_eps=1e-5,
    rope_theta=100000.0,
    tie_word_embeddings=True,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=0,
)


def build(layers: int, device: str, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    from rewardkit.tiny import build_tokenizer

    torch.manual_seed(seed)
    attn = "sdpa"
    if device.startswith("cuda"):
        try:
            import flash_attn  # noqa: F401

            attn = "flash_attention_2"
        except ImportError:
            pass
    config = LlamaConfig(**{**SMOLLM2_135M, "num_hidden_layers": layers})
    config._attn_implementation = attn
    model = LlamaForCausalLM(config).to(device=device, dtype=torch.bfloat16)
    tokenizer = build_tokenizer()  # ids < 100, inside the 49,152 vocabulary
    return model, tokenizer, attn


def even_tokens(completion_ids) -> float:
    """The reward: how many completion token ids are even (random samples differ on it)."""
    return float(sum(int(t) % 2 == 0 for t in completion_ids))


def run_rewardkit(model, tokenizer, a) -> dict:
    from rewardkit.registry import REWARDS
    from rewardkit.rewards import per_sample
    from rewardkit.trainer.config import GRPOConfig
    from rewardkit.trainer.trainer import GRPOTrainer

    if "gpu.even_tokens" not in REWARDS._builtins:
        reward = per_sample(name="gpu.even_tokens")(lambda s: even_tokens(s.completion_ids))
        REWARDS.register("gpu.even_tokens", reward)
    config = GRPOConfig(
        model="given",
        task="core.arith",
        rewards=[{"name": "gpu.even_tokens"}],
        prompts_per_step=a.prompts,
        num_generations=a.generations,
        max_completion_length=a.max_completion_length,
        temperature=1.0,
        learning_rate=1e-5,
        loss_type="dapo",
        beta=0.0,
        max_steps=a.steps,
        dtype="bfloat16",
        packing=True,
        report_to=[],
        progress=False,
        log_completions_every=0,
        seed=0,
        output_dir=tempfile.mkdtemp(),
        adam_betas=[0.9, 0.999],
    )
    trainer = GRPOTrainer(config, model=model, tokenizer=tokenizer)
    assert trainer.packing, "the padding-free path is off"
    before = [p.detach().float().clone() for p in trainer.model.parameters()]
    steps = []
    for _ in range(a.steps):
        m = trainer.train_step()
        if a.device.startswith("cuda"):
            torch.cuda.synchronize()
        for key in ("loss", "grad_norm", "entropy"):
            assert math.isfinite(m[key]), f"rewardkit step {trainer.step}: {key} = {m[key]}"
        steps.append(m)
        print(
            f"rewardkit step {trainer.step}: loss {m['loss']:.4f} grad_norm {m['grad_norm']:.3f} "
            f"{m['time/step']:.2f} s",
            flush=True,
        )
    after = list(trainer.model.parameters())
    assert all(torch.isfinite(p).all() for p in after), "a weight is not finite"
    assert any(not torch.equal(b, p.detach().float()) for b, p in zip(before, after)), (
        "the weights did not change"
    )
    n = a.prompts * a.generations
    times = [m["time/step"] for m in steps[1:]] or [steps[0]["time/step"]]
    tokens = [m["completion_length"] * n for m in steps[1:]] or [steps[0]["completion_length"] * n]
    return {
        "median_step_s": statistics.median(times),
        "completion_tokens_per_s": sum(tokens) / sum(times),
        "split_s": {
            k: statistics.mean(m[f"time/{k}"] for m in steps)
            for k in ("generate", "forward_backward", "optimizer")
        },
        "losses": [m["loss"] for m in steps],
    }


def ensure_trl(wheels: str | None) -> bool:
    try:
        import trl  # noqa: F401

        return True
    except ImportError:
        if not wheels:
            return False
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-index", "--find-links", wheels, "trl"],
        check=True,
    )
    import trl  # noqa: F401

    return True


def run_trl(model, tokenizer, a) -> dict:
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from rewardkit.tasks.arith import Arithmetic

    rows = Arithmetic(digits=2, train_size=2000).rows("train")

    def even_token_reward(completions, completion_ids, **kwargs):
        return [even_tokens(ids) for ids in completion_ids]

    args = GRPOConfig(
        output_dir=tempfile.mkdtemp(),
        per_device_train_batch_size=a.prompts * a.generations,
        gradient_accumulation_steps=1,
        num_generations=a.generations,
        max_completion_length=a.max_completion_length,
        temperature=1.0,
        learning_rate=1e-5,
        loss_type="dapo",
        beta=0.0,
        seed=0,
        max_steps=a.steps,
        report_to=[],
        logging_steps=1,
        save_strategy="no",
        use_cpu=not a.device.startswith("cuda"),
        bf16=a.device.startswith("cuda"),
        gradient_checkpointing=False,
        lr_scheduler_type="constant",
        adam_beta1=0.9,
        adam_beta2=0.999,
        dataloader_num_workers=0,
    )
    times: list[float] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            if a.device.startswith("cuda"):
                torch.cuda.synchronize()
            self.t = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            if a.device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - self.t)

    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[even_token_reward],
        args=args,
        train_dataset=Dataset.from_list([{"prompt": r["prompt"]} for r in rows]),
        processing_class=tokenizer,
        callbacks=[Clock()],
    )
    trainer.train()
    logs = [h for h in trainer.state.log_history if "completions/mean_length" in h]
    losses = [h["loss"] for h in logs if "loss" in h]
    assert all(math.isfinite(x) for x in losses), f"TRL losses {losses}"
    n = a.prompts * a.generations
    tokens = [h["completions/mean_length"] * n for h in logs]
    skip = 1 if len(times) > 1 else 0
    return {
        "median_step_s": statistics.median(times[skip:]),
        "completion_tokens_per_s": sum(tokens[skip:]) / sum(times[skip:]),
        "losses": losses,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--prompts", type=int, default=8)
    p.add_argument("--generations", type=int, default=8)
    p.add_argument("--max-completion-length", type=int, default=128)
    p.add_argument("--layers", type=int, default=30)
    p.add_argument("--wheels", help="folder of wheels to install trl from, offline")
    p.add_argument("--skip-trl", action="store_true")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "gpu_smollm2.json"))
    a = p.parse_args()
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("no CUDA device: run with --device cpu for a dry run")
    model, tokenizer, attn = build(a.layers, a.device)
    trl_model = copy.deepcopy(model)
    params = sum(p.numel() for p in model.parameters())
    print(f"model: {params / 1e6:.1f} M parameters, bf16, attention {attn}, device {a.device}")
    result = {
        "command": "python bench/gpu_smollm2.py " + " ".join(sys.argv[1:]),
        "device": torch.cuda.get_device_name() if a.device.startswith("cuda") else "cpu",
        "parameters": params,
        "attention": attn,
        "torch": torch.__version__,
        "settings": vars(a),
    }
    if a.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    result["rewardkit"] = run_rewardkit(model, tokenizer, a)
    if a.device.startswith("cuda"):
        result["rewardkit"]["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    del model
    if a.skip_trl or not ensure_trl(a.wheels):
        print("TRL: not installed (pass --wheels DIR with a trl wheel and its dependencies)")
    else:
        if a.device.startswith("cuda"):
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        result["trl"] = run_trl(trl_model, tokenizer, a)
        if a.device.startswith("cuda"):
            result["trl"]["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
        result["tokens_per_s_ratio"] = (
            result["rewardkit"]["completion_tokens_per_s"]
            / result["trl"]["completion_tokens_per_s"]
        )
    for name in ("rewardkit", "trl"):
        if name in result:
            r = result[name]
            print(
                f"{name}: {r['completion_tokens_per_s']:.0f} completion tokens/s, "
                f"median step {r['median_step_s']:.3f} s"
            )
    if "tokens_per_s_ratio" in result:
        print(f"rewardkit / TRL completion tokens/s: {result['tokens_per_s_ratio']:.2f}x")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=1))
    print("all losses finite: OK")


if __name__ == "__main__":
    main()
