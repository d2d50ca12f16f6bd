"""Balanced residual k-means, the collision suffix, the JSON map and the tokenizer extension."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rewardkit.tiny import build_tiny_model
from rewardkit_recsys.kmeans import balanced_assign, balanced_kmeans, residual_kmeans
from rewardkit_recsys.semantic_ids import (
    SemanticIDError,
    SemanticIDs,
    build_semantic_ids,
    codes_to_ids,
    extend_tokenizer,
    id_token,
    split_id,
)


def clustered(n: int, seed: int = 0) -> np.ndarray:
    """n points around 3 unequal blobs, so plain k-means would be unbalanced."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    which = rng.choice(3, size=n, p=[0.7, 0.2, 0.1])
    return centres[which] + rng.normal(size=(n, 2))


@pytest.mark.parametrize(("n", "k"), [(103, 8), (64, 8), (50, 7), (9, 9)])
def test_balanced_kmeans_sizes_within_floor_plus_minus_one(n, k):
    labels, centroids = balanced_kmeans(clustered(n), k, seed=42)
    sizes = np.bincount(labels, minlength=k)
    # e.g. n=103, K=8: ⌊103/8⌋ = 12, and 103 = 8·12 + 7, so seven clusters of 13, one of 12
    assert sizes.min() >= n // k - 1 and sizes.max() <= n // k + 1
    assert sorted(sizes.tolist()) == sorted([n // k + 1] * (n % k) + [n // k] * (k - n % k))
    assert centroids.shape == (k, 2)


def test_balanced_assign_prefers_nearest_then_spills():
    # 4 items, 2 clusters: all four are nearest to cluster 0, so capacity 2 forces a spill.
    # Regrets (d1 − d0): 9, 1, 5, 3 → order items 0, 2, 3, 1; items 0 and 2 take cluster 0.
    d = np.array([[0.0, 9.0], [0.0, 1.0], [0.0, 5.0], [0.0, 3.0]])
    assert balanced_assign(d).tolist() == [0, 1, 0, 1]


def test_residual_codes_subtract_centroids():
    x = clustered(60)
    codes = residual_kmeans(x, levels=2, k=4, seed=42)
    assert codes.shape == (60, 2)
    labels, centroids = balanced_kmeans(x, 4, seed=42)
    assert codes[:, 0].tolist() == labels.tolist()  # level 1 clusters R_0 = x
    level2, _ = balanced_kmeans(x - centroids[labels], 4, seed=43)  # R_1 = x − c(item)
    assert codes[:, 1].tolist() == level2.tolist()
    for level in range(2):
        assert np.bincount(codes[:, level], minlength=4).tolist() == [15, 15, 15, 15]


def test_kmeans_rejects_bad_input():
    with pytest.raises(ValueError, match="cannot fill 8 clusters"):
        balanced_kmeans(np.zeros((5, 2)), 8)
    with pytest.raises(ValueError, match="NaN/inf"):
        balanced_kmeans(np.array([[0.0, np.nan], [1.0, 1.0]]), 1)
    with pytest.raises(ValueError, match="2-D"):
        balanced_kmeans(np.zeros(5), 1)
    with pytest.raises(ValueError, match="levels"):
        residual_kmeans(np.zeros((5, 2)), 0, 2)


def test_collision_suffix_by_rank_in_group():
    codes = np.array([[0, 1], [0, 1], [2, 0], [0, 1], [1, 1]])
    ids = codes_to_ids(codes, ["i0", "i1", "i2", "i3", "i4"], codes_per_level=3)
    assert ids.item_to_id == {
        "i0": "<|a_1|><|b_2|><|c_1|>",
        "i1": "<|a_1|><|b_2|><|c_2|>",
        "i2": "<|a_3|><|b_1|>",
        "i3": "<|a_1|><|b_2|><|c_3|>",
        "i4": "<|a_2|><|b_2|>",
    }
    assert ids.suffix_size == 3
    assert ids.vocabulary()[-3:] == ["<|c_1|>", "<|c_2|>", "<|c_3|>"]
    assert len(ids.vocabulary()) == 2 * 3 + 3


def test_every_item_gets_a_unique_id_and_the_map_round_trips(tmp_path):
    items = [str(i) for i in range(100, 197)]
    ids = build_semantic_ids(clustered(97), items, levels=2, codes_per_level=4)
    assert len(set(ids.item_to_id.values())) == 97 == len(ids.item_to_id)
    for item, sid in ids.item_to_id.items():
        assert len(split_id(sid)) in (2, 3)
        assert ids.item_of(sid) == item
    loaded = SemanticIDs.from_json(ids.to_json(tmp_path / "ids.json"))
    assert loaded.item_to_id == ids.item_to_id and loaded.id_to_item == ids.id_to_item
    assert (loaded.levels, loaded.codes_per_level, loaded.suffix_size) == (2, 4, ids.suffix_size)
    loaded.validate(catalogue=items)
    with pytest.raises(SemanticIDError, match="items without an ID"):
        loaded.validate(catalogue=[*items, "999"])


def _tamper(path, edit):
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_json_is_validated_both_ways(tmp_path):
    ids = codes_to_ids(np.array([[0, 0], [1, 1], [1, 0]]), ["x", "y", "z"], 2)
    path = ids.to_json(tmp_path / "ids.json")
    _tamper(path, lambda d: d["id_to_item"].update({"<|a_2|><|b_2|>": "x"}))
    with pytest.raises(SemanticIDError, match=r"id_to_item\['<\|a_2\|><\|b_2\|>'\] = 'x'"):
        SemanticIDs.from_json(path)
    path = ids.to_json(tmp_path / "ids.json")
    _tamper(path, lambda d: d["item_to_id"].update({"y": "<|a_1|><|b_1|>"}))
    with pytest.raises(SemanticIDError, match="share the ID"):
        SemanticIDs.from_json(path)
    path = ids.to_json(tmp_path / "ids.json")
    _tamper(path, lambda d: d.pop("id_to_item"))
    with pytest.raises(SemanticIDError, match="expected keys"):
        SemanticIDs.from_json(path)


@pytest.mark.parametrize(
    ("item_to_id", "message"),
    [
        ({"x": "<|a_1|><|b_3|>"}, r"must be <\|b_1..2\|>"),  # code out of range
        ({"x": "<|b_1|><|a_1|>"}, r"must be <\|a_1..2\|>"),  # levels out of order
        ({"x": "<|a_1|>"}, "has 1 tokens"),
        ({"x": " <|a_1|><|b_1|>"}, "surrounding spaces"),
        ({"x": "<|a_1|> <|b_1|>"}, "not an ID"),
        ({"x": "<|a_1|>b_1"}, "not an ID"),
        ({"x": "<|a_1|><|b_1|>", "y": "<|a_1|><|b_1|><|c_1|>"}, "prefix of another"),
    ],
)
def test_malformed_maps_are_rejected(item_to_id, message):
    with pytest.raises(SemanticIDError, match=message):
        SemanticIDs(levels=2, codes_per_level=2, suffix_size=1, item_to_id=item_to_id)


def test_split_id_names_stray_text():
    assert split_id(" <|a_1|><|b_22|> ") == ["<|a_1|>", "<|b_22|>"]
    assert id_token(4, 7) == "<|e_7|>"
    for bad in ("", "abc", "<|a_1|>x<|b_1|>", "<|A_1|>"):
        with pytest.raises(SemanticIDError, match="not an ID"):
            split_id(bad)


def test_extend_tokenizer_adds_single_tokens_and_resizes():
    model, tok = build_tiny_model(hidden_size=16, num_heads=2, num_layers=1)
    ids = codes_to_ids(np.array([[0, 1], [0, 1], [1, 0]]), ["x", "y", "z"], 2)
    before = len(tok)
    assert extend_tokenizer(tok, model, ids) == 2 * 2 + 2
    assert len(tok) == before + 6
    assert model.get_input_embeddings().weight.shape[0] == len(tok)
    assert model.get_output_embeddings().weight.shape[0] == len(tok)
    enc = tok(ids.item_to_id["y"], add_special_tokens=False)["input_ids"]
    assert tok.convert_ids_to_tokens(enc) == ["<|a_1|>", "<|b_2|>", "<|c_2|>"]
    # ordinary added tokens: the trainer's decode(skip_special_tokens=True) keeps them
    assert tok.decode(enc + [tok.eos_token_id], skip_special_tokens=True) == ids.item_to_id["y"]
    assert extend_tokenizer(tok, model, ids) == 0  # idempotent
