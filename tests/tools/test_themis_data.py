"""Generated calculator / calendar preference pairs with gold tool traces."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from rewardkit_tools.themis.calculator import evaluate
from rewardkit_tools.themis.data import PreferencePair, generate_pairs


def test_pairs_are_right_vs_subtly_wrong_with_gold_traces():
    pairs = generate_pairs(60, seed=1)
    assert {p.kind for p in pairs} == {"calculator", "calendar"}
    assert len({p.question for p in pairs}) == 60
    for p in pairs:
        assert p.chosen != p.rejected
        for trace, answer in ((p.trace_chosen, p.chosen), (p.trace_rejected, p.rejected)):
            (step,) = trace.steps
            assert answer in trace.rationale
        # the gold observation is the right answer, recomputed here independently
        step = p.trace_chosen.steps[0]
        assert step.observation == p.chosen == p.trace_rejected.steps[0].observation
        if p.kind == "calculator":
            expression = re.fullmatch(r"What is (.*)\?", p.question)[1]
            assert str(evaluate(expression)) == p.chosen
            assert 0 < abs(int(p.rejected) - int(p.chosen)) <= 100  # subtly wrong
        elif "days after" in p.question:
            n, start = re.fullmatch(r"What date is (\d+) days after (.*)\?", p.question).groups()
            right = dt.date.fromisoformat(start) + dt.timedelta(days=int(n))
            assert p.chosen == right.isoformat()
            wrong = dt.date.fromisoformat(p.rejected)
            assert abs((wrong - right).days) == 1


def test_pairs_are_deterministic_and_serialisable():
    a, b = generate_pairs(10, seed=7), generate_pairs(10, seed=7)
    assert [p.to_dict() for p in a] == [p.to_dict() for p in b]
    assert generate_pairs(10, seed=8)[0].to_dict() != a[0].to_dict()
    assert all(PreferencePair.from_dict(p.to_dict()) == p for p in a)
    only_calendar = generate_pairs(5, kinds=("calendar",))
    assert {p.kind for p in only_calendar} == {"calendar"}
    with pytest.raises(ValueError, match="kinds"):
        generate_pairs(3, kinds=("search",))
