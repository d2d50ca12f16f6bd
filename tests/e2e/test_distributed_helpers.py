"""rewardkit.trainer.distributed in one process (no process group): the launcher's
environment decides rank and world size, and every reduction is the identity."""

import pytest

from rewardkit.trainer import distributed as dist


def test_rank_and_world_come_from_the_launcher_before_the_group_exists(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert (dist.rank(), dist.world(), dist.is_main()) == (0, 1, True)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert (dist.rank(), dist.world(), dist.is_main()) == (1, 2, False)


def test_a_malformed_launcher_variable_is_named(monkeypatch):
    monkeypatch.setenv("RANK", "one")
    with pytest.raises(ValueError, match="environment variable RANK must be an integer, got 'one'"):
        dist.rank()
    monkeypatch.setenv("WORLD_SIZE", "2.5")
    with pytest.raises(ValueError, match="WORLD_SIZE must be an integer, got '2.5'"):
        dist.world()


def test_reductions_without_a_group_are_the_identity():
    # one process: the sum, max and mean over processes are the process's own values
    assert dist.sum_over_processes(3.5) == 3.5
    assert dist.max_over_processes(7) == 7
    assert dist.mean_over_processes({"a": 1.0, "b": -2.0}) == {"a": 1.0, "b": -2.0}
    dist.barrier()  # a no-op, not an error
