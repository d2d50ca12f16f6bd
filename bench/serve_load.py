"""Load test of `rewardkit serve`, and its overhead over calling the rewards in-process.

Two reward sets, each on fixed batches of 16 samples:

- `arith`: core.exact_answer + 0.1 * core.number_format on core.arith prompts (correct and
  wrong answers). Microseconds per batch in-process: the server's own cost shows.
- `math`: math.accuracy (answer extraction + math-verify in verifier processes, the real
  verifier of rewardkit-math) on reasoning-gym problems, answered `\\boxed{gold}` or with
  the gold's last number changed.

For each: (1) one client: every batch is scored in-process (the Scorer in this process) and
then over HTTP (`rewardkit serve` in a subprocess, loopback), back to back, `--repeats`
times; the paired latency difference is the server's overhead (median, 95% bootstrap CI);
(2) `--clients` concurrent clients send batches for `--duration` seconds: throughput and
p50/p99 latency; (3) the same number of threads call the Scorer in-process for as long.
Every reply is checked: status 200 and the very scores the in-process call gave; a request
that fails, times out or differs is counted. Client and server share the machine's cores.

    uv run --no-sync python bench/serve_load.py [--clients 8] [--duration 20] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from rewardkit.external import build_reward_set, parse_reward_set
from rewardkit.rewards.scoring import Scorer
from rewardkit.serve import free_socket

BATCH = 16
_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)", re.DOTALL)


def arith_batches(n_batches: int) -> list[list[dict]]:
    from rewardkit.tasks.arith import Arithmetic

    rows = Arithmetic(digits=3).rows("train")[: n_batches * BATCH // 2]
    samples = []
    for k, row in enumerate(rows):  # two completions per prompt: one right, one wrong
        wrong = str(int(row["answer"]) + 1 + k % 7) + (" " if k % 2 else " is it")
        for completion in (row["answer"], wrong):
            samples.append({"prompt": row["prompt"], "completion": completion,
                            "meta": {"answer": row["answer"]}})  # fmt: skip
    return [samples[i : i + BATCH] for i in range(0, len(samples), BATCH)]


def math_batches(n_batches: int) -> list[list[dict]]:
    import reasoning_gym

    names = ["basic_arithmetic", "fraction_simplification", "decimal_arithmetic", "gsm_symbolic"]
    per = n_batches * BATCH // (2 * len(names))
    samples = []
    for name in names:
        for entry in reasoning_gym.create_dataset(name, size=per, seed=0):
            gold = str(entry["answer"])
            m = _LAST_NUMBER.search(gold)
            wrong = gold[: m.start()] + str(int(m.group(1)) + 1) + gold[m.end() :] if m else "x"
            for answer in (gold, wrong):
                samples.append({
                    "prompt": entry["question"],
                    "completion": f"Working it out step by step... The answer is \\boxed{{{answer}}}.",
                    "meta": {"answer": gold},
                })  # fmt: skip
    return [samples[i : i + BATCH] for i in range(0, len(samples), BATCH)]


def make_scorer(rewards: str, batches):
    """The Scorer for `rewards` in this process, and the batches as Samples."""
    from rewardkit.external import groups_of, sample_from_json

    scorer = Scorer(build_reward_set(parse_reward_set(rewards)), timeout=120)
    as_samples = []
    for batch in batches:
        groups = groups_of([s["prompt"] for s in batch])
        as_samples.append([sample_from_json(s, g) for s, g in zip(batch, groups)])
    scorer(as_samples[0])  # warm-up (verifier processes start)
    return scorer, as_samples


def paired(scorer, samples, url: str, batches, repeats: int):
    """Each batch scored in-process then over HTTP by one client, `repeats` times, the two
    calls back to back so that both see the same machine load. Returns the two latency
    lists, the server's own time per request (its `elapsed_s`: parsing, queueing and
    scoring), the in-process scores and how many replies failed or differed."""
    t_in, t_srv, t_inside, expected, bad = [], [], [], [], 0
    with httpx.Client(base_url=url, timeout=120) as client:
        client.post("/score", json={"samples": batches[0]})  # warm-up
        for rep in range(repeats):
            for batch, sample_batch in zip(batches, samples):
                t0 = time.perf_counter()
                want = [o.score for o in scorer(sample_batch).outputs]
                t1 = time.perf_counter()
                r = client.post("/score", json={"samples": batch})
                t2 = time.perf_counter()
                t_in.append(t1 - t0)
                t_srv.append(t2 - t1)
                t_inside.append(r.json()["elapsed_s"] if r.status_code == 200 else math.nan)
                bad += r.status_code != 200 or r.json()["scores"] != want
                if rep == 0:
                    expected.append(want)
    return t_in, t_srv, t_inside, expected, bad


def in_process_load(scorer, samples, clients: int, duration: float):
    """`clients` threads calling the Scorer back to back for `duration` s: batches/s."""
    from concurrent.futures import ThreadPoolExecutor

    stop = time.perf_counter() + duration

    def worker(k: int) -> list[float]:
        out, i = [], k
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            scorer(samples[i % len(samples)])
            out.append(time.perf_counter() - t0)
            i += clients
        return out

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        lat = [x for part in pool.map(worker, range(clients)) for x in part]
    wall = time.perf_counter() - t0
    return {"calls": len(lat), "wall_s": wall, "requests_per_s": len(lat) / wall,
            "p50_ms": 1e3 * statistics.median(lat), "p99_ms": 1e3 * pct(lat, 99)}  # fmt: skip


def median_ci(values: list[float], seed: int = 0) -> tuple[float, float, float]:
    """Median and its 95% bootstrap interval."""
    import numpy as np

    x = np.asarray(values)
    rng = np.random.default_rng(seed)
    meds = np.median(rng.choice(x, size=(2000, len(x))), axis=1)
    return float(np.median(x)), float(np.quantile(meds, 0.025)), float(np.quantile(meds, 0.975))


def start_server(rewards: str, max_concurrency: int):
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    cmd = [sys.executable, "-m", "rewardkit.cli", "serve", "--port", str(port),
           "--log-level", "warning", "--max-concurrency", str(max_concurrency)]  # fmt: skip
    for part in rewards.split(","):
        cmd += ["--reward", part]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 180
    while True:
        try:
            httpx.get(f"{url}/health").raise_for_status()
            return proc, url
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {proc.stderr.read().decode()}") from None
            time.sleep(0.2)


async def load(url: str, batches, expected, clients: int, duration: float):
    """`clients` concurrent clients, each sending batches back to back for `duration` s."""
    stats = {"sent": 0, "ok": 0, "http_errors": 0, "wrong_scores": 0, "lost": 0}
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        stop = time.perf_counter() + duration

        async def one_client(k: int):
            i = k
            while time.perf_counter() < stop:
                batch, want = batches[i % len(batches)], expected[i % len(batches)]
                i += clients
                stats["sent"] += 1
                t0 = time.perf_counter()
                try:
                    r = await client.post("/score", json={"samples": batch})
                except httpx.HTTPError:
                    stats["lost"] += 1
                    continue
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    stats["http_errors"] += 1
                elif r.json()["scores"] != want:
                    stats["wrong_scores"] += 1
                else:
                    stats["ok"] += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(one_client(k) for k in range(clients)))
        wall = time.perf_counter() - t0
    return stats, latencies, wall


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 \
        else values[0]  # fmt: skip


def run(name: str, rewards: str, batches, args) -> dict:
    scorer, samples = make_scorer(rewards, batches)
    proc, url = start_server(rewards, args.max_concurrency)
    try:
        print(f"[{name}] in-process vs server, one client, paired ...", flush=True)
        t_in, t_srv, t_inside, expected, bad = paired(scorer, samples, url, batches, args.repeats)
        print(f"[{name}] server, {args.clients} clients for {args.duration}s ...", flush=True)
        stats, lat, wall = asyncio.run(load(url, batches, expected, args.clients, args.duration))
        health = httpx.get(f"{url}/health").json()
    finally:
        proc.terminate()
        proc.wait(30)
    print(f"[{name}] in-process, {args.clients} threads for {args.duration}s ...", flush=True)
    inproc_load = in_process_load(scorer, samples, args.clients, args.duration)
    scorer.close()
    diff = median_ci([(b - a) * 1e3 for a, b in zip(t_in, t_srv)])
    ratio = median_ci([b / a for a, b in zip(t_in, t_srv)])
    return {
        "rewards": rewards,
        "batch_size": BATCH,
        "batches": len(batches),
        "one_client": {
            "pairs": len(t_in), "wrong_or_failed": bad,
            "in_process_p50_ms": 1e3 * statistics.median(t_in),
            "server_p50_ms": 1e3 * statistics.median(t_srv),
            "server_p99_ms": 1e3 * pct(t_srv, 99),
            "inside_server_p50_ms": 1e3 * statistics.median(t_inside),
            "overhead_ms_median_ci95": diff, "ratio_median_ci95": ratio,
        },
        "load": {
            "clients": args.clients, "duration_s": args.duration, "wall_s": wall, **stats,
            "p50_ms": 1e3 * statistics.median(lat), "p99_ms": 1e3 * pct(lat, 99),
            "requests_per_s": stats["ok"] / wall, "samples_per_s": stats["ok"] * BATCH / wall,
        },
        "in_process_load": inproc_load,
        "throughput_ratio_server_over_in_process": (stats["ok"] / wall)
        / inproc_load["requests_per_s"],
        "server_counts": health["counts"],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--max-concurrency", type=int, default=4)
    parser.add_argument("--out", default="bench/results/serve_load.json")
    args = parser.parse_args()
    load_before = os.getloadavg()
    results = {
        "command": "uv run --no-sync python bench/serve_load.py " + " ".join(sys.argv[1:]),
        "machine": f"{os.cpu_count()} CPUs (shared), {platform.python_version()}",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "loadavg_before": load_before,
        "max_concurrency": args.max_concurrency,
        "arith": run("arith", "core.exact_answer,core.number_format:0.1",
                     arith_batches(args.batches), args),
        "math": run("math", "math.accuracy", math_batches(args.batches), args),
        "loadavg_after": os.getloadavg(),
    }  # fmt: skip
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    for name in ("arith", "math"):
        r, one, ld = results[name], results[name]["one_client"], results[name]["load"]
        print(
            f"{name}: one client p50 in-process {one['in_process_p50_ms']:.2f} ms, server "
            f"{one['server_p50_ms']:.2f} ms (inside the server {one['inside_server_p50_ms']:.2f}"
            f" ms), overhead {one['overhead_ms_median_ci95'][0]:.2f} ms "
            f"[{one['overhead_ms_median_ci95'][1]:.2f}, {one['overhead_ms_median_ci95'][2]:.2f}]; "
            f"{ld['clients']} clients: {ld['requests_per_s']:.1f} req/s (in-process threads "
            f"{r['in_process_load']['requests_per_s']:.1f}), p50 {ld['p50_ms']:.1f} ms, p99 "
            f"{ld['p99_ms']:.1f} ms; sent {ld['sent']} ok {ld['ok']} errors {ld['http_errors']} "
            f"wrong {ld['wrong_scores']} lost {ld['lost']}"
        )


if __name__ == "__main__":
    main()
