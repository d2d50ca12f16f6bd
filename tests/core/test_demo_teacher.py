"""The demo's flawed teacher: which answers forget the carry, and bad input."""

import pytest

from rewardkit.demo import flawed_teacher_pairs, has_units_carry


def test_units_carry_detection():
    assert has_units_carry("37+45=")  # 7 + 5 = 12
    assert has_units_carry("15+95=")  # 5 + 5 = 10: the boundary carries
    assert not has_units_carry("14+95=")  # 4 + 5 = 9
    assert not has_units_carry("90+90=")  # the tens carry is not the units carry


def test_teacher_forgets_the_units_carry_on_three_of_four_answers():
    rows = [
        {"prompt": "37+45=", "answer": "82"},
        {"prompt": "12+34=", "answer": "46"},
        {"prompt": "95+15=", "answer": "110"},
    ]
    pairs = flawed_teacher_pairs(rows)
    # 37+45: without the units carry the tens column is 3+4 = 7 and the units 2 → 72
    assert pairs[:4] == [("37+45=", "72")] * 3 + [("37+45=", "82")]
    assert pairs[4:8] == [("12+34=", "46")] * 4  # no carry: always right
    # 95+15 = 110; forgetting the units carry gives 9+1 = 10 tens, 0 units → 100
    assert pairs[8:] == [("95+15=", "100")] * 3 + [("95+15=", "110")]


def test_teacher_share_is_configurable_and_checked():
    rows = [{"prompt": "37+45=", "answer": "82"}]
    assert flawed_teacher_pairs(rows, answers=2, forgets=0) == [("37+45=", "82")] * 2
    assert flawed_teacher_pairs(rows, answers=2, forgets=2) == [("37+45=", "72")] * 2
    with pytest.raises(ValueError, match="forgets must be in"):
        flawed_teacher_pairs(rows, answers=4, forgets=5)
    with pytest.raises(ValueError, match="addition only"):
        flawed_teacher_pairs([{"prompt": "37*45=", "answer": "1665"}])
