"""GRPO with 2 CPU processes: DDP over gloo, and DeepSpeed ZeRO-2 (docs/training.md).

Each test launches tests/e2e/grpo_worker.py on 2 ranks; each rank runs a few GRPOTrainer
steps on the tiny model and writes rank{r}.json (see the worker's docstring). The tests
check that the ranks really were 2 processes of the named kind, trained on different
prompts, ended with identical weights that moved, took exactly one optimizer (and LR
scheduler) step per iteration, made equal numbers of backward calls although they cut their
batches into different numbers of micro-batches, and used DAPO's global token normaliser.

Both launches pass a gradient-accumulation setting of 4 on purpose: the trainer cuts its own
micro-batches, so a launcher's accumulation must neither rescale the loss nor add steps.

DeepSpeed is the optional extra rewardkit[deepspeed]; without it the ZeRO-2 test skips,
unless CI=true or REWARDKIT_REQUIRE_DEEPSPEED=1, where it fails.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.distributed]

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("grpo_worker.py")
ZERO2 = ROOT / "configs" / "accelerate" / "zero2.yaml"
RUN_TIMEOUT = 600  # s; a run takes ~1 min on 2 idle cores, most of it importing torch
BUILD_TIMEOUT = 1200  # s; DeepSpeed's shared-memory op compiles once (10 s to minutes)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCELERATE_")}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_PORT"):
        env.pop(key, None)
    env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", **extra)
    if sys.platform.startswith("linux"):  # both ranks are here: gloo over loopback, even in
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")  # containers whose hostname won't resolve
    return env


def communicate(cmd: list[str], env: dict[str, str], timeout: int) -> tuple[str, str]:
    """Run cmd in its own process group and return its output; on a timeout or a non-zero
    exit the test fails with the output's tail. A timeout kills the whole group (launcher
    and ranks, or compiler), so nothing is left behind."""
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"{' '.join(cmd)} ran past {timeout} s\nstderr:\n{stderr[-8000:]}")
    assert proc.returncode == 0, (
        f"{' '.join(cmd)} exited {proc.returncode}\n"
        f"stdout:\n{stdout[-4000:]}\nstderr:\n{stderr[-8000:]}"
    )
    return stdout, stderr


def run(cmd: list[str], env: dict[str, str], out: Path) -> None:
    _, stderr = communicate(cmd, env, RUN_TIMEOUT)
    missing = [r for r in (0, 1) if not (out / f"rank{r}.json").exists()]
    assert not missing, f"ranks {missing} wrote no result\nstderr:\n{stderr[-8000:]}"


def load_ranks(out: Path) -> list[dict]:
    return [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]


def check_two_ranks_trained_together(ranks: list[dict], out: Path) -> None:
    r0, r1 = ranks
    # GRPOTrainer.train() ran to the end: evaluations before and after, a checkpoint
    run_dir = out / "run"
    state = json.loads(
        (run_dir / f"checkpoint-{r0['steps_run']}" / "trainer_state.json").read_text()
    )
    assert state["step"] == r0["steps_run"]
    assert (run_dir / "final" / "config.json").exists()
    for r in ranks:
        assert len(r["eval_accuracy"]) == 2 and all(0 <= a <= 1 for a in r["eval_accuracy"])
    assert r0["eval_accuracy"] == r1["eval_accuracy"]  # a global number, summed over ranks
    assert [r["rank"] for r in ranks] == [0, 1]
    assert [r["world"] for r in ranks] == [2, 2]

    # different data: each rank took its own prompts_per_step rows per step, none shared
    for r in ranks:
        assert len(r["rows"]) == 2 * r["steps_run"], r["rows"]
        assert len(set(r["rows"])) == len(r["rows"])
    assert not set(r0["rows"]) & set(r1["rows"]), (r0["rows"], r1["rows"])

    # same start, same end, and the end is not the start
    assert r0["initial_sha256"] == r1["initial_sha256"]
    assert r0["final_sha256"] == r1["final_sha256"], "the ranks' final weights differ"
    assert r0["final_sha256"] != r0["initial_sha256"], "training left the weights unchanged"
    assert r0["update_norm"] == r1["update_norm"] > 1e-4

    # exactly one optimizer step and one LR-scheduler step per iteration, on every rank
    for r in ranks:
        assert r["optimizer_steps"] == r["steps_run"] * r["num_iterations"], r
        assert r["scheduler_steps"] == r["optimizer_steps"], r
        assert r["accelerator_gradient_accumulation_steps"] == 1, r
        # constant_with_warmup over warmup_steps=100 training steps, i.e. 100 * num_iterations
        # scheduler steps (one per optimizer step): after k scheduler steps
        # lr = 1e-2 * k / (100 * num_iterations), k = num_iterations per GRPO step
        # (num_iterations 2: k = 2, 4, 6 -> 1e-4, 2e-4, 3e-4)
        n = r["num_iterations"]
        k = [n * (i + 1) for i in range(r["steps_run"])]
        assert [s["lr"] for s in r["steps"]] == pytest.approx([1e-2 * x / (100 * n) for x in k])

    for s0, s1 in zip(r0["steps"], r1["steps"], strict=True):
        # rank 0's token budget of 16 cuts its batch into several micro-batches, rank 1's
        # budget of 4096 into one: rank 1 is padded with zero-weight micro-batches so that
        # both make max(local micro-batches) backward calls per iteration
        assert s0["local_micro_batches"] > s1["local_micro_batches"] >= 1
        backwards = max(s0["local_micro_batches"], s1["local_micro_batches"])
        assert s0["losses"] == s1["losses"] == backwards * r0["num_iterations"]

        # DAPO (Yu et al. 2025): N = tokens of both ranks; each rank weights its tokens by
        # 1 / (N / P) with P = 2, so rank r's weights sum to n_r * 2 / N (e.g. 47 and 40
        # tokens: N = 87, sums 94/87 = 1.0805 and 80/87 = 0.9195), and together to P = 2;
        # DDP's mean over the 2 ranks then gives every token of the global batch 1 / N.
        n = s0["local_tokens"] + s1["local_tokens"]
        assert s0["global_tokens"] == s1["global_tokens"] == n
        for s in (s0, s1):
            assert s["num_processes"] == 2
            assert s["weight_sum"] == pytest.approx(s["local_tokens"] * 2 / n, rel=1e-6)
        assert s0["weight_sum"] + s1["weight_sum"] == pytest.approx(2.0, rel=1e-6)


def test_ddp_two_cpu_processes(tmp_path):
    env = launch_env(ACCELERATE_USE_CPU="1", ACCELERATE_GRADIENT_ACCUMULATION_STEPS="4")
    launch = f"-m torch.distributed.run --nproc_per_node 2 --master_port {free_port()}"
    cmd = [sys.executable, *launch.split(), str(WORKER), str(tmp_path)]
    run(cmd, env, tmp_path)
    ranks = load_ranks(tmp_path)
    for r in ranks:
        assert r["distributed_type"] == "DistributedType.MULTI_CPU", r["distributed_type"]
        assert r["accelerate_num_processes"] == 2
        assert r["engine"] == "DistributedDataParallel"
    check_two_ranks_trained_together(ranks, tmp_path)


def require_deepspeed() -> None:
    if importlib.util.find_spec("deepspeed") is not None:
        return
    reason = (
        'deepspeed is not installed (the extra: uv sync --extra deepspeed, "rewardkit[deepspeed]")'
    )
    required = os.environ.get("REWARDKIT_REQUIRE_DEEPSPEED", "").lower() in ("1", "true", "yes")
    if required or os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def test_missing_deepspeed_skips_here_and_fails_in_ci(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("REWARDKIT_REQUIRE_DEEPSPEED", raising=False)
    with pytest.raises(pytest.skip.Exception, match="deepspeed is not installed"):
        require_deepspeed()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="deepspeed is not installed"):
        require_deepspeed()
    monkeypatch.setenv("CI", "false")
    monkeypatch.setenv("REWARDKIT_REQUIRE_DEEPSPEED", "1")
    with pytest.raises(pytest.fail.Exception, match="deepspeed is not installed"):
        require_deepspeed()


@pytest.fixture(scope="module")
def deepspeed_shm_op():
    """Compile DeepSpeed's CPU shared-memory op once, before any timed launch: on first use
    both ranks would otherwise compile (one waiting on the other's lock) inside the run."""
    require_deepspeed()
    code = (  # what deepspeed.comm.torch.build_shm_op does, as its TorchBackend starts
        "import deepspeed\n"
        "from deepspeed.accelerator import get_accelerator\n"
        "b = get_accelerator().create_op_builder('ShareMemCommBuilder')\n"
        "if b is not None and deepspeed.ops.__compatible_ops__.get(b.NAME, False):\n"
        "    b.load()\n"
    )
    communicate([sys.executable, "-c", code], launch_env(), BUILD_TIMEOUT)


def test_deepspeed_zero2_two_cpu_processes(tmp_path, deepspeed_shm_op):
    # accelerate's DeepSpeed launcher on a CPU: 2 real DeepSpeed ranks, although accelerate
    # itself reports 1 process (docs/training.md); ACCELERATE_USE_CPU would drop DeepSpeed.
    launch = "-m accelerate.commands.launch --num_processes 2 --gradient_accumulation_steps 4"
    port = ["--main_process_port", str(free_port()), "--config_file", str(ZERO2)]
    cmd = [sys.executable, *launch.split(), *port, str(WORKER), str(tmp_path)]
    run(cmd, launch_env(), tmp_path)
    ranks = load_ranks(tmp_path)
    for r in ranks:
        assert r["distributed_type"] == "DistributedType.DEEPSPEED", r["distributed_type"]
        assert r["engine"] == "DeepSpeedEngine"
        assert r["zero_stage"] == 2
        assert r["engine_gradient_accumulation_steps"] == 1, "DeepSpeed would rescale the loss"
    check_two_ranks_trained_together(ranks, tmp_path)
