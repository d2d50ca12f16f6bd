"""Generation of a LoRA policy with its adapters unmerged (peft's LoRA layers, two extra small
matmuls per linear layer per decode step) vs merged into the base weights (as the trainer
does it: rewardkit.trainer.lora_merge.merged_lora), and the cost of
a LoRA forward/backward next to a full fine-tune one, on SmolLM2-135M-Instruct (the packaged
`smollm2-135m-instruct`), one torch thread.

    OMP_NUM_THREADS=1 uv run --no-sync python bench/lora_generate_merge.py --rounds 3

Generation: the bench's chat prompts (core.chat_arith two-digit sums), 4 prompts x 8
completions of exactly --tokens tokens (min_new_tokens = max_new_tokens: the same work in
both arms), sampled at temperature 1; the arms alternate, each round timed in CPU seconds of
the process (time.process_time) and wall. LoRA r 16, alpha 32, all linear layers, lora_B
random (nonzero). Forward/backward: the trainer's shared-prompt micro-batch of those
prompts and their completions, loss = sum of completion log-probs, backward.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent


def clock(fn):
    c, t = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - c, time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--name", default="lora_generate_merge")
    args = p.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rewardkit.chat import prompt_ids
    from rewardkit.data import TrainSequence, completion_logprobs, left_pad, make_micro_batches
    from rewardkit.models import resolve_model
    from rewardkit.tasks.chat_arith import ChatArithmetic
    from rewardkit.trainer.lora_merge import merged_lora

    path = resolve_model("smollm2-135m-instruct")
    tok = AutoTokenizer.from_pretrained(path)
    task = ChatArithmetic(digits=2, operators="+", train_size=2000, test_size=16)
    rows = task.rows("train")[:4]
    prompts = [prompt_ids(tok, task.prompt(r), "core.chat_arith") for r in rows]
    repeated = [ids for ids in prompts for _ in range(8)]
    batch = left_pad(repeated, tok.pad_token_id or tok.eos_token_id, torch.device("cpu"))

    def load(lora: bool):
        torch.manual_seed(0)
        m = AutoModelForCausalLM.from_pretrained(path, attn_implementation="sdpa")
        if lora:
            m = get_peft_model(
                m,
                LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"),
            )
            with torch.no_grad():
                for n, prm in m.named_parameters():
                    if "lora_B" in n:
                        prm.normal_(0, 0.01)
        return m

    @torch.no_grad()
    def generate(model, seed):
        torch.manual_seed(seed)
        model.eval()
        out = model.generate(
            **batch,
            max_new_tokens=args.tokens,
            min_new_tokens=args.tokens,
            do_sample=True,
            temperature=1.0,
            top_k=0,
            top_p=1.0,
            pad_token_id=tok.pad_token_id,
        )
        model.train()
        return out[:, batch["input_ids"].shape[1] :]

    result: dict = {
        "command": "OMP_NUM_THREADS=1 uv run --no-sync python "
        f"bench/lora_generate_merge.py --rounds {args.rounds} --tokens {args.tokens}",
        "threads": torch.get_num_threads(),
        "loadavg_start": os.getloadavg(),
    }
    lora = load(True)
    gen: dict[str, dict[str, list[float]]] = {
        k: {"cpu": [], "wall": []} for k in ("unmerged", "merged", "merge_unmerge")
    }
    completions = None
    for r in range(args.rounds):
        for arm in ("unmerged", "merged") if r % 2 == 0 else ("merged", "unmerged"):
            if arm == "merged":
                merge = merged_lora(lora)  # what the trainer does (exact, see lora_merge)
                _, c, w = clock(merge.__enter__)
                out, c2, w2 = clock(lambda r=r: generate(lora, r))
                _, c3, w3 = clock(lambda merge=merge: merge.__exit__(None, None, None))
                gen["merge_unmerge"]["cpu"].append(c + c3)
                gen["merge_unmerge"]["wall"].append(w + w3)
            else:
                out, c2, w2 = clock(lambda r=r: generate(lora, r))
            gen[arm]["cpu"].append(c2)
            gen[arm]["wall"].append(w2)
            completions = out
            print(
                f"round {r} {arm}: cpu {c2:.2f} s wall {w2:.2f} s load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
    result["generate"] = {
        k: {
            **v,
            "median_cpu_s": statistics.median(v["cpu"]),
            "median_wall_s": statistics.median(v["wall"]),
        }
        for k, v in gen.items()
    }
    result["generate_cpu_ratio_unmerged_over_merged"] = (
        result["generate"]["unmerged"]["median_cpu_s"]
        / result["generate"]["merged"]["median_cpu_s"]
    )

    # forward/backward on the trainer's shared-prompt micro-batch: LoRA vs full fine-tune
    seqs = [TrainSequence(repeated[i], completions[i].tolist(), i) for i in range(len(repeated))]
    mbs = make_micro_batches(seqs, 8192, "shared_prompt", tok.pad_token_id, torch.device("cpu"))
    full = load(False)
    fb: dict[str, list[float]] = {"lora": [], "full": []}
    for r in range(args.rounds):
        for name in ("lora", "full") if r % 2 == 0 else ("full", "lora"):
            model = lora if name == "lora" else full
            model.train()

            def step(model=model):
                for mb in mbs:
                    logp, _ = completion_logprobs(model, mb, 1.0, with_entropy=True)
                    logp.sum().backward()
                model.zero_grad(set_to_none=True)

            _, c, w = clock(step)
            fb[name].append(c)
            print(f"round {r} fwd/bwd {name}: cpu {c:.2f} s wall {w:.2f} s", flush=True)
    result["forward_backward_cpu_s"] = {
        k: {"all": v, "median": statistics.median(v)} for k, v in fb.items()
    }
    if os.environ.get("PROFILE"):
        from torch.profiler import ProfilerActivity, profile

        for name, model in (("lora", lora), ("full", full)):
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                for mb in mbs:
                    logp, _ = completion_logprobs(model, mb, 1.0, with_entropy=True)
                    logp.sum().backward()
                model.zero_grad(set_to_none=True)
            print(f"== {name}")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
    result["loadavg_end"] = os.getloadavg()
    (ROOT / "results" / f"{args.name}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "generate"}, indent=1))
    print({k: (v["median_cpu_s"], v["median_wall_s"]) for k, v in result["generate"].items()})


if __name__ == "__main__":
    main()
