"""`rewardkit-rm eval`: the metrics by hand, bootstrap by problem, and the CLI end to end."""

import json
import math

import numpy as np
import pytest
import torch

from rewardkit_rm.cli import main
from rewardkit_rm.data import Pair, write_jsonl
from rewardkit_rm.evaluate import (
    best_of_4_groups,
    bootstrap,
    evaluate_pairs,
    kind_table,
    length_best_of_4,
    length_wins,
    summarize,
    table,
)
from rewardkit_rm.scoring import head_outputs
from rewardkit_rm.train import train


def test_summary_by_hand():
    pairs = [
        Pair("a", "long chosen", "short", problem_id="A"),  # rejected shorter
        Pair("b", "c", "rejected!", problem_id="B"),  # rejected longer
        Pair("c", "same", "size", problem_id="C"),  # equal length
        Pair("d", "xx", "yyyy", problem_id="D"),  # rejected longer
    ]
    prefs = [1.0, -2.0, 0.0, 0.5]
    s = summarize(pairs, prefs, [], n_boot=0)
    assert s["accuracy"] == pytest.approx((1 + 0 + 0.5 + 1) / 4)
    # longer wins: 1, 0, ½, 0 -> 0.375; shorter wins: 0, 1, ½, 1 -> 0.625
    assert s["length_baseline"] == 0.625 and s["length_baseline_rule"] == "shorter wins"
    assert s["rejected_longer"] == {"pairs": 2, "accuracy": 0.5}
    assert s["rejected_shorter"] == {"pairs": 1, "accuracy": 1.0}
    assert length_wins(pairs[0], longer=True) == 1.0 and length_wins(pairs[2], True) == 0.5


def test_bootstrap_resamples_problems_not_pairs():
    # problem A: 10 right pairs, problem B: 1 wrong pair. Resampling the 2 problems gives
    # AA (1.0), AB (10/11) or BB (0.0): the CI spans [0, 1]; resampling pairs would not.
    problems = ["A"] * 10 + ["B"]
    acc = [1.0] * 10 + [0.0]
    lo, hi = bootstrap(
        problems, {"a": acc}, lambda v: float((v["a"][0] * v["a"][1]).sum() / v["a"][1].sum()), 400
    )
    assert lo == 0.0 and hi == 1.0
    same = bootstrap(
        ["A", "B", "C"],
        {"a": [1.0, 1.0, 1.0]},
        lambda v: float((v["a"][0] * v["a"][1]).sum() / v["a"][1].sum()),
        100,
    )
    assert same == (1.0, 1.0)
    assert all(math.isnan(x) for x in bootstrap([], {"a": []}, lambda v: 0.0))


def test_best_of_4_groups_need_three_distinct_rejected():
    pairs = [Pair("p", "c", r, problem_id="X") for r in ["r1", "r2", "r3", "r4"]]
    pairs += [Pair("q", "c", r, problem_id="Y") for r in ["r1", "r1", "r2"]]  # 2 distinct
    groups, left_out = best_of_4_groups(pairs)
    assert left_out == 1 and len(groups) == 1 and len(set(groups[0]["rejected"])) == 3


class FixedRM(torch.nn.Module):
    """A reward model whose reward is the response's length (for evaluate_pairs)."""

    spec = type("S", (), {"max_length": 64, "out_dim": 1})()

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward(self, ids, mask, prompt_last=None):
        return {"out": mask.sum(1, keepdim=True).float(), "gate": None}


def test_evaluate_pairs_best_of_4_and_sources_with_a_length_reward():
    from rewardkit.tiny import build_tokenizer
    from rewardkit_rm.losses import build_loss

    pairs = [Pair("p", "chosen!!", r, problem_id="X", source="s1") for r in ["a", "bb", "ccc"]]
    pairs += [Pair("q", "c", r, problem_id="Y", source="s2") for r in ["a", "bb", "dddd"]]
    for pair, kind in zip(pairs[3:], ["short", "long", "long"], strict=True):
        pair.meta = {"kind": kind}
    report = evaluate_pairs(FixedRM(), build_tokenizer(), build_loss("bt"), pairs, n_boot=50)
    # per kind of rejected answer (only pairs that name one): "c" ties "a", loses to the rest
    assert list(report["kinds"]) == ["s2 / long", "s2 / short"]
    assert report["kinds"]["s2 / short"]["accuracy"] == 0.5
    assert report["kinds"]["s2 / long"]["accuracy"] == 0.0
    assert report["kinds"]["s2 / long"]["pairs"] == 2
    assert "| s2 / short | 1 | 1 | 0.500" in kind_table(report)
    s1, s2 = report["sources"]["s1"], report["sources"]["s2"]
    assert s1["accuracy"] == 1.0 and s1["best_of_4"] == 1.0  # the chosen is the longest
    # "c" vs "a" ties (½), loses to "bb" and "dddd"; best-of-4 needs strictly highest
    assert s2["accuracy"] == pytest.approx(0.5 / 3) and s2["best_of_4"] == 0.0
    assert report["overall"]["pairs"] == 6 and report["best_of_4_chance"] == 0.25
    assert np.isclose(report["overall"]["best_of_4"], 0.5)
    # the length baselines: s1 "longer wins" (chosen strictly longest), s2 "shorter wins"
    # (pairs ½, 1, 1) but its best-of-4 ties "c" with "a", so no strict win
    assert s1["length_baseline_rule"] == "longer wins" and s1["length_baseline_best_of_4"] == 1
    assert s2["length_baseline"] == pytest.approx(2.5 / 3)
    assert s2["length_baseline_rule"] == "shorter wins" and s2["length_baseline_best_of_4"] == 0


def test_length_baseline_best_of_4_needs_the_chosen_strictly_longest():
    group = {"chosen": "ccc", "rejected": ["a", "bb", "ddd"]}
    assert length_best_of_4(group, longer=True) == 0.0  # a tie with "ddd" is no win
    assert length_best_of_4({**group, "rejected": ["a", "bb", "d"]}, longer=True) == 1.0
    assert length_best_of_4({"chosen": "c", "rejected": ["aa", "bb", "dd"]}, longer=False) == 1.0


def test_cli_eval_on_the_held_out_split_of_a_trained_model(tmp_path):
    from test_rm_train import config, learnable_pairs

    write_jsonl(learnable_pairs(), tmp_path / "pairs.jsonl")
    final = train(config(tmp_path))
    info = json.loads((tmp_path / "run" / "data.json").read_text())
    argv = ["eval", "--model", str(final), "--data", str(tmp_path / "pairs.jsonl")]
    code = main([*argv, "--bootstrap", "200", "--out", str(tmp_path / "eval.json")])
    report = json.loads((tmp_path / "eval.json").read_text())
    assert code == 0 and report["test_fraction"] == 0.2  # read from the run's config
    assert report["overall"]["problems"] == info["test_problems"]  # only held-out problems
    overall = report["overall"]
    assert overall["accuracy"] > 0.9 and overall["best_of_4"] > 0.5
    assert overall["accuracy_minus_length_ci"][0] > 0  # "yes" vs "no": length cannot tell
    assert "| overall |" in table(report)
    assert (
        report["command"]
        == "rewardkit-rm "
        + " ".join([*argv, "--bootstrap", "200", "--out"])
        + f" {tmp_path / 'eval.json'}"
    )
    assert "kinds" not in report
    # --limit keeps whole problems; an empty split is a clear error (exit 2)
    main([*argv, "--limit", "3", "--bootstrap", "0", "--out", str(tmp_path / "e3.json")])
    assert json.loads((tmp_path / "e3.json").read_text())["overall"]["problems"] == 3
    (tmp_path / "one.jsonl").write_text(
        json.dumps({"prompt": "q", "chosen": "a", "rejected": "b", "split": "train"}) + "\n"
    )
    assert main(["eval", "--model", str(final), "--data", str(tmp_path / "one.jsonl")]) == 2


@pytest.mark.parametrize(
    "loss_name, options, out_dim, gate_dim",
    [("gpm", {"k": 2, "gate": True}, 4, 2), ("ordinal", {"num_ratings": 5}, 5, 0)],
)
def test_evaluate_pairs_uses_each_losss_own_preference(loss_name, options, out_dim, gate_dim):
    """GPM (with its prompt gate) and ordinal models have no r(c) − r(r): eval compares
    with the loss's preference, as training does."""
    from rewardkit_rm.losses import build_loss
    from rewardkit_rm.model import RMSpec, build_reward_model

    spec = RMSpec(loss=loss_name, loss_options=options, out_dim=out_dim, gate_dim=gate_dim)
    rm, tok = build_reward_model("tiny", spec, {"num_layers": 1, "hidden_size": 32,
                                                "num_heads": 2}, seed=1)  # fmt: skip
    if rm.gate is not None:
        torch.nn.init.normal_(rm.gate.weight)
    rm.eval()
    loss = build_loss(loss_name, options)
    pairs = [Pair(f"q{i}", f"answer {i}", r, problem_id=f"p{i}") for i in range(4)
             for r in ("x", "yy", "zzz")]  # fmt: skip
    report = evaluate_pairs(rm, tok, loss, pairs, n_boot=0)
    # the progress bar of `rewardkit-rm eval` changes nothing in the report
    with_bar = evaluate_pairs(rm, tok, loss, pairs, n_boot=0, progress=True)
    assert json.dumps(with_bar, default=str) == json.dumps(report, default=str)  # NaN-safe
    expected = []
    for p in pairs:
        out, gates, _ = head_outputs(rm, tok, [p.prompt, p.prompt], [p.chosen, p.rejected], 512)
        gate = None if gates is None else gates[:1]
        pref = float(loss.preference(out[:1], out[1:], gate=gate)[0])
        expected.append(1.0 if pref > 0 else 0.5 if pref == 0 else 0.0)
    assert report["overall"]["accuracy"] == pytest.approx(np.mean(expected))
    assert report["overall"]["best_of_4_groups"] == 4
