"""pass@k (Chen et al. 2021, eq. 1) against hand-computed binomial ratios."""

import pytest

from rewardkit_code.evaluation import mean_pass_at_k, pass_at_k


def test_pass_at_k_values():
    # n=5, c=2, k=1: 1 - C(3,1)/C(5,1) = 1 - 3/5 = 0.4
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4)
    # n=5, c=2, k=2: 1 - C(3,2)/C(5,2) = 1 - 3/10 = 0.7
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)
    # n=10, c=3, k=5: 1 - C(7,5)/C(10,5) = 1 - 21/252 = 0.9166667
    assert pass_at_k(10, 3, 5) == pytest.approx(0.9166667, abs=1e-7)
    # n - c < k: every draw of k contains a correct sample
    assert pass_at_k(5, 4, 2) == 1.0
    assert pass_at_k(5, 0, 5) == 0.0
    assert pass_at_k(200, 1, 1) == pytest.approx(1 / 200)


def test_pass_at_k_rejects_bad_input():
    with pytest.raises(ValueError, match="larger than"):
        pass_at_k(3, 1, 4)
    with pytest.raises(ValueError, match="outside"):
        pass_at_k(3, 5, 1)
    with pytest.raises(ValueError, match="n >= 1"):
        pass_at_k(0, 0, 1)
    with pytest.raises(TypeError):
        pass_at_k(3.0, 1, 1)


def test_mean_pass_at_k():
    # problem a: n=2, c=1 -> pass@1 = 0.5, pass@2 = 1; b: n=2, c=0 -> 0, 0
    table = mean_pass_at_k({"a": [True, False], "b": [False, False]}, ks=[1, 2, 5])
    assert table == {"pass@1": 0.25, "pass@2": 0.5}
    with pytest.raises(ValueError, match="no results"):
        mean_pass_at_k({}, ks=[1])
