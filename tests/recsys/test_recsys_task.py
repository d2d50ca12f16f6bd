"""The `recsys.movielens` task over a prebuilt ID map, and the item embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from rewardkit.registry import TASKS
from rewardkit_recsys.embeddings import (
    collaborative_embeddings,
    combine,
    minilm_path,
    text_embeddings,
)
from rewardkit_recsys.movielens import load_items
from rewardkit_recsys.semantic_ids import SemanticIDError, build_semantic_ids


@pytest.fixture(scope="module")
def id_map(tmp_path_factory):
    """An ID map of the real catalogue from random embeddings (fast; the task's own build
    embeds titles with MiniLM, which is exercised separately below)."""
    catalogue = sorted(load_items(), key=int)
    emb = np.random.default_rng(0).normal(size=(len(catalogue), 8))
    ids = build_semantic_ids(emb, catalogue, levels=2, codes_per_level=16)
    return ids, ids.to_json(tmp_path_factory.mktemp("ids") / "ml100k.json")


def test_rows_of_each_split(id_map):
    ids, path = id_map
    task = TASKS.get("recsys.movielens")(id_map=str(path), max_train_rows=50)
    assert len(task.rows("train")) == 50 and len(task.rows("test")) == 943
    row = task.rows("test")[0]
    assert row["user"] == "196" and row["target"] == "110" and len(row["history"]) == 20
    assert row["target_id"] == ids.item_to_id["110"] and row["mode"] == "direct"
    assert row["prompt"] == "".join(ids.item_to_id[i] for i in row["history"]) + ">"
    # the catalogue the reward checks IDs against: one shared set of every item's ID
    assert row["item_ids"] == set(ids.id_to_item) and len(row["item_ids"]) == 1682
    assert task.rows("train")[0]["item_ids"] is row["item_ids"]
    assert task.rows("valid")[0]["target"] != row["target"]
    with pytest.raises(ValueError, match="not 'dev'"):
        task.rows("dev")
    reasoning = TASKS.get("recsys.movielens")(id_map=str(path), mode="reasoning", max_train_rows=5)
    assert reasoning.rows("train")[0]["prompt"].endswith("?")
    alignment, reasons = reasoning.supervised_pairs()
    # 5 seqrec pairs + 1682 item2id + 1682 id2title; one reasoning pair per example
    assert len(alignment) == 5 + 2 * 1682 and len(reasons) == 5
    assert {p["task"] for p in alignment} == {"seqrec", "item2id", "id2title"}


def test_task_rejects_bad_options_and_foreign_maps(id_map, tmp_path):
    ids, path = id_map
    cls = TASKS.get("recsys.movielens")
    with pytest.raises(ValueError, match="mode must be direct or reasoning"):
        cls(id_map=str(path), mode="chat")
    with pytest.raises(ValueError, match="max_train_rows"):
        cls(id_map=str(path), max_train_rows=0)
    small = build_semantic_ids(np.eye(4), ["1", "2", "3", "4"], levels=1, codes_per_level=2)
    with pytest.raises(SemanticIDError, match="does not match the catalogue"):
        cls(id_map=str(small.to_json(tmp_path / "small.json")))
    with pytest.raises(ValueError, match="embedding must be"):
        from rewardkit_recsys.tasks import build_item_ids

        build_item_ids({}, None, 2, 2, embedding="image")


@pytest.mark.slow  # importing sentence-transformers alone takes seconds to minutes on a busy CPU
def test_minilm_is_shipped_and_embeds_offline():
    assert (minilm_path() / "model.safetensors").exists()
    emb = text_embeddings(
        [
            "Toy Story (1995). Genres: Animation.",
            "Toy Story 2 (1999). Genres: Animation.",
            "Heat (1995). Genres: Crime, Thriller.",
        ]
    )
    assert emb.shape == (3, 384)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert emb[0] @ emb[1] > emb[0] @ emb[2]  # the two Toy Story films are closer


def test_collaborative_factors_and_combine():
    # users u1, u2 both took items a, b; u3 took c: a and b get identical factors
    pairs = [("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "b"), ("u3", "c")]
    f = collaborative_embeddings(pairs, ["a", "b", "c", "d"], dim=2)
    assert f.shape == (4, 2)
    assert np.allclose(np.abs(f[0]), np.abs(f[1])) and np.allclose(f[3], 0)
    # matrix [[1,1,0,0],[1,1,0,0],[0,0,1,0]]: singular values 2 (v = (1,1,0,0)/√2) and 1
    # (v = (0,0,1,0)); V·√Σ gives a: (1/√2)·√2 = 1 on factor 1, c: 1·√1 = 1 on factor 2
    assert np.linalg.norm(f[0]) == pytest.approx(1.0) and np.linalg.norm(f[2]) == pytest.approx(1.0)
    both = combine([np.array([[3.0, 4.0]]), np.array([[0.0, 2.0]])], weights=[1.0, 0.5])
    assert both.tolist() == [[0.6, 0.8, 0.0, 0.5]]  # (3,4)/5 and .5·(0,1)
    with pytest.raises(ValueError, match="unknown item 'z'"):
        collaborative_embeddings([("u", "z")], ["a"])
    with pytest.raises(ValueError, match="part 1 has shape"):
        combine([np.zeros((2, 2)), np.zeros((3, 2))])
