"""RM losses against hand-computed values from the formulas (spec section 1)."""

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardkit_rm.losses import LOSSES, build_loss, rotation_score


def col(*values):
    return torch.tensor(values, dtype=torch.float32)[:, None]


def nls(x):  # −log σ(x), by hand
    return math.log1p(math.exp(-x))


def test_registry_lists_every_loss():
    assert {"bt", "bt_margin", "bt_smooth", "regression", "gpm", "ordinal"} <= set(LOSSES.names())
    with pytest.raises(LookupError, match="unknown rm loss 'btt'.*Did you mean 'bt'"):
        build_loss("btt")
    with pytest.raises(ValueError, match="loss 'bt_smooth'"):
        build_loss("bt_smooth", {"eps": 0.1})


def test_bt():
    # Δ = [1, −1]: L = (log(1+e^−1) + log(1+e^1)) / 2 = (0.313262 + 1.313262) / 2
    loss = build_loss("bt")(col(2.0, 0.5), col(1.0, 1.5), {})
    assert loss.item() == pytest.approx(0.8132616, abs=1e-6)
    assert loss.item() == pytest.approx((nls(1) + nls(-1)) / 2, abs=1e-6)


def test_bt_margin_subtract_and_scale():
    chosen, rejected = col(2.0, 0.5), col(1.0, 1.5)  # Δ = [1, −1]
    sub = build_loss("bt_margin", {"margin_mode": "subtract"})
    # −log σ(1 − 0.5) = 0.474077, −log σ(−1 − 0) = 1.313262
    got = sub(chosen, rejected, {"margin": col(0.5, 0.0)[:, 0]}).item()
    assert got == pytest.approx((0.474077 + 1.313262) / 2, abs=1e-6)
    scale = build_loss("bt_margin")  # default: scale, what HelpSteer2-Preference reports best
    assert scale.margin_mode == "scale"
    # 2 · 0.313262 + 0.5 · 1.313262
    got = scale(chosen, rejected, {"margin": torch.tensor([2.0, 0.5])}).item()
    assert got == pytest.approx((2 * 0.313262 + 0.5 * 1.313262) / 2, abs=1e-6)
    with pytest.raises(ValueError, match="needs a `margin`"):
        scale(chosen, rejected, {})
    with pytest.raises(ValueError, match=">= 0"):
        scale(chosen, rejected, {"margin": torch.tensor([-1.0, 0.5])})
    with pytest.raises(ValueError, match="margin_mode"):
        build_loss("bt_margin", {"margin_mode": "add"})


def test_bt_smooth_and_flipping_is_counted():
    chosen, rejected = col(2.0, 0.0), col(0.0, 0.0)  # Δ = [2, 0]
    smooth = build_loss("bt_smooth")
    assert smooth.epsilon == 0.1
    # Δ=2: 0.9·0.126928 + 0.1·2.126928 = 0.326928; Δ=0: log 2 = 0.693147
    assert smooth(chosen, rejected, {}).item() == pytest.approx((0.326928 + 0.693147) / 2, 1e-5)
    flipping = build_loss("bt_smooth", {"epsilon": 0.1, "flip_below": 0.5})
    # the first pair's ensemble strength 0.2 < 0.5: flipped, Δ = −2: 0.9·2.126928 + 0.1·0.126928
    got = flipping(chosen, rejected, {"strength": torch.tensor([0.2, 0.9])}).item()
    assert got == pytest.approx((1.926928 + 0.693147) / 2, abs=1e-5)
    assert flipping.stats() == {"flipped_pairs": 1.0, "pairs_seen": 2.0}
    with pytest.raises(ValueError, match="needs a `strength`"):
        flipping(chosen, rejected, {})


def test_regression_mse_on_scaled_ratings_and_weighted_reward():
    loss = build_loss(
        "regression", {"attributes": ["a", "b"], "scale": [0, 4], "weights": {"a": 1.0, "b": 2.0}}
    )
    out = torch.tensor([[0.5, 0.5]])
    # targets scaled to [0, 1]: [4, 2] -> [1, 0.5]; MSE = ((0.5−1)² + 0) / 2
    assert loss(out, {"ratings": torch.tensor([[4.0, 2.0]])}).item() == pytest.approx(0.125)
    assert loss.reward(out).item() == pytest.approx(0.5 + 2 * 0.5)
    assert loss.out_dim == 2
    with pytest.raises(ValueError, match="high > low"):
        build_loss("regression", {"scale": [4, 4]})
    with pytest.raises(ValueError, match="unknown attributes"):
        build_loss("regression", {"attributes": ["a"], "weights": {"z": 1.0}})


def test_gpm_hand_value():
    gpm = build_loss("gpm", {"k": 1})
    assert gpm.out_dim == 2
    # v_c = (1, 0), v_r = (0, 1) (inputs are normalised first): s = b_c a_r − a_c b_r = −1
    chosen, rejected = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 3.0]])
    assert gpm.preference(chosen, rejected).item() == pytest.approx(-1.0)
    assert gpm(chosen, rejected, {}).item() == pytest.approx(nls(-1.0), abs=1e-6)
    # τ divides the score; a gate scales each block
    assert build_loss("gpm", {"k": 1, "tau": 0.5}).preference(chosen, rejected).item() == -2.0
    gated = gpm.preference(chosen, rejected, gate=torch.tensor([[3.0]])).item()
    assert gated == pytest.approx(-3.0)
    with pytest.raises(ValueError, match="no scalar reward"):
        gpm.reward(chosen)


vectors = st.lists(st.floats(-5, 5, allow_nan=False), min_size=4, max_size=4)


@settings(max_examples=60, deadline=None)
@given(vectors, vectors, st.lists(st.floats(0, 3), min_size=2, max_size=2))
def test_gpm_score_is_skew_symmetric(a, b, gate):
    a, b = torch.tensor([a]), torch.tensor([b])
    g = torch.tensor([gate])
    gpm = build_loss("gpm", {"k": 2})
    s_ab = gpm.preference(a, b, gate=g).item()
    s_ba = gpm.preference(b, a, gate=g).item()
    assert s_ab == pytest.approx(-s_ba, abs=1e-6)
    assert rotation_score(a, a).item() == pytest.approx(0.0, abs=1e-6)


def test_three_cycle_gpm_represents_it_bt_cannot():
    """a ≻ b, b ≻ c, c ≻ a: GPM with k = 1 fits all three; BT at most 2 of 3."""
    cycle = [(0, 1), (1, 2), (2, 0)]
    # BT: any three reals order the items, and an order agrees with at most 2 of the 3
    for ranks in itertools.permutations(range(3)):
        assert sum(ranks[i] > ranks[j] for i, j in cycle) <= 2
    # and trained: free scalars under BT reach 2/3
    torch.manual_seed(0)
    r = torch.zeros(3, 1, requires_grad=True)
    bt = build_loss("bt")
    opt = torch.optim.Adam([r], lr=0.2)
    for _ in range(150):
        opt.zero_grad()
        bt(r[[0, 1, 2]], r[[1, 2, 0]], {}).backward()
        opt.step()
    assert sum(r[i].item() > r[j].item() for i, j in cycle) <= 2
    # GPM, k = 1, free embeddings: trained to 3/3
    v = torch.randn(3, 2, requires_grad=True)
    gpm = build_loss("gpm", {"k": 1})
    opt = torch.optim.Adam([v], lr=0.2)
    for _ in range(150):
        opt.zero_grad()
        gpm(v[[0, 1, 2]], v[[1, 2, 0]], {}).backward()
        opt.step()
    s = gpm.preference(v[[0, 1, 2]], v[[1, 2, 0]])
    assert (s > 0).all(), s
    # the exact construction: angles 240°, 120°, 0° give s = sin 120° for every edge
    angles = torch.tensor([240.0, 120.0, 0.0]) * math.pi / 180
    e = torch.stack([angles.cos(), angles.sin()], -1)
    s = gpm.preference(e[[0, 1, 2]], e[[1, 2, 0]])
    assert torch.allclose(s, torch.full((3,), math.sin(2 * math.pi / 3)), atol=1e-6)


def test_ordinal_hand_values():
    loss = build_loss("ordinal", {"num_ratings": 3, "regions": {"good": [2, 3]}})
    p_c, p_r = torch.tensor([[0.2, 0.3, 0.5]]), torch.tensor([[0.5, 0.3, 0.2]])
    chosen, rejected = p_c.log(), p_r.log()  # logits whose softmax is p
    # Σ_{i>j} p_c(i) p_r(j) = 0.3·0.5 + 0.5·0.5 + 0.5·0.3 = 0.55; ½ Σ p_c p_r = ½ · 0.29
    assert loss.win_probability(chosen, rejected).item() == pytest.approx(0.695, abs=1e-6)
    assert loss.win_probability(rejected, chosen).item() == pytest.approx(0.305, abs=1e-6)
    assert loss(chosen, rejected, {}).item() == pytest.approx(-math.log(0.695), abs=1e-6)
    assert loss.reward(chosen).item() == pytest.approx(0.2 + 0.6 + 1.5, abs=1e-6)  # E[rating]
    # a quality level adds −log Σ_{i ∈ [2, 3]} p_c(i) = −log 0.8
    got = loss(chosen, rejected, {"chosen_level": ["good"]}).item()
    assert got == pytest.approx(-math.log(0.695) - math.log(0.8), abs=1e-6)
    with pytest.raises(ValueError, match="no region"):
        loss(chosen, rejected, {"chosen_level": ["great"]})
    with pytest.raises(ValueError, match="within 1..3"):
        build_loss("ordinal", {"num_ratings": 3, "regions": {"x": [0, 2]}})


@settings(max_examples=40, deadline=None)
@given(vectors, vectors)
def test_ordinal_probabilities_are_complementary(a, b):
    loss = build_loss("ordinal", {"num_ratings": 4})
    a, b = torch.tensor([a]), torch.tensor([b])
    total = loss.win_probability(a, b) + loss.win_probability(b, a)
    assert total.item() == pytest.approx(1.0, abs=1e-6)
    assert loss.preference(a, b).item() == pytest.approx(-loss.preference(b, a).item(), abs=1e-6)
