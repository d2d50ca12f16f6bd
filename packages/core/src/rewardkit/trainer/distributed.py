"""Process rank, world size and reductions, taken from torch.distributed.

accelerate's own state is not trusted for this: under DeepSpeed on a CPU it reports one
process while DeepSpeed runs several (docs/training.md, "Distributed runs"). torch.distributed
is the truth.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as td


def _on() -> bool:
    return td.is_available() and td.is_initialized()


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {value!r}") from None


def rank() -> int:
    """This process's rank; before the process group exists, the launcher's RANK
    (torchrun, accelerate launch and deepspeed all set it)."""
    return td.get_rank() if _on() else _env_int("RANK", 0)


def world() -> int:
    """The number of processes; before the process group exists, the launcher's WORLD_SIZE."""
    return td.get_world_size() if _on() else _env_int("WORLD_SIZE", 1)


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if _on():
        td.barrier()


def _reduce(values: list[float], op: str) -> list[float]:
    if not _on():
        return values
    t = torch.tensor(values, dtype=torch.float64)
    if td.get_backend() == "nccl":
        t = t.cuda()
    td.all_reduce(t, op=td.ReduceOp.SUM if op == "sum" else td.ReduceOp.MAX)
    return t.cpu().tolist()


def sum_over_processes(value: float) -> float:
    return _reduce([float(value)], "sum")[0]


def max_over_processes(value: int) -> int:
    return int(_reduce([float(value)], "max")[0])


def mean_over_processes(metrics: dict[str, float]) -> dict[str, float]:
    """Mean of each metric over processes (every process must pass the same keys)."""
    if not _on():
        return metrics
    keys = sorted(metrics)
    summed = _reduce([float(metrics[k]) for k in keys], "sum")
    return {k: v / world() for k, v in zip(keys, summed, strict=True)}
