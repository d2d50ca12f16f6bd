"""Advantage estimators on hand-computed numbers.

Every expected value is written out as arithmetic from the spec's formula."""

import math

import pytest
import torch

from rewardkit.registry import ADVANTAGES, RegistryError
from rewardkit.types import RewardOutput, RolloutBatch, Sample


def batch(scores, groups, mask=None, T=3, **kw):
    B = len(scores)
    if mask is None:
        mask = [[1] * T for _ in range(B)]
    return RolloutBatch(
        scores=torch.tensor(scores, dtype=torch.float),
        groups=torch.tensor(groups),
        completion_mask=torch.tensor(mask, dtype=torch.float),
        **kw,
    )


def est(name, **options):
    return ADVANTAGES.get(name)(**options)


def per_sample(adv):
    """The (B,) advantage of outcome estimators: every policy token holds the same value."""
    return adv[:, 0].tolist()


def same(got, want, atol=1e-6):
    """Tensor equality within atol (torch.testing.assert_close costs seconds on first use)."""
    want = want.to(got.dtype)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert torch.allclose(got, want, rtol=0, atol=atol), (got.tolist(), want.tolist())


def close(got, want, tol=1e-6):
    assert len(got) == len(want), (got, want)
    for g, w in zip(got, want, strict=True):
        assert g == pytest.approx(w, abs=tol), (got, want)


# -- grpo -----------------------------------------------------------------------------------


def test_grpo_group_scale_uses_unbiased_std_and_non_contiguous_groups():
    # group 0 = samples 0, 2, 3 with r = 1, 2, 6: mean 3, deviations -2, -1, 3,
    #   unbiased var = (4 + 1 + 9) / (3 - 1) = 7, std = sqrt(7) = 2.6457513
    #   (the biased std sqrt(14/3) = 2.1602 would give other numbers)
    # group 5 = samples 1, 4 with r = 3, 5: mean 4, var = (1 + 1) / 1 = 2, std = sqrt(2)
    adv = est("grpo")(batch([1, 3, 2, 6, 5], [0, 5, 0, 0, 5]))
    s7, s2 = math.sqrt(7) + 1e-4, math.sqrt(2) + 1e-4
    close(per_sample(adv), [-2 / s7, -1 / s2, -1 / s7, 3 / s7, 1 / s2])
    assert adv.dtype == torch.float32 and adv.shape == (5, 3)


def test_grpo_batch_and_none_scale():
    # r = 1, 2, 6 (group 0), 0 (group 1). Centred by group: -2, -1, 3 and 0 (alone).
    # batch std: mean 2.25, squares 1.5625 + 0.0625 + 14.0625 + 5.0625 = 20.75,
    #   unbiased var 20.75 / 3 = 6.916667, std = 2.6299556
    b = batch([1, 2, 6, 0], [0, 0, 0, 1])
    s = math.sqrt(20.75 / 3) + 1e-4
    close(per_sample(est("grpo", scale="batch")(b)), [-2 / s, -1 / s, 3 / s, 0.0])
    close(per_sample(est("grpo", scale="none")(b)), [-2, -1, 3, 0])


def test_grpo_lone_sample_and_constant_group_get_zero():
    # a group of one has std 0 (TRL's convention) and r - mean = 0; a constant group too
    close(per_sample(est("grpo")(batch([7, 2, 2], [0, 1, 1]))), [0, 0, 0])


def test_outcome_advantage_is_zero_off_policy_tokens():
    # sample 0: token 1 written by a tool; sample 1: padding after 1 token
    mask = [[1, 0, 1], [1, 0, 0]]
    adv = est("dr_grpo")(batch([1, 0], [0, 0], mask=mask))
    # mean 0.5: A = +0.5, -0.5 on policy tokens only
    assert adv.tolist() == [[0.5, 0.0, 0.5], [-0.5, 0.0, 0.0]]


def test_grpo_rejects_bad_scale():
    with pytest.raises(ValueError, match="scale"):
        est("grpo", scale="global")


# -- dr_grpo and rloo -------------------------------------------------------------------------


def test_dr_grpo():
    # group 0: r = 1, 2, 6, mean 3 -> -2, -1, 3; group 1: r = 4, 0, mean 2 -> 2, -2
    adv = est("dr_grpo")(batch([1, 4, 2, 0, 6], [0, 1, 0, 1, 0]))
    close(per_sample(adv), [-2, 2, -1, -2, 3])


def test_rloo_leave_one_out_and_lone_sample():
    # group 0: r = 1, 2, 6: 1 - (2+6)/2 = -3, 2 - (1+6)/2 = -1.5, 6 - (1+2)/2 = 4.5
    # group 1: one sample -> 0 (documented)
    adv = est("rloo")(batch([1, 2, 6, 9], [0, 0, 0, 1]))
    close(per_sample(adv), [-3, -1.5, 4.5, 0])


# -- canon ----------------------------------------------------------------------------------

# Group of 4: r = 3, 1, 2, 0. Entropies 0.9, 0.1, 0.5, 0.3 and lengths 4, 1, 3, 2 sort the
# same way, ascending: sample 1, 3, 2, 0. C- = {1, 3} (r 1, 0, mu- = 0.5),
# C+ = {2, 0} (r 2, 3, mu+ = 2.5).
CANON_R = [3, 1, 2, 0]
CANON_ENT = [0.9, 0.1, 0.5, 0.3]
CANON_MASK = [[1, 1, 1, 1], [1, 0, 0, 0], [1, 1, 1, 0], [1, 1, 0, 0]]


def canon_batch(**kw):
    return batch(CANON_R, [0] * 4, mask=CANON_MASK, entropies=torch.tensor(CANON_ENT), **kw)


def test_canon_entropy_formula():
    # alpha 2, beta 0.5, lam 0.25:
    # C+ sample 0 (r 3): 0.25*(3 - 2*0.5 + 0.5) + 0.75*(3 - 2.5) = 0.625 + 0.375 = 1.0
    # C+ sample 2 (r 2): 0.25*(2 - 1 + 0.5) + 0.75*(2 - 2.5) = 0.375 - 0.375 = 0.0
    # C- sample 1 (r 1): 0.25*(2*1 - 2.5 - 0.5) + 0.75*(1 - 0.5) = -0.25 + 0.375 = 0.125
    # C- sample 3 (r 0): 0.25*(0 - 2.5 - 0.5) + 0.75*(0 - 0.5) = -0.75 - 0.375 = -1.125
    adv = est("canon", metric="entropy", alpha=2, beta=0.5, lam=0.25)(canon_batch())
    close(per_sample(adv), [1.0, 0.125, 0.0, -1.125])


def test_canon_length_formula_and_mask():
    # metric = policy-token count 4, 1, 3, 2 (same order as above), alpha 2, beta 0.5, lam 0.25:
    # C+ sample 0: 0.25*(2*3 - 0.5 + 0.5) + 0.75*(3 - 2.5) = 1.5 + 0.375 = 1.875
    # C+ sample 2: 0.25*(2*2 - 0.5 + 0.5) + 0.75*(2 - 2.5) = 1.0 - 0.375 = 0.625
    # C- sample 1: 0.25*(1 - 2*2.5 - 0.5) + 0.75*(1 - 0.5) = -1.125 + 0.375 = -0.75
    # C- sample 3: 0.25*(0 - 2*2.5 - 0.5) + 0.75*(0 - 0.5) = -1.375 - 0.375 = -1.75
    adv = est("canon", metric="length", alpha=2, beta=0.5, lam=0.25)(canon_batch())
    want = [1.875, -0.75, 0.625, -1.75]
    expected = torch.tensor(want)[:, None] * torch.tensor(CANON_MASK, dtype=torch.float)
    same(adv, expected)


def test_canon_default_is_pure_inter_group():
    # lam 1, alpha 1, beta 0, entropy: C+ gets r - mu- (3 - 0.5, 2 - 0.5), C- gets r - mu+
    # (1 - 2.5, 0 - 2.5)
    close(per_sample(est("canon")(canon_batch())), [2.5, -1.5, 1.5, -2.5])


def test_canon_divides_by_max_completion_length():
    # the default values above divided by L = 8
    adv = est("canon", divide_by_max_length=True)(canon_batch(max_completion_length=8))
    close(per_sample(adv), [2.5 / 8, -1.5 / 8, 1.5 / 8, -2.5 / 8])


def test_canon_half_mix_equals_dr_grpo_for_even_groups():
    # lam 0.5, alpha 1, beta 0: both halves get 0.5(r - mu-) + 0.5(r - mu+) = r - (mu- + mu+)/2,
    # and with halves of equal size (mu- + mu+)/2 = mean_g: exactly Dr. GRPO.
    # Here mean = 1.5: 1.5, -0.5, 0.5, -1.5. Two interleaved groups check the grouping.
    b = batch(
        [3, 10, 1, 0, 2, 20, 0, 30],
        [0, 1, 0, 1, 0, 1, 0, 1],
        entropies=torch.tensor([0.9, 0.4, 0.1, 0.3, 0.5, 0.2, 0.3, 0.1]),
        max_completion_length=4,
    )
    canon = est("canon", lam=0.5)(b)
    dr = est("dr_grpo")(b)
    same(canon, dr)
    close(per_sample(dr)[0::2], [1.5, -0.5, 0.5, -1.5])
    # divided by L = max_completion_length it is Dr. GRPO / L
    canon_l = est("canon", lam=0.5, divide_by_max_length=True)(b)
    same(canon_l, dr / 4)


def test_canon_half_mix_differs_from_dr_grpo_for_odd_groups():
    # G = 3, r = 0, 1, 5 with entropies 0.1, 0.2, 0.3: C- = {0} (mu- = 0), C+ = {1, 2}
    # (mu+ = 3); baseline (0 + 3)/2 = 1.5 -> -1.5, -0.5, 3.5, while Dr. GRPO (mean 2) gives
    # -2, -1, 3.
    b = batch([0, 1, 5], [0, 0, 0], entropies=torch.tensor([0.1, 0.2, 0.3]))
    close(per_sample(est("canon", lam=0.5)(b)), [-1.5, -0.5, 3.5])
    close(per_sample(est("dr_grpo")(b)), [-2, -1, 3])


def test_canon_ties_keep_batch_order_and_lone_sample_is_zero():
    # equal entropies: stable sort keeps order 0, 1 | 2, 3. alpha 2, lam 1, entropy:
    # C- = {0, 1} (r 1, 0, mu- 0.5), C+ = {2, 3} (r 0, 1, mu+ 0.5)
    # C-: 2r - mu+ -> 2 - 0.5 = 1.5, 0 - 0.5 = -0.5; C+: r - 2*mu- -> 0 - 1 = -1, 1 - 1 = 0
    # sample 4 is alone in group 1 -> 0
    b = batch([1, 0, 0, 1, 7], [0, 0, 0, 0, 1], entropies=torch.full((5,), 0.5))
    close(per_sample(est("canon", alpha=2)(b)), [1.5, -0.5, -1.0, 0.0, 0.0])


def test_canon_requires_and_errors():
    assert est("canon").requires == frozenset({"entropy"})
    assert est("canon", metric="length").requires == frozenset()
    with pytest.raises(ValueError, match="entropies"):
        est("canon")(batch([1, 0], [0, 0]))
    with pytest.raises(ValueError, match="NaN"):
        est("canon")(batch([1, 0], [0, 0], entropies=torch.tensor([0.1, float("nan")])))
    with pytest.raises(ValueError, match="shape"):
        est("canon")(batch([1, 0], [0, 0], entropies=torch.tensor([0.1, 0.2, 0.3])))
    with pytest.raises(ValueError, match="max_completion_length"):
        est("canon", metric="length", divide_by_max_length=True)(batch([1, 0], [0, 0]))
    with pytest.raises(ValueError, match="metric"):
        est("canon", metric="perplexity")


# -- process --------------------------------------------------------------------------------


def test_process_token_rewards_return_to_go_step_baseline():
    # baseline="step" (DeepSeekMath §4.1.3): one group, token rewards s0 = 1, 0, 2 and s1 = 0, 0, 0: baseline (1+0+2+0+0+0)/6 = 0.5
    # centred: s0 = 0.5, -0.5, 1.5; s1 = -0.5, -0.5, -0.5
    # gamma 1: s0 = 1.5, 1.0, 1.5 (sums from the end), s1 = -1.5, -1.0, -0.5
    # gamma 0.5: s0: t2 1.5, t1 -0.5 + 0.5*1.5 = 0.25, t0 0.5 + 0.5*0.25 = 0.625
    #            s1: t2 -0.5, t1 -0.5 - 0.25 = -0.75, t0 -0.5 - 0.375 = -0.875
    tr = torch.tensor([[1.0, 0.0, 2.0], [0.0, 0.0, 0.0]])
    b = batch([1, 0], [0, 0], token_rewards=tr)
    adv = est("process", outcome=None, baseline="step")(b)
    same(adv, torch.tensor([[1.5, 1.0, 1.5], [-1.5, -1.0, -0.5]]))
    adv = est("process", outcome=None, gamma=0.5, baseline="step")(b)
    same(adv, torch.tensor([[0.625, 0.25, 1.5], [-0.875, -0.75, -0.5]]))
    # plus the outcome part: dr_grpo on r = 1, 0 adds +0.5 / -0.5 to every token
    adv = est("process", outcome="grpo", outcome_options={"scale": "none"}, baseline="step")(b)
    same(adv, torch.tensor([[2.0, 1.5, 2.0], [-2.0, -1.5, -1.0]]))
    # default outcome grpo: +-0.5 / (sqrt(0.5) + 1e-4)
    a = 0.5 / (math.sqrt(0.5) + 1e-4)
    adv = est("process", baseline="step")(b)
    want = torch.tensor([[1.5 + a, 1.0 + a, 1.5 + a], [-1.5 - a, -1.0 - a, -0.5 - a]])
    same(adv, want)


def test_process_token_rewards_sample_baseline_and_none():
    # default baseline="sample": token rewards s0 = 1, 0, 2 and s1 = 0, 0, 0
    # returns-to-go (gamma 1): s0 = 3, 2, 2; s1 = 0, 0, 0; baseline = mean(3, 0) = 1.5
    tr = torch.tensor([[1.0, 0.0, 2.0], [0.0, 0.0, 0.0]])
    b = batch([1, 0], [0, 0], token_rewards=tr)
    same(est("process", outcome=None)(b), torch.tensor([[1.5, 0.5, 0.5], [-1.5, -1.5, -1.5]]))
    # gamma 0.5: s0 = 1 + 0.5 * (0 + 0.5 * 2) = 1.5, 0 + 0.5 * 2 = 1, 2; baseline 0.75
    adv = est("process", outcome=None, gamma=0.5)(b)
    same(adv, torch.tensor([[0.75, 0.25, 1.25], [-0.75, -0.75, -0.75]]))
    # baseline="none": the returns as they are
    adv = est("process", outcome=None, baseline="none")(b)
    same(adv, torch.tensor([[3.0, 2.0, 2.0], [0.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="baseline"):
        est("process", baseline="group")


def test_process_step_rewards_sample_baseline():
    # group 0: s0 mask 1,1,0,1, steps 1.0 at token 1 and 4.0 at token 2: returns 5, 5, 4, 0;
    # s1 one step 1.0 at token 2: 1, 1, 1; s3 no steps: 0, 0. Baseline (5 + 1 + 0) / 3 = 2:
    # s0 = 3, 3, (masked) 0, -2; s1 = -1, -1, -1, (pad) 0; s3 = -2, -2.
    # group 1: s2 alone: its own return is its baseline -> 0.
    samples = [
        Sample("p", "a", completion_ids=[1, 2, 3, 4], completion_mask=[1, 1, 0, 1], group=0),
        Sample("p", "b", completion_ids=[1, 2, 3], group=0),
        Sample("q", "c", completion_ids=[1], group=1),
        Sample("p", "d", completion_ids=[1, 2], group=0),
    ]
    outputs = [
        RewardOutput(0.0, step_rewards=[1.0, 4.0], step_ends=[1, 2]),
        RewardOutput(0.0, step_rewards=[1.0], step_ends=[2]),
        RewardOutput(0.0, step_rewards=[10.0], step_ends=[0]),
        RewardOutput(0.0),
    ]
    adv = est("process", outcome=None)(RolloutBatch.from_samples(samples, outputs))
    want = [[3, 3, 0, -2], [-1, -1, -1, 0], [0, 0, 0, 0], [-2, -2, 0, 0]]
    same(adv, torch.tensor(want, dtype=torch.float))


def test_process_step_rewards_at_step_ends_through_from_samples():
    # baseline="step"
    # group 0: s0 mask 1,1,0,1 (token 2 = tool output), steps 1.0 ending at token 1 and 4.0
    #          ending at token 2; s1 mask 1,1,1 (then padding), one step 1.0 ending at 2;
    #          s3 has no step rewards (no reward positions).
    #   baseline (1 + 4 + 1) / 3 = 2 -> centred s0: t1 -1, t2 +2; s1: t2 -1
    #   return-to-go (gamma 1): s0 = 1, 1, 2, 0 -> masked 1, 1, 0, 0; s1 = -1, -1, -1, (pad) 0
    # group 1: s2 alone, step 10 at token 0: baseline 10 -> centred 0 -> 0 (a batch-wide
    #   baseline (16/4 = 4) would give 6 here)
    samples = [
        Sample("p", "a", completion_ids=[1, 2, 3, 4], completion_mask=[1, 1, 0, 1], group=0),
        Sample("p", "b", completion_ids=[1, 2, 3], group=0),
        Sample("q", "c", completion_ids=[1], group=1),
        Sample("p", "d", completion_ids=[1, 2], group=0),
    ]
    outputs = [
        RewardOutput(0.0, step_rewards=[1.0, 4.0], step_ends=[1, 2]),
        RewardOutput(0.0, step_rewards=[1.0], step_ends=[2]),
        RewardOutput(0.0, step_rewards=[10.0], step_ends=[0]),
        RewardOutput(0.0),
    ]
    b = RolloutBatch.from_samples(samples, outputs)
    adv = est("process", outcome=None, baseline="step")(b)
    want = [[1, 1, 0, 0], [-1, -1, -1, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    same(adv, torch.tensor(want, dtype=torch.float))


def test_process_requires_follow_the_outcome_estimator():
    assert est("process").requires == frozenset()
    assert est("process", outcome="canon").requires == frozenset({"entropy"})


def test_process_errors():
    with pytest.raises(ValueError, match="neither token_rewards nor step_rewards"):
        est("process")(batch([1, 0], [0, 0]))
    nan = torch.tensor([[0.0, float("nan"), 0.0], [0.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="NaN"):
        est("process")(batch([1, 0], [0, 0], token_rewards=nan))
    off = torch.tensor([[0.0, 0.0, 3.0], [0.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match=r"completion_mask 0 at \(sample, token\) \[\[0, 2\]\]"):
        est("process")(batch([1, 0], [0, 0], mask=[[1, 1, 0], [1, 1, 1]], token_rewards=off))
    with pytest.raises(ValueError, match="ends at token 3"):
        est("process")(batch([1, 0], [0, 0], step_rewards=[[1.0], None], step_ends=[[3], None]))
    with pytest.raises(ValueError, match="must increase"):
        est("process")(
            batch([1, 0], [0, 0], step_rewards=[[1.0, 2.0], None], step_ends=[[1, 1], None])
        )
    with pytest.raises(ValueError, match="gamma"):
        est("process", gamma=1.5)
    with pytest.raises(RegistryError, match="unknown advantage"):
        est("process", outcome="nope")


# -- every estimator: shapes, dtype, mask, input validation ----------------------------------

ALL = ["grpo", "dr_grpo", "rloo", "canon", "process"]


def full_batch(scores=(1.0, 0.0, 2.0, 5.0), groups=(3, 1, 3, 1), **kw):
    mask = [[1, 1, 0], [1, 0, 0], [0, 1, 1], [1, 1, 1]]
    extra = dict(
        entropies=torch.tensor([0.3, 0.2, 0.1, 0.4]),
        token_rewards=torch.tensor(
            [[0.1, 0.2, 0.0], [0.3, 0.0, 0.0], [0.0, 0.5, 0.6], [0.7, 0.8, 0.9]]
        ),
        max_completion_length=3,
    )
    extra.update(kw)
    return batch(list(scores), list(groups), mask=mask, **extra)


@pytest.mark.parametrize("name", ALL)
def test_every_estimator_is_registered_masked_and_float32(name):
    b = full_batch()
    adv = est(name)(b)
    assert adv.shape == (4, 3) and adv.dtype == torch.float32
    assert (adv[b.completion_mask == 0] == 0).all()
    assert adv[b.completion_mask == 1].abs().sum() > 0


@pytest.mark.parametrize("name", ALL)
def test_every_estimator_rejects_nan_and_bad_shapes(name):
    with pytest.raises(ValueError, match=r"NaN or infinite for samples \[1\]"):
        est(name)(full_batch(scores=(1.0, float("nan"), 2.0, 5.0)))
    with pytest.raises(ValueError, match="scores must have shape"):
        est(name)(full_batch(scores=(1.0, 0.0, 2.0)))
    with pytest.raises(ValueError, match="groups must have shape"):
        est(name)(full_batch(groups=(0, 0, 0)))
    b = full_batch()
    b.groups = b.groups.float()
    with pytest.raises(ValueError, match="integer"):
        est(name)(b)


def test_returns_to_go_by_hand():
    from rewardkit.advantages.returns import returns_to_go

    # gamma 0.5 over [1, 2, 3]: 3, 2 + 1.5 = 3.5, 1 + 1.75 = 2.75; rows independent
    got = returns_to_go(torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 4.0]]), 0.5)
    same(got, torch.tensor([[2.75, 3.5, 3.0], [1.0, 2.0, 4.0]]))
    assert returns_to_go(torch.zeros(2, 0), 0.9).shape == (2, 0)
