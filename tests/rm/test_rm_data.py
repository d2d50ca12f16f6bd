"""Preference data: the JSONL loader, bad input, splits by problem, verifier-built sources."""

import json
import logging

import pytest

from rewardkit_rm.data import (
    LoadReport,
    Pair,
    Rating,
    encode,
    load_pairs,
    load_ratings,
    split_rows,
    write_jsonl,
)


def write(tmp_path, rows, name="d.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_pairs_load_and_identical_pairs_are_counted_not_silently_dropped(tmp_path, caplog):
    path = write(
        tmp_path,
        [
            {"prompt": "q1", "chosen": "a", "rejected": "b", "margin": 2},
            {"prompt": [{"role": "user", "content": "q2"}], "chosen": "same", "rejected": "same "},
            "",
            {"prompt": "q3", "chosen": "c", "rejected": "d", "problem_id": "p3", "extra": 1},
        ],
    )
    report = LoadReport()
    with caplog.at_level(logging.WARNING):
        pairs = load_pairs(path, report)
    assert [p.chosen for p in pairs] == ["a", "c"]
    assert (report.rows, report.kept, report.identical) == (3, 2, 1)
    assert report.identical_lines == [f"{path}:2"]
    assert "skipped 1 pairs whose chosen and rejected are identical" in caplog.text
    assert pairs[0].margin == 2.0 and pairs[1].problem_id == "p3" and pairs[1].meta == {"extra": 1}
    assert pairs[0].problem_id.startswith("prompt:")  # no id: the prompt's hash


@pytest.mark.parametrize(
    "row, message",
    [
        ("{not json", r"d\.jsonl:1: not valid JSON"),
        ("[1, 2]", r"d\.jsonl:1: each line must be a JSON object"),
        ({"prompt": "q", "chosen": "a"}, r"d\.jsonl:1: a pair needs \['rejected'\]"),
        ({"prompt": "q", "chosen": 1, "rejected": "b"}, "chosen must be a string"),
        ({"prompt": 3, "chosen": "a", "rejected": "b"}, "prompt must be a string or a list"),
        ({"prompt": "q", "chosen": "a", "rejected": "b", "margin": -1}, "margin must be >= 0"),
        (
            {"prompt": "q", "chosen": "a", "rejected": "b", "margin": "big"},
            "margin must be a number",
        ),
    ],
)
def test_bad_pair_rows_are_errors_naming_the_line(tmp_path, row, message):
    with pytest.raises(ValueError, match=message):
        load_pairs(write(tmp_path, [row]))


def test_ratings_outside_the_declared_scale_name_the_row(tmp_path):
    path = write(
        tmp_path,
        [
            {"prompt": "q", "response": "a", "ratings": {"help": 3, "safe": 4}},
            {"prompt": "q", "response": "b", "ratings": {"help": 5, "safe": 1}},
        ],
    )
    with pytest.raises(
        ValueError, match=r"d\.jsonl:2: rating 'help' = 5.0 is outside .*\[0.0, 4.0\]"
    ):
        load_ratings(path, ["help", "safe"], (0.0, 4.0))
    ok = load_ratings(
        write(tmp_path, [{"prompt": "q", "response": "r", "rating": 2}]), ["score"], (0, 4)
    )
    assert ok[0].ratings == {"score": 2.0}
    with pytest.raises(ValueError, match="no rating for attribute 'safe'"):
        load_ratings(
            write(tmp_path, [{"prompt": "q", "response": "r", "rating": 2}]),
            ["help", "safe"],
            (0, 4),
        )
    with pytest.raises(ValueError, match="rating 'help' must be a number"):
        load_ratings(
            write(tmp_path, [{"prompt": "q", "response": "r", "ratings": {"help": True}}]),
            ["help"],
            (0, 4),
        )


def test_splits_are_by_problem_never_by_pair():
    pairs = [
        Pair(f"q{i % 40}", f"good {i}", f"bad {i}", problem_id=f"p{i % 40}") for i in range(400)
    ]
    split = split_rows(pairs, test_fraction=0.25)
    train = {p.problem_id for p in split["train"]}
    test = {p.problem_id for p in split["test"]}
    assert train and test and not train & test and len(train | test) == 40
    assert split_rows(pairs, 0.25) == split  # stable
    # a row's own split wins; a problem with rows on both sides is an error
    forced = [Pair("q", "a", "b", problem_id="x", split="test")]
    assert split_rows(forced, 0.0)["test"] == forced
    with pytest.raises(ValueError, match="has rows in both splits"):
        split_rows([*forced, Pair("q", "c", "d", problem_id="x", split="train")], 0.0)
    ratings = [Rating("q", "r", {"s": 1.0}, problem_id="x")]
    assert split_rows(ratings, 1.0)["test"] == ratings


def test_write_then_load_round_trip(tmp_path):
    pairs = [
        Pair(
            [{"role": "user", "content": "q"}], "a", "b", problem_id="p", source="s", meta={"k": 1}
        ),
        Pair("t", "c", "d", margin=1.5, strength=0.2, chosen_level="good"),
    ]
    write_jsonl(pairs, tmp_path / "out.jsonl")
    assert load_pairs(tmp_path / "out.jsonl") == pairs


def test_encode_keeps_the_end_and_counts_truncation():
    from rewardkit.tiny import build_tokenizer

    tok = build_tokenizer()
    ids, prompt_last, cut = encode(tok, "abc", "defg", max_length=100)
    assert tok.decode(ids) == "abcdefg" and prompt_last == 2 and not cut
    ids, prompt_last, cut = encode(tok, "abc", "defg", max_length=5)
    assert tok.decode(ids) == "cdefg" and prompt_last == 0 and cut
    chat = [{"role": "user", "content": "hi"}]
    ids, prompt_last, _ = encode(tok, chat, "yo", 100)
    assert tok.decode(ids[: prompt_last + 1]) == "user: hi\nassistant: "
    assert tok.decode(ids).startswith("user: hi\nassistant: yo")


# -- sources ----------------------------------------------------------------------------------


def test_math_pairs_are_verified_right_and_wrong():
    import reasoning_gym

    from rewardkit_math.extract import extract_answer
    from rewardkit_rm.sources.math import math_pairs, worked

    text, value = worked("15 - 43 - 75")
    assert text == "15 - 43 = -28\n-28 - 75 = -103\nThe answer is \\boxed{-103}." and value == -103
    slipped, wrong = worked("15 - 43 - 75", slip_step=0, slip=-1)
    assert slipped.startswith("15 - 43 = -29\n-29 - 75 = -104") and wrong == -104
    pairs, report = math_pairs(size=40, seed=3)
    assert pairs and report.pairs == len(pairs) and report.problems + report.repeated == 40
    score = reasoning_gym.get_score_answer_fn("chain_sum")
    for p in pairs:
        expression = p.problem_id.split(":", 1)[1]
        entry = {"answer": str(worked(expression)[1])}
        assert score(extract_answer(p.chosen).answer, entry) == 1.0
        assert score(extract_answer(p.rejected).answer, entry) < 1.0
    assert split_rows(pairs, 0.3)  # problem ids are consistent


def test_tools_pairs_rejected_fail_bfcl_acceptance_and_chosen_pass():
    from rewardkit_rm.sources.tools import tools_pairs
    from rewardkit_tools.bfcl import load_bfcl
    from rewardkit_tools.bfcl_scoring import judge

    pairs, report = tools_pairs(limit=150, seed=1)
    assert report.pairs == len(pairs) > 150
    rows = {r["id"]: r for r in load_bfcl(list({p.meta["category"] for p in pairs}), "compact")}
    kinds = set()
    for p in pairs:
        row = rows[p.meta["bfcl_id"]]
        assert judge(row, p.chosen)[1] is True
        assert judge(row, p.rejected)[1] is False
        kinds.add(p.meta["kind"])
    assert {"wrong_name", "drop_param", "wrong_value", "extra_param", "no_call"} <= kinds


def test_tools_perturbation_still_accepted_is_dropped_and_counted(monkeypatch):
    from rewardkit_rm.sources import tools

    monkeypatch.setattr(
        tools, "perturbations", lambda row, rng, pools: [("same", row["ground_truth"])]
    )
    pairs, report = tools.tools_pairs(categories=["simple_python"], limit=20)
    assert pairs == [] and report.still_accepted == report.perturbations == 20


@pytest.mark.slow
@pytest.mark.docker
def test_code_pairs_rejected_fail_in_the_sandbox_and_chosen_pass():
    from rewardkit_code.sandbox import make_sandbox, parse_tests
    from rewardkit_rm.sources.code import CodeProblem, code_pairs, humaneval_problems

    problems = humaneval_problems(limit=4)
    broken = CodeProblem(
        "broken",
        [{"role": "user", "content": "f"}],
        "def f(x):\n    return 1\n",
        "f",
        [{"type": "assert", "code": "assert f(1) == 2"}],
    )
    pairs, report = code_pairs([*problems, broken], "code.humaneval", max_rejected=3)
    assert report.canonical_failed == ["broken"] and report.pairs == len(pairs) > 4
    assert {p.problem_id for p in pairs} == {p.problem_id for p in problems}
    by_id = {p.problem_id: p for p in problems}
    with make_sandbox("docker", pool_size=1, timeout=3.0) as box:
        for pair in pairs:
            tests = parse_tests(by_id[pair.problem_id].tests)
            chosen = pair.chosen.removeprefix("```python\n").removesuffix("```")
            rejected = pair.rejected.removeprefix("```python\n").removesuffix("```")
            assert all(o.passed for o in box.run(chosen, tests))
            assert not all(o.passed for o in box.run(rejected, tests))
            assert '"""' not in chosen  # the docstring is the prompt's, not the answer's
            assert chosen.startswith(rejected[:8])  # written the same way
