"""Does the base language model already tell the chosen answer of a pair from the rejected?

A probe behind `rm_smollm2_mix_mean_eval.md`: for held-out pairs of a pair file, the
log-probability the plain SmolLM2-135M-Instruct language model gives each response after the
chat prompt, summed over the response's tokens; a pair counts as right when the chosen
response gets the higher one. It says whether the information a reward model needs is in
the network before any training (for chain sums: whether the model "knows" the arithmetic).

    OMP_NUM_THREADS=1 uv run --no-sync python bench/rm_lm_logprob_probe.py \
        runs/rm_data/math.chain_sum-44136fa355.jsonl --problems 60 \
        --out bench/results/rm_lm_logprob_probe.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections import defaultdict
from pathlib import Path

import torch

from rewardkit_rm.data import encode, load_pairs, split_rows


def response_logprob(lm, tokenizer, prompt, response: str) -> float:
    """Sum of log p(token) over the response's tokens (the chat template's end included)."""
    ids, prompt_last, _ = encode(tokenizer, prompt, response, max_length=10**6)
    x = torch.tensor([ids])
    with torch.no_grad():
        logp = torch.log_softmax(lm(x).logits[0, :-1].float(), -1)
    token_logp = logp.gather(1, x[0, 1:, None])[:, 0]
    return token_logp[prompt_last:].sum().item()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", help="a pair JSONL file (a verifier-built source)")
    parser.add_argument("--problems", type=int, default=60, help="the first N held-out problems")
    parser.add_argument("--test-fraction", type=float, default=0.3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rewardkit.models import resolve_model

    path = resolve_model("smollm2-135m-instruct")
    tokenizer = AutoTokenizer.from_pretrained(path)
    lm = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    test = split_rows(load_pairs(args.data), args.test_fraction)["test"]
    keep = set(sorted({p.problem_id for p in test})[: args.problems])
    right: dict[str, list[bool]] = defaultdict(list)
    for pair in test:
        if pair.problem_id not in keep:
            continue
        chosen = response_logprob(lm, tokenizer, pair.prompt, pair.chosen)
        rejected = response_logprob(lm, tokenizer, pair.prompt, pair.rejected)
        for key in ("all", pair.meta.get("kind", "?")):
            right[key].append(chosen > rejected)
    report = {
        "command": shlex.join(["python", *sys.argv]),
        "problems": len(keep),
        "accuracy": {k: {"pairs": len(v), "accuracy": sum(v) / len(v)} for k, v in right.items()},
    }
    for kind, r in sorted(report["accuracy"].items()):
        print(f"{kind:>16}  {r['pairs']:4d} pairs  {r['accuracy']:.3f}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
