"""Does `math.accuracy` agree with reasoning-gym's own scorers?

For reasoning-gym datasets whose answers are mathematical objects (numbers, fractions,
decimals, complex numbers, roots, polynomials), score two answers per problem with both
judges: the dataset's answer itself ("correct") and a perturbation of it that changes its
value (the last number in the answer plus one: "perturbed"). reasoning-gym's verdict is
"correct" when its `score_answer` gives 1.0; math.accuracy sees the answer as
`\\boxed{answer}`. Writes bench/results/math_agreement.json with the agreement rate per
dataset and every disagreement.

    uv run --no-sync python bench/math_agreement.py [--n 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

DATASETS = [
    "basic_arithmetic", "chain_sum", "decimal_arithmetic", "decimal_chain_sum",
    "fraction_simplification", "gcd", "lcm", "products", "power_function",
    "prime_factorization", "simple_equations", "polynomial_equations", "complex_arithmetic",
    "count_bits", "count_primes", "leg_counting", "gsm_symbolic", "simple_geometry", "dice",
    "coin_flip", "polynomial_multiplication", "rectangle_count",
]  # fmt: skip

_LAST_NUMBER = re.compile(r"(\d+)(\.\d+)?(?!.*\d)", re.DOTALL)


def perturb(answer: str) -> str | None:
    """The answer with the integer part of its last number increased by one (None when it
    has no number): '12.5' -> '13.5', '3/4' -> '3/5', '48.0 + 36.0i' -> '48.0 + 37.0i'."""
    m = _LAST_NUMBER.search(answer)
    if m is None:
        return None
    bumped = str(int(m.group(1)) + 1) + (m.group(2) or "")
    return answer[: m.start()] + bumped + answer[m.end() :]


def main() -> None:
    import reasoning_gym

    from rewardkit_math.accuracy import MathAccuracy

    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20, help="problems per dataset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--out", default="bench/results/math_agreement.json")
    args = parser.parse_args()

    accuracy = MathAccuracy(timeout=args.timeout, num_workers=2)
    per_dataset, disagreements = {}, []
    started = time.monotonic()
    for name in DATASETS:
        data = reasoning_gym.create_dataset(name, size=args.n, seed=args.seed)
        counts = {"correct": [0, 0], "perturbed": [0, 0]}  # [agree, total]
        for index, entry in enumerate(data):
            gold = entry["answer"]
            for kind, answer in (("correct", gold), ("perturbed", perturb(gold))):
                if answer is None:
                    continue
                theirs = float(data.score_answer(answer, entry))
                ours = accuracy.score_text(f"\\boxed{{{answer}}}", gold)
                agree = (theirs == 1.0) == (ours.score == 1.0)
                counts[kind][0] += agree
                counts[kind][1] += 1
                if not agree:
                    disagreements.append(
                        {
                            "dataset": name, "index": index, "kind": kind, "gold": gold,
                            "answer": answer, "reasoning_gym": theirs, "math_accuracy": ours.score,
                            "reason": ours.info["reason"], "question": entry["question"][:300],
                        }
                    )  # fmt: skip
        per_dataset[name] = {
            kind: {"agree": a, "total": t, "rate": a / t if t else None}
            for kind, (a, t) in counts.items()
        }
        print(name, {k: f"{v['agree']}/{v['total']}" for k, v in per_dataset[name].items()})
    agree = sum(v[k]["agree"] for v in per_dataset.values() for k in v)
    total = sum(v[k]["total"] for v in per_dataset.values() for k in v)
    result = {
        "command": f"uv run --no-sync python bench/math_agreement.py --n {args.n} --seed {args.seed}",
        "problems_per_dataset": args.n,
        "agreement": agree / total,
        "agree": agree,
        "total": total,
        "seconds": round(time.monotonic() - started, 1),
        "per_dataset": per_dataset,
        "disagreements": disagreements,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"agreement {agree}/{total} = {agree / total:.3f}; {len(disagreements)} disagreements")
    for d in disagreements:
        print(
            f"  {d['dataset']}[{d['index']}] {d['kind']}: gold {d['gold']!r} answer "
            f"{d['answer']!r} rg {d['reasoning_gym']} ours {d['math_accuracy']} ({d['reason']})"
        )


if __name__ == "__main__":
    main()
