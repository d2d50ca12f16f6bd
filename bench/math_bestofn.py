"""Best-of-N with an implicit PRM vs majority vote vs random, and RewardMATH-style robustness.

Spec section 7. No real policy is available offline, so the candidates are written by a
program: procedural arithmetic chains ("Start with 7. Add 5. Multiply by 2. Subtract 9.")
with worked solutions, one step per paragraph, either correct or subtly wrong: one step
goes wrong and the later steps carry the error on correctly, so the final answer is
consistent with the (wrong) work. Three kinds of mistakes:

- slip: the result of one step is off by 1, 2 or 10 ("12 * 2 = 25");
- copy: one operand is copied wrongly from the question ("Add 5" -> "12 + 6 = 18");
- op:   the wrong operation ("Add 5" -> "12 - 5 = 7").

The implicit PRM (arXiv 2412.01981) is a tiny character-level model trained on the CPU
with `python -m rewardkit_math.train_implicit_prm` (CE loss on response-level labels,
πθ and π_ref start from the same weights) on labelled solutions of other problems. The
start is a tiny random model warm-started for `--sft-steps` on correct solutions
(`rewardkit.sft`), standing in for the instruct model a real implicit PRM starts from.

1. Best-of-N: each test problem has a simulated policy that is right with probability
   `p_correct`, and otherwise makes one of 3 mistakes typical of that problem (so wrong
   answers cluster, as they do with real models). Selection by: random (the expected
   accuracy of a uniform pick), majority vote over final answers (ties split evenly), the
   PRM (highest min step reward, step-reward sum, or q_T), and pass@N (the oracle).
2. RewardMATH-style: one correct solution against 9 distinct wrong ones per problem;
   accuracy = fraction of problems where the correct one scores strictly highest.

    uv run --no-sync python bench/math_bestofn.py [--sft-steps 300] [--epochs 4] [--beta 0.5]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections import Counter
from pathlib import Path

OPS = {"Add": "+", "Subtract": "-", "Multiply by": "*"}
KINDS = ("slip", "copy", "op")
FINAL = ("The answer is \\boxed{{{}}}.", "So the result is \\boxed{{{}}}.")


def make_problem(rng: random.Random, n_ops: int = 3) -> dict:
    """A chain of operations on small numbers whose intermediate values stay in [0, 99]."""
    while True:
        start, ops, value = rng.randint(2, 9), [], None
        value = start
        for _ in range(n_ops):
            name = rng.choice(list(OPS))
            k = rng.randint(2, 3) if name == "Multiply by" else rng.randint(1, 9)
            value = _apply(value, OPS[name], k)
            ops.append((name, k))
        if all(0 <= v <= 99 for v in _trace(start, ops)):
            return {"start": start, "ops": ops, "answer": value}


def _apply(a: int, op: str, b: int) -> int:
    return a + b if op == "+" else a - b if op == "-" else a * b


def _trace(start: int, ops: list) -> list[int]:
    values, v = [], start
    for name, k in ops:
        v = _apply(v, OPS[name], k)
        values.append(v)
    return values


def question(p: dict) -> str:
    return f"Start with {p['start']}. " + " ".join(f"{n} {k}." for n, k in p["ops"]) + " Result?"


def solution(p: dict, mistake: tuple | None = None, final: int = 0) -> tuple[str, int]:
    """(worked solution, its final answer); `mistake` = (step, kind, delta) or None."""
    steps, v = [], p["start"]
    for i, (name, k) in enumerate(p["ops"]):
        op, shown = OPS[name], k
        if mistake and mistake[0] == i:
            _, kind, delta = mistake
            if kind == "copy":
                shown = k + delta
            elif kind == "op":
                op = {"+": "-", "-": "+", "*": "+"}[op]
        result = _apply(v, op, shown)
        if mistake and mistake[0] == i and mistake[1] == "slip":
            result += mistake[2]
        steps.append(f"{v} {op} {shown} = {result}")
        v = result
    steps.append(FINAL[final % len(FINAL)].format(v))
    return "\n\n".join(steps), v


def mistakes(p: dict, rng: random.Random, n: int) -> list[tuple]:
    """n distinct mistakes whose final answer differs from the right one."""
    pool = []
    for step in range(len(p["ops"])):
        for kind in KINDS:
            for delta in (1, -1, 2, 10) if kind != "op" else (0,):
                m = (step, kind, delta)
                if solution(p, m)[1] != p["answer"]:
                    pool.append(m)
    rng.shuffle(pool)
    if len(pool) < n:
        raise ValueError(f"problem {question(p)!r} has only {len(pool)} distinct mistakes")
    return pool[:n]


def training_data(rng: random.Random, n_problems: int, path: Path) -> int:
    """Per problem: 2 correct solutions (both final-line variants) and 2 wrong ones."""
    rows = []
    for _ in range(n_problems):
        p = make_problem(rng)
        for f in range(2):
            rows.append({"prompt": question(p), "completion": solution(p, None, f)[0], "label": 1})
        for m in mistakes(p, rng, 2):
            rows.append(
                {
                    "prompt": question(p),
                    "completion": solution(p, m, rng.randrange(2))[0],
                    "label": 0,
                }
            )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return len(rows)


# -- selection rules -------------------------------------------------------------------------
def random_pick(correct: list[bool]) -> float:
    return sum(correct) / len(correct)


def majority_vote(answers: list[int], correct_answer: int) -> float:
    counts = Counter(answers)
    top = max(counts.values())
    winners = [a for a, c in counts.items() if c == top]
    return (correct_answer in winners) / len(winners)


def best_by(scores: list[float], correct: list[bool]) -> float:
    top = max(scores)
    tied = [c for s, c in zip(scores, correct, strict=True) if s == top]
    return sum(tied) / len(tied)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train-problems", type=int, default=500)
    parser.add_argument("--test-problems", type=int, default=150)
    parser.add_argument("--sft-steps", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--beta", type=float, default=0.5)
    parser.add_argument("--p-correct", type=float, default=0.3)
    parser.add_argument("--n", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="bench/results/math_bestofn.json")
    args = parser.parse_args()

    import torch

    from rewardkit.sft import supervised_warm_start
    from rewardkit.tiny import build_tiny_model
    from rewardkit.types import Sample
    from rewardkit_math.implicit_reward import ImplicitPRMReward
    from rewardkit_math.train_implicit_prm import main as train_main

    torch.set_num_threads(1)  # 2 threads on 2 busy shared cores ran ~10x slower
    rng = random.Random(args.seed)
    tiny = {"num_layers": 2, "hidden_size": 64, "num_heads": 4}
    work = Path(tempfile.mkdtemp(prefix="math_bestofn_"))
    n_rows = training_data(rng, args.train_problems, work / "train.jsonl")
    model, tokenizer = build_tiny_model(work / "init", seed=args.seed, **tiny)
    started = time.monotonic()
    sft_losses: list[float | None] = [None]
    if args.sft_steps:  # the reference: a policy warm-started on correct solutions
        rows = [json.loads(x) for x in (work / "train.jsonl").read_text().splitlines()]
        pairs = [(r["prompt"], r["completion"]) for r in rows if r["label"] == 1]
        sft_losses = supervised_warm_start(
            model.train(), tokenizer, pairs, args.sft_steps, seed=args.seed, progress=False
        )
        model.save_pretrained(work / "init")
    sft_s = time.monotonic() - started
    started = time.monotonic()
    history = train_main(
        ["--model", str(work / "init"), "--data", str(work / "train.jsonl"),
         "--out", str(work / "prm"), "--loss", "ce", "--beta", str(args.beta),
         "--lr", str(args.lr), "--epochs", str(args.epochs), "--batch-size", "16",
         "--seed", str(args.seed)]
    )  # fmt: skip
    train_s = time.monotonic() - started

    reward = ImplicitPRMReward(
        model=str(work / "prm"), ref_model=str(work / "init"), beta=args.beta, batch_size=32
    )
    cache: dict[tuple[str, str], dict[str, float]] = {}

    def score(prompt: str, texts: list[str]) -> list[dict[str, float]]:
        new = sorted({t for t in texts if (prompt, t) not in cache})
        for t, o in zip(new, reward([Sample(prompt, t) for t in new]), strict=True):
            steps = o.step_rewards or [0.0]
            cache[(prompt, t)] = {"min": min(steps), "sum": sum(steps), "q_T": o.info["q_T"]}
        return [cache[(prompt, t)] for t in texts]

    # 1. best-of-N on a simulated policy
    started = time.monotonic()
    rules = ("random", "majority", "prm_min", "prm_sum", "prm_q_T", "pass@N")
    totals = {n: dict.fromkeys(rules, 0.0) for n in args.n}
    test = [make_problem(rng) for _ in range(args.test_problems)]
    for p in test:
        typical = mistakes(p, rng, 3)
        cands = []
        for _ in range(max(args.n)):
            m = None if rng.random() < args.p_correct else rng.choice(typical)
            cands.append(solution(p, m, rng.randrange(2)))
        scores = score(question(p), [t for t, _ in cands])
        for n in args.n:
            answers = [a for _, a in cands[:n]]
            correct = [a == p["answer"] for a in answers]
            t = totals[n]
            t["random"] += random_pick(correct)
            t["majority"] += majority_vote(answers, p["answer"])
            for key in ("min", "sum", "q_T"):
                t[f"prm_{key}"] += best_by([s[key] for s in scores[:n]], correct)
            t["pass@N"] += float(any(correct))
    best_of_n = {n: {k: v / len(test) for k, v in t.items()} for n, t in totals.items()}

    # 2. RewardMATH-style: one correct against 9 wrong
    wins = {"min": 0, "sum": 0, "q_T": 0}
    by_kind = {k: [0, 0] for k in KINDS}  # [correct above this wrong one, pairs]
    for p in test:
        wrong = mistakes(p, rng, 9)
        texts = [solution(p, None, rng.randrange(2))[0]]
        texts += [solution(p, m, rng.randrange(2))[0] for m in wrong]
        scores = score(question(p), texts)
        for key in wins:
            wins[key] += all(scores[0][key] > s[key] for s in scores[1:])
        for m, s in zip(wrong, scores[1:], strict=True):
            by_kind[m[1]][0] += scores[0]["min"] > s["min"]
            by_kind[m[1]][1] += 1
    robustness = {f"prm_{k}": v / len(test) for k, v in wins.items()}
    robustness["random"] = 1 / 10
    pairwise = {k: v[0] / max(v[1], 1) for k, v in by_kind.items()}
    eval_s = time.monotonic() - started

    result = {
        "command": "uv run --no-sync python bench/math_bestofn.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k not in ("out", "n"))
        + " --n " + " ".join(map(str, args.n)),
        "prm": {"model": tiny, "beta": args.beta, "lr": args.lr, "epochs": args.epochs,
                "train_examples": n_rows, "train_steps": len(history),
                "first_loss": history[0]["loss"], "last_loss": history[-1]["loss"],
                "train_seconds": round(train_s, 1), "sft_steps": args.sft_steps,
                "sft_first_loss": sft_losses[0], "sft_last_loss": sft_losses[-1],
                "sft_seconds": round(sft_s, 1)},
        "best_of_n": {str(n): v for n, v in best_of_n.items()},
        "rewardmath_1_vs_9": robustness,
        "pairwise_correct_above_wrong_min_by_mistake": pairwise,
        "test_problems": len(test),
        "eval_seconds": round(eval_s, 1),
    }  # fmt: skip
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
