"""The stages around SRPO through the core task hooks: alignment windows, the aligned-policy
cache, stage labels of the evaluations, results.json, and the quick config end to end."""

from __future__ import annotations

import json
import math
from itertools import groupby

import numpy as np
import pytest
import torch

from rewardkit.registry import TASKS
from rewardkit.tiny import build_tiny_model
from rewardkit.trainer.config import GRPOConfig
from rewardkit_recsys.movielens import load_items
from rewardkit_recsys.semantic_ids import build_semantic_ids

TINY = {"hidden_size": 32, "num_layers": 1, "num_heads": 2}


@pytest.fixture(scope="module")
def id_map(tmp_path_factory):
    """An ID map of the real catalogue from random embeddings (no MiniLM: fast)."""
    catalogue = sorted(load_items(), key=int)
    emb = np.random.default_rng(0).normal(size=(len(catalogue), 8))
    ids = build_semantic_ids(emb, catalogue, levels=2, codes_per_level=16)
    return str(ids.to_json(tmp_path_factory.mktemp("ids") / "ml100k.json"))


def small_task(id_map, tmp_path, **options):
    stages = dict(
        sft_epochs=1,
        sft_batch_size=16,
        window_stride=1,
        p_end=0.5,
        item_tasks=False,
        eval_users=3,
        reasoning_eval_users=2,
        reasoning_samples=2,
        reasoning_max_tokens=8,
        aligned_model=str(tmp_path / "aligned"),
    )
    return TASKS.get("recsys.movielens")(id_map=id_map, max_train_rows=30, **stages | options)


def test_windows_take_every_stride_th_position_counted_from_the_last(id_map):
    task = TASKS.get("recsys.movielens")(id_map=id_map)
    train = task._examples["train"]
    per_user = {u: len(list(g)) for u, g in groupby(train, key=lambda ex: ex.user)}
    assert len(per_user) == 943 and sum(per_user.values()) == 97171
    everything, _ = task.supervised_pairs(reasoning=False)
    assert len(everything) == 97171 + 2 * 1682  # seqrec for each position, 2 per item
    assert {p["task"] for p in everything[97171:]} == {"item2id", "id2title"}
    assert len(task.supervised_pairs(reasoning=False, item_tasks=False)[0]) == 97171
    pairs, reasons = task.supervised_pairs(reasoning=True, stride=20)
    seqrec = [p for p in pairs if p["task"] == "seqrec"]
    # user u with n positions gets the positions n-1, n-21, ...: ceil(n / 20) of them
    assert len(seqrec) == sum(math.ceil(n / 20) for n in per_user.values())
    assert len(reasons) == len(seqrec) and all(p["label_prompt"] for p in seqrec)
    # user 196 comes first; its last training position is the first user's last pair
    first = [ex for ex in train if ex.user == "196"]
    expected = [task.ids.item_to_id[ex.target] for ex in first[len(first) - 1 :: -20][::-1]]
    assert [p["completion"] for p in seqrec[: len(expected)]] == expected
    import random

    shifted, _ = task.supervised_pairs(reasoning=False, stride=20, rng=random.Random(1))
    assert [p["completion"] for p in shifted[:3]] != [p["completion"] for p in seqrec[:3]]
    with pytest.raises(ValueError, match="stride must be >= 1"):
        task.supervised_pairs(stride=0)


def test_hooks_align_cache_and_label_the_evaluations(id_map, tmp_path):
    config = GRPOConfig(
        model="tiny",
        tiny_model=TINY,
        task="recsys.movielens",
        output_dir=str(tmp_path / "run"),
        progress=False,
    )
    task = small_task(id_map, tmp_path)
    model, tok = build_tiny_model(**TINY, seed=0)
    before = len(tok)
    model, tok = task.prepare_policy(model, tok, config)
    assert len(tok) == before + len(task.ids.vocabulary())
    assert model.get_input_embeddings().weight.shape[0] == len(tok)
    assert task.alignment["cached"] is False and task.alignment["steps"] >= 1
    assert task.alignment["loss_last"] < task.alignment["loss_first"]
    assert (tmp_path / "aligned" / "recsys_alignment.json").exists()

    first = task.evaluate_policy(model, tok)
    assert set(task.results) == {"after_alignment"}
    for key in (
        "direct/recall@10",
        "direct/ndcg@10",
        "direct/ndcg@1",
        "reasoning/ndcg@10",
        "reasoning/unclosed_fraction",
    ):
        assert 0.0 <= first[key] <= 1.0, key
    assert not any(k.endswith("seconds") for k in first)
    with torch.no_grad():  # what an SRPO step does, as far as the task can tell
        model.get_input_embeddings().weight[0] += 1.0
    task.evaluate_policy(model, tok)
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert set(saved["after_alignment"]) == set(saved["after_srpo"]) == set(first)
    assert saved["eval_users"] == 3 and saved["reasoning_eval_users"] == 2
    for stage in ("after_alignment", "after_srpo"):  # per-user NDCG@10 for paired tests
        for mode, n in (("direct", 3), ("reasoning", 2)):
            values = saved["per_user"][stage][f"{mode}/ndcg@10"]
            assert len(values) == n
            assert sum(values) / n == pytest.approx(saved[stage][f"{mode}/ndcg@10"])
    for stage in ("ids", "alignment", "eval_after_alignment", "srpo", "eval_after_srpo"):
        assert saved["seconds"][stage] >= 0.0, stage

    # a second run with the same settings loads the aligned policy instead of training
    again = small_task(id_map, tmp_path)
    fresh, fresh_tok = build_tiny_model(**TINY, seed=0)
    loaded, loaded_tok = again.prepare_policy(fresh, fresh_tok, config)
    assert again.alignment["cached"] is True and len(loaded_tok) == len(tok)
    reference = small_task(id_map, tmp_path / "other")
    ref_model, _ = reference.prepare_policy(*build_tiny_model(**TINY, seed=0), config)
    for a, b in zip(loaded.parameters(), ref_model.parameters(), strict=True):
        assert torch.equal(a, b)  # the cache holds exactly what alignment produced
    # an SRPO run with another seed shares the aligned policy through alignment_seed
    reseeded = config.model_copy(update={"seed": 5})
    shared = small_task(id_map, tmp_path, alignment_seed=0)
    model5, _ = shared.prepare_policy(*build_tiny_model(**TINY, seed=5), reseeded)
    assert shared.alignment["cached"] is True
    assert all(torch.equal(a, b) for a, b in zip(model5.parameters(), loaded.parameters()))
    from rewardkit.trainer.config import ConfigError

    with pytest.raises(ConfigError, match="align it first with seed=3"):  # none cached for 3
        small_task(id_map, tmp_path, alignment_seed=3).prepare_policy(
            *build_tiny_model(**TINY, seed=5), reseeded
        )
    # other alignment settings: the cache does not apply
    other = small_task(id_map, tmp_path, sft_learning_rate=1e-3)
    other.prepare_policy(*build_tiny_model(**TINY, seed=0), config)
    assert other.alignment["cached"] is False


def test_srpo_rollouts_are_real_items_and_the_reward_counts_none_invalid(id_map, tmp_path):
    """Through the trainer: the task's generation constraint makes every sampled (and
    greedy) completion a catalogue item, so the reward finds no invalid sample."""
    from rewardkit.rewards.lifecycle import RewardContext
    from rewardkit.trainer.trainer import GRPOTrainer

    options = dict(
        id_map=id_map,
        max_train_rows=30,
        sft_epochs=1,
        sft_batch_size=16,
        item_tasks=False,
        reasoning=False,
        aligned_model=str(tmp_path / "aligned"),
    )
    config = GRPOConfig(
        model="tiny",
        tiny_model=TINY,
        task="recsys.movielens",
        task_options=options,
        output_dir=str(tmp_path / "run"),
        progress=False,
        num_generations=16,
        temperature=1.5,
        report_to=["jsonl"],
        group_filter="zero_variance",
        advantage="recsys.bgae",
        prompts_per_step=2,
        max_steps=1,
    )
    trainer = GRPOTrainer(config)
    rows = trainer.train_rows[:4]
    samples = trainer.rollout(rows) + trainer.rollout(rows, greedy=True, generations=1)
    items = rows[0]["item_ids"]
    assert all(s.completion in items and not s.truncated for s in samples)
    assert len({s.completion for s in samples}) > 4  # sampled, not one forced answer
    trainer.scorer(samples[:64], RewardContext(0, "train"))
    stats = trainer.scorer.reward_stats()
    assert stats["reward/recsys.id_match/invalid_fraction"] == 0.0
    assert 0.0 <= stats["reward/recsys.id_match/groups_with_hit"] <= 1.0
    # one step: the per-step shares of hit groups and of groups dynamic sampling dropped
    trainer.scorer.reward_stats()  # (reset the counters)
    metrics = trainer.train_step()
    assert 0.0 <= metrics["reward/recsys.id_match/groups_with_hit"] <= 1.0
    assert metrics["reward/recsys.id_match/invalid_fraction"] == 0.0
    assert 0.0 <= metrics["group_filter/dropped_fraction"] <= 1.0
    short = config.model_copy(update={"max_completion_length": 2})
    with pytest.raises(ValueError, match="max_completion_length"):
        GRPOTrainer(short)


def test_lora_is_refused(id_map, tmp_path):
    config = GRPOConfig(model="tiny", tiny_model=TINY, lora_r=4, task="recsys.movielens")
    task = small_task(id_map, tmp_path)
    with pytest.raises(ValueError, match="LoRA"):
        task.prepare_policy(*build_tiny_model(**TINY, seed=0), config)


@pytest.mark.slow
def test_quick_config_end_to_end_through_the_core_cli(id_map, tmp_path, capsys):
    from pathlib import Path

    from rewardkit.cli import main

    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--config",
            str(root / "configs/recsys/ml100k_quick.yaml"),
            "--set",
            f"task_options.id_map={id_map}",
            "--set",
            f"output_dir={out}",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "direct/ndcg@10" in printed and "after_srpo" in printed  # the metrics table
    results = json.loads((out / "results.json").read_text())
    assert {"after_alignment", "after_srpo", "seconds", "eval_users"} <= set(results)
    assert results["eval_users"] == 8 and "direct/ndcg@10" in results["after_srpo"]
    task_eval = json.loads((out / "task_eval.json").read_text())
    assert task_eval["before"] == results["after_alignment"]
    assert task_eval["after"] == results["after_srpo"]
    history = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history if "task/direct/ndcg@10" in h] == [0, 2]


def test_eval_split_valid_scores_the_second_to_last_items(id_map, tmp_path, monkeypatch):
    """eval_split="valid" ranks against each user's validation item (second to last), not the
    test item; anything but test/valid is refused by name."""
    import rewardkit_recsys.stages as stages
    from rewardkit.trainer.config import ConfigError

    with pytest.raises(ConfigError, match="eval_split"):
        small_task(id_map, tmp_path, eval_split="train")
    config = GRPOConfig(
        model="tiny", tiny_model=TINY, task="recsys.movielens", output_dir=str(tmp_path / "run")
    )
    task = small_task(id_map, tmp_path, eval_split="valid", reasoning_eval_users=0)
    model, tok = task.prepare_policy(*build_tiny_model(**TINY, seed=0), config)
    seen = []
    real = stages.recall_ndcg
    monkeypatch.setattr(stages, "recall_ndcg", lambda r, t: seen.append(list(t)) or real(r, t))
    task.evaluate_policy(model, tok)
    valid = [r["target"] for r in task.rows("valid")[:3]]
    test = [r["target"] for r in task.rows("test")[:3]]
    assert seen == [valid] and valid != test  # the 3 first users, validation targets
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["options"]["stages"]["eval_split"] == "valid"


def test_direct_evaluation_searches_num_beams_and_keeps_top_k(id_map, tmp_path, monkeypatch):
    """Direct mode asks the constrained search for `num_beams` beams and `top_k` items; the
    rankings it scores are what the search returned."""
    import rewardkit_recsys.inference as inference

    config = GRPOConfig(
        model="tiny", tiny_model=TINY, task="recsys.movielens", output_dir=str(tmp_path / "run")
    )
    task = small_task(id_map, tmp_path, num_beams=12, top_k=5, reasoning_eval_users=0)
    model, tok = task.prepare_policy(*build_tiny_model(**TINY, seed=0), config)
    calls = []
    real = inference.direct_recommend

    def spy(*args, **kwargs):
        rankings = real(*args, **kwargs)
        calls.append((kwargs["num_beams"], kwargs["top_k"], rankings))
        return rankings

    monkeypatch.setattr(inference, "direct_recommend", spy)
    metrics = task.evaluate_policy(model, tok)
    assert [(beams, k) for beams, k, _ in calls] == [(12, 5)]
    rankings = calls[0][2]
    assert len(rankings) == 3 and all(len(r) == 5 for r in rankings)
    targets = [r["target"] for r in task.rows("test")[:3]]
    hits = sum(t in r for t, r in zip(targets, rankings, strict=True))
    assert metrics["direct/recall@5"] == pytest.approx(hits / 3)


def test_exclude_seen_leaves_each_users_earlier_items_out(id_map, tmp_path, monkeypatch):
    import rewardkit_recsys.inference as inference

    config = GRPOConfig(
        model="tiny", tiny_model=TINY, task="recsys.movielens", output_dir=str(tmp_path / "run")
    )
    task = small_task(id_map, tmp_path, exclude_seen=True, reasoning_eval_users=0)
    model, tok = task.prepare_policy(*build_tiny_model(**TINY, seed=0), config)
    calls = []
    real = inference.direct_recommend
    monkeypatch.setattr(
        inference,
        "direct_recommend",
        lambda *a, **kw: calls.append((kw["exclude"], real(*a, **kw))) or calls[-1][1],
    )
    task.evaluate_policy(model, tok)
    rows = task.rows("test")[:3]
    excluded, rankings = calls[0]
    assert excluded == [task.split.seen_before(r["user"], "test") for r in rows]
    assert all(len(e) >= len(r["history"]) for e, r in zip(excluded, rows, strict=True))
    assert all(not set(rk) & e for rk, e in zip(rankings, excluded, strict=True))
