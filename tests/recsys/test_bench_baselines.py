"""The pure pieces of bench/recsys_ml100k.py: most-popular on a hand-made dataset (metrics
worked out by hand), the SASRec rankings reader, the split check and the ours reader.
No RecBole here: the bench runs it in its own environment."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

from rewardkit_recsys.movielens import leave_one_out

BENCH = Path(__file__).resolve().parents[2] / "bench" / "recsys_ml100k.py"
_spec = importlib.util.spec_from_file_location("recsys_ml100k_bench", BENCH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

# Three users, oldest item first; the last item is the test target, the one before it the
# validation target, the rest are training interactions.
SEQS = {
    "u1": ["1", "2", "3", "4", "10"],  # train 1 2 3 | valid 4 | test 10
    "u2": ["2", "3", "1", "11"],  # train 2 3   | valid 1 | test 11
    "u3": ["3", "2", "1"],  # train 3     | valid 2 | test 1
}
CATALOGUE = ["1", "2", "3", "4", "5", "6", "10", "11", "12"]


def test_popularity_counts_training_interactions_only():
    counts = bench.train_popularity(SEQS)
    # "3": u1, u2, u3 -> 3; "2": u1, u2 -> 2; "1": u1 only (u2's "1" is validation, u3's test)
    assert counts == {"3": 3, "2": 2, "1": 1}
    assert counts["4"] == 0 and counts["10"] == 0  # a validation and a test item


def test_popularity_order_breaks_ties_by_numeric_id():
    order = bench.popularity_order(bench.train_popularity(SEQS), CATALOGUE)
    # counts 3 > 2 > 1, then the zero-count items by numeric id: 4 < 5 < 6 < 10 < 11 < 12
    # (a string sort would put "10" before "4")
    assert order == ["3", "2", "1", "4", "5", "6", "10", "11", "12"]


def test_most_popular_rankings_and_metrics_by_hand():
    test = leave_one_out(SEQS).test
    assert [(ex.user, ex.target) for ex in test] == [("u1", "10"), ("u2", "11"), ("u3", "1")]
    order = bench.popularity_order(bench.train_popularity(SEQS), CATALOGUE)
    seen = [set(SEQS[ex.user][:-1]) for ex in test]

    kept = bench.most_popular_rankings(order, seen, k=5, exclude_seen=False)
    assert kept == [["3", "2", "1", "4", "5"]] * 3
    m = bench.score_rankings({ex.user: r for ex, r in zip(test, kept)}, test, ks=(1, 3, 5))
    # only u3 hits, at rank 3: recall@3 = recall@5 = 1/3, NDCG = (1/log2(4))/3 = 0.5/3
    assert m["recall@1"] == 0.0 and m["ndcg@1"] == 0.0
    assert m["recall@3"] == pytest.approx(1 / 3) and m["recall@5"] == pytest.approx(1 / 3)
    assert m["ndcg@3"] == pytest.approx(0.5 / 3) and m["ndcg@5"] == pytest.approx(0.5 / 3)

    masked = bench.most_popular_rankings(order, seen, k=5, exclude_seen=True)
    # u1 saw 1 2 3 4; u2 saw 2 3 1; u3 saw 3 2
    assert masked == [
        ["5", "6", "10", "11", "12"],  # target 10 at rank 3
        ["4", "5", "6", "10", "11"],  # target 11 at rank 5
        ["1", "4", "5", "6", "10"],  # target 1 at rank 1
    ]
    m = bench.score_rankings({ex.user: r for ex, r in zip(test, masked)}, test, ks=(1, 3, 5))
    # recall@1 = 1/3 (u3), recall@3 = 2/3 (u1, u3), recall@5 = 3/3
    # ndcg@1 = 1/3; ndcg@3 = (1/log2(4) + 1)/3 = 0.5; ndcg@5 = (0.5 + 1/log2(6) + 1)/3
    assert m["recall@1"] == pytest.approx(1 / 3)
    assert m["recall@3"] == pytest.approx(2 / 3)
    assert m["recall@5"] == pytest.approx(1.0)
    assert m["ndcg@1"] == pytest.approx(1 / 3)
    assert m["ndcg@3"] == pytest.approx(0.5)
    assert m["ndcg@5"] == pytest.approx((1.5 + 1 / math.log2(6)) / 3)
    assert m["ndcg@5"] == pytest.approx(0.628951, abs=1e-6)


def test_most_popular_bad_input():
    with pytest.raises(ValueError, match="has 2 interactions"):
        bench.train_popularity({"u": ["1", "2"]})
    with pytest.raises(ValueError, match="missing from the catalogue"):
        bench.popularity_order(bench.train_popularity(SEQS), ["1", "2"])
    with pytest.raises(ValueError, match="k must be >= 1"):
        bench.most_popular_rankings(["1"], [set()], k=0, exclude_seen=False)
    test = leave_one_out(SEQS).test
    with pytest.raises(ValueError, match="no ranking for 1 test users"):
        bench.score_rankings({"u1": ["1"], "u2": ["2"]}, test)


def _entry(target="1", top=None, masked=None, history=("2", "3")):
    return {
        "target": target,
        "history": list(history),
        "top": top if top is not None else ["1", "2", "3"],
        "top_history_masked": masked if masked is not None else ["1", "4", "5"],
    }


def _write(tmp_path, data) -> Path:
    path = tmp_path / "rankings.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_read_rankings_accepts_a_valid_file(tmp_path):
    path = _write(tmp_path, {"users": {"7": _entry()}, "recbole_test_metrics": {}})
    data = bench.read_rankings(path, k=3)
    assert data["users"]["7"]["top"] == ["1", "2", "3"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ({"rankings": {}}, "'users' object"),
        ({"users": []}, "'users' object"),
        ({"users": {}}, "'users' is empty"),
        ({"users": {"7": ["1", "2", "3"]}}, "user '7': expected an object"),
        ({"users": {"7": _entry(target=1)}}, "'target' must be an item id string"),
        ({"users": {"7": _entry(history=(2,))}}, "'history' must be a list"),
        ({"users": {"7": _entry(top=["1", "2"])}}, "'top' has 2 items, expected 3"),
        ({"users": {"7": _entry(top=["1", "1", "2"])}}, "'top' lists an item more than once"),
        ({"users": {"7": _entry(top=["1", 2, "3"])}}, "'top' must be a list of item id"),
        (
            {"users": {"7": {k: v for k, v in _entry().items() if k != "top_history_masked"}}},
            "'top_history_masked' must be a list",
        ),
    ],
)
def test_read_rankings_rejects_bad_input(tmp_path, content, message):
    path = _write(tmp_path, content)
    with pytest.raises(ValueError, match=message):
        bench.read_rankings(path, k=3)


def test_read_rankings_missing_file(tmp_path):
    with pytest.raises(ValueError, match="rankings file not found"):
        bench.read_rankings(tmp_path / "nope.json", k=10)


def test_split_agreement_counts_and_explains_differences():
    test = leave_one_out(SEQS).test  # targets u1 10, u2 11, u3 1
    users = {
        "u1": {"target": "10", "history": ["1", "2", "3", "4"]},  # same target and history
        "u2": {"target": "1", "history": ["2", "3", "11"]},  # swapped last two
        "u9": {"target": "5", "history": []},  # not one of ours
    }
    # RecBole's view of a timestamp: (t - min)/(max - min) over the file, then float32.
    # Span 874724710 .. 893286638 (ML-100K's) = 18,561,928 s; float32's step in [0.5, 1) is
    # 2**-24, i.e. 18561928 / 2**24 = 1.1 s: the test item (…248) and the one before it
    # (…247) tie, the two at …130 and …100 do not (30 s apart).
    times = {
        ("u1", "1"): 874724710.0,
        ("u1", "10"): 893286638.0,
        ("u2", "11"): 889181248.0,
        ("u2", "1"): 889181247.0,
        ("u3", "1"): 889181130.0,
        ("u3", "2"): 889181100.0,
    }
    agree = bench.split_agreement(test, users, times)
    assert agree["users"] == 3
    assert agree["same_test_target"] == 1 and agree["same_test_history"] == 1
    assert agree["missing_in_recbole"] == ["u3"] and agree["extra_in_recbole"] == ["u9"]
    (d,) = agree["target_differs"]
    assert (d["user"], d["ours"], d["recbole"]) == ("u2", "11", "1")
    assert d["float32_tie"] is True
    # u3 swapped, 30 s apart: no tie
    users["u3"] = {"target": "2", "history": []}
    d3 = bench.split_agreement(test, users, times)["target_differs"][1]
    assert (d3["user"], d3["float32_tie"]) == ("u3", False)


def test_read_ours_and_rows(tmp_path):
    good = {
        "after_alignment": {"direct/recall@10": 0.1, "direct/ndcg@10": 0.05},
        "after_srpo": {"direct/recall@10": 0.2, "reasoning/ndcg@10": 0.07, "srpo/steps": 20},
        "eval_users": 943,
        "reasoning_eval_users": 100,
    }
    path = _write(tmp_path, good)
    rows = bench.ours_rows(bench.read_ours(path))
    assert rows == {
        943: {
            "ours direct (after alignment)": {"recall@10": 0.1, "ndcg@10": 0.05},
            "ours direct (after SRPO)": {"recall@10": 0.2},
        },
        100: {"ours reasoning (after SRPO)": {"ndcg@10": 0.07}},
    }
    # without reasoning_eval_users every mode counts eval_users; after_srpo may be absent
    partial = {k: v for k, v in good.items() if k not in ("reasoning_eval_users", "after_srpo")}
    assert set(bench.ours_rows(bench.read_ours(_write(tmp_path, partial)))) == {943}
    for bad, message in [
        ({**good, "after_srpo": {}}, "'after_srpo' must be a non-empty object"),
        ({k: v for k, v in good.items() if k != "after_alignment"}, "'after_alignment'"),
        ({**good, "eval_users": 0}, "'eval_users' must be a positive int"),
        ({**good, "eval_users": True}, "'eval_users' must be a positive int"),
        ({**good, "reasoning_eval_users": "100"}, "'reasoning_eval_users' must be a positive"),
        ([1, 2], "expected a JSON object"),
    ]:
        with pytest.raises(ValueError, match=message):
            bench.read_ours(_write(tmp_path, bad))
    with pytest.raises(ValueError, match="results file not found"):
        bench.read_ours(tmp_path / "missing.json")


def test_epoch_summary_parses_recbole_log_lines():
    log = [
        "26 Nov 14:40    INFO  epoch 0 training [time: 220.49s, train loss: 2431.2921]",
        "26 Nov 14:40    INFO  epoch 0 evaluating [time: 0.41s, valid_score: 0.053600]",
        "recall@1 : 0.0117    ndcg@10 : 0.0536",
        "26 Nov 14:44    INFO  epoch 1 training [time: 200.00s, train loss: 2300.5000]",
    ]
    assert bench.epoch_summary(log) == [
        {"epoch": 0, "train_seconds": 220.49, "train_loss": 2431.2921, "valid_ndcg@10": 0.0536},
        {"epoch": 1, "train_seconds": 200.0, "train_loss": 2300.5},
    ]
    assert bench.epoch_summary(["no epochs here"]) == []
