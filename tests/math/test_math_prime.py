"""PRIME advantages on hand-computed numbers and the accuracy band (filter and trainer)."""

import math

import pytest
import torch

from rewardkit.registry import ADVANTAGES
from rewardkit.types import RolloutBatch, Sample
from rewardkit_math.prime import PRIMEAdvantage, accuracy_filter, masked_whiten, returns_to_go

MASK = torch.tensor([[1, 1, 1], [1, 1, 0], [1, 1, 1], [1, 0, 0]], dtype=torch.float)
TOKEN_REWARDS = torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.2, 0.0], [0.0, 0.3, 0.3], [0.6, 0.0, 0.0]])


def _batch(token_rewards=TOKEN_REWARDS, groups=(0, 0, 1, 1)):
    return RolloutBatch(
        scores=torch.tensor([1.0, 0.0, 1.0, 1.0]),
        groups=torch.tensor(groups),
        completion_mask=MASK,
        token_rewards=token_rewards,
    )


# Hand computation (groups {0, 1} and {2, 3}):
# outcome RLOO: s0 1-0 = 1, s1 0-1 = -1, s2 1-1 = 0, s3 0, at the last policy token
# mean token reward per sample: s0 0.6/3 = 0.2, s1 0.6/2 = 0.3, s2 0.6/3 = 0.2, s3 0.6/1 = 0.6
# leave-one-out baselines: s0 0.3, s1 0.2, s2 0.6, s3 0.2
# process: s0 (-0.2, -0.1, 0), s1 (0.2, 0, -), s2 (-0.6, -0.3, -0.3), s3 (0.4, -, -)
# combined: s0 (-0.2, -0.1, 1.0), s1 (0.2, -1.0, -), s2 (-0.6, -0.3, -0.3), s3 (0.4, -, -)
# returns (gamma 1): s0 (0.7, 0.9, 1.0), s1 (-0.8, -1.0, -), s2 (-1.2, -0.6, -0.3), s3 (0.4, -, -)


def close(actual: torch.Tensor, expected, atol: float = 1e-6) -> None:
    torch.testing.assert_close(
        actual.double(), torch.tensor(expected, dtype=torch.float64), atol=atol, rtol=0
    )


RETURNS = [[0.7, 0.9, 1.0], [-0.8, -1.0, 0.0], [-1.2, -0.6, -0.3], [0.4, 0.0, 0.0]]


def test_returns_by_hand():
    G = PRIMEAdvantage().returns(_batch())
    close(G, RETURNS)


def test_whitened_advantage_by_hand():
    # the 9 policy-token returns sum to -0.9: mean -0.1; deviations
    # 0.8 1.0 1.1 | -0.7 -0.9 | -1.1 -0.5 -0.2 | 0.5, squares sum to 5.90,
    # unbiased variance 5.90 / 8 = 0.7375
    std = math.sqrt(0.7375 + 1e-8)
    expected = [
        [0.8 / std, 1.0 / std, 1.1 / std],
        [-0.7 / std, -0.9 / std, 0.0],
        [-1.1 / std, -0.5 / std, -0.2 / std],
        [0.5 / std, 0.0, 0.0],
    ]
    A = ADVANTAGES.get("math.prime")()(_batch())
    assert A.dtype == torch.float32 and A.shape == (4, 3)
    close(A, expected, atol=1e-5)


def test_coefficients_and_gamma():
    # c_o = 2, c_p = 0.5: s0 combined (-0.1, -0.05, 0 + 2) -> returns (1.85, 1.95, 2.0)
    G = PRIMEAdvantage(outcome_coef=2.0, process_coef=0.5).returns(_batch())
    close(G[0], [1.85, 1.95, 2.0])
    # s3 combined (0.5 * 0.4 + 2 * 0) -> 0.2 on its single token
    close(G[3], [0.2, 0.0, 0.0])
    # gamma 0.5 on s0's combined (-0.2, -0.1, 1.0): (-0.2 + 0.5 * 0.4, -0.1 + 0.5 * 1, 1) = (0, 0.4, 1)
    G = PRIMEAdvantage(gamma=0.5).returns(_batch())
    close(G[0], [0.0, 0.4, 1.0])
    # outcome only needs no token rewards
    G = PRIMEAdvantage(process_coef=0.0).returns(_batch(token_rewards=None))
    close(G, [[1, 1, 1], [-1, -1, 0], [0, 0, 0], [0, 0, 0]])


def test_helpers_by_hand():
    assert returns_to_go(torch.tensor([[1.0, 2.0, 3.0]]), 0.5).tolist() == [[2.75, 3.5, 3.0]]
    x = torch.tensor([[1.0, 2.0, 100.0]])
    w = masked_whiten(x, torch.tensor([[1, 1, 0]]))
    # mean 1.5, unbiased var ((0.5^2) * 2) / 1 = 0.5
    close(w, [[-0.5 / math.sqrt(0.5), 0.5 / math.sqrt(0.5), 0.0]])


def test_prime_bad_input():
    with pytest.raises(ValueError, match="single sample"):
        PRIMEAdvantage()(_batch(groups=(0, 0, 1, 2)))
    with pytest.raises(ValueError, match="no token_rewards"):
        PRIMEAdvantage()(_batch(token_rewards=None))
    with pytest.raises(ValueError, match="token_rewards must be"):
        PRIMEAdvantage()(_batch(token_rewards=torch.zeros(4, 2)))
    with pytest.raises(ValueError, match="gamma"):
        PRIMEAdvantage(gamma=1.5)
    with pytest.raises(TypeError, match="prm_update"):  # the reward's online_update decides
        PRIMEAdvantage(prm_update="before")


def test_accuracy_filter():
    groups = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 3, 3, 3])
    scores = torch.tensor([1, 0, 0, 0, 1, 1, 1, 1, 1, 0, 1, 0, 0, 0, 0], dtype=torch.float)
    keep = accuracy_filter(scores, groups)
    # accuracies: g0 0.25 (kept), g1 1.0 (dropped), g2 0.5 (kept), g3 0.2 (the open band drops it)
    assert keep.tolist() == [True] * 4 + [False] * 4 + [True] * 2 + [False] * 5
    assert accuracy_filter(scores, groups, low=0.1, high=1.0)[10:].all()
    with pytest.raises(ValueError, match="band"):
        accuracy_filter(scores, groups, low=0.8, high=0.2)
    with pytest.raises(ValueError, match="must be equal"):
        accuracy_filter(scores, groups[:3])


# -- PRIME's accuracy band on the policy's prompts (a group filter) -------------------------


def test_accuracy_band_filter_by_hand():
    from rewardkit.registry import GROUP_FILTERS
    from rewardkit.rewards.scoring import ScoreResult
    from rewardkit_math.prime import AccuracyBand

    assert GROUP_FILTERS.get("math.accuracy_band") is AccuracyBand
    # groups of 4: accuracies 0/4, 1/4, 3/4, 4/4 -> the band (0.2, 0.8) keeps 1/4 and 3/4
    acc = [0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1]
    samples = [Sample("q", "c", group=i // 4) for i in range(16)]
    scored = ScoreResult(torch.zeros(16), {"math.accuracy": acc, "other": [0.5] * 16}, [])
    keep = AccuracyBand()(samples, scored)
    assert keep.tolist() == [False] * 4 + [True] * 8 + [False] * 4
    assert AccuracyBand(low=0.5)(samples, scored).tolist() == [False] * 8 + [True] * 4 + [False] * 4
    with pytest.raises(ValueError, match="rewards are \\['math.accuracy', 'other'\\]"):
        AccuracyBand(reward="math.nope")(samples, scored)
    with pytest.raises(ValueError, match="low < high"):
        AccuracyBand(low=0.8, high=0.2)


def first_k_right(samples):
    """A stand-in verifier: in each group the first (answer mod 5) samples are right, so a
    group of 4 has accuracy min(answer mod 5, 4) / 4."""
    seen: dict[int, int] = {}
    out = []
    for s in samples:
        k = seen.get(s.group, 0)
        seen[s.group] = k + 1
        out.append(1.0 if k < int(s.meta["answer"]) % 5 else 0.0)
    return out


def test_the_trainer_keeps_only_prompts_inside_the_band(tmp_path):
    """PRIME Algorithm 1 on the policy side: every group the step trains on has accuracy
    strictly inside (0.2, 0.8); the trainer samples more prompts to refill the batch."""
    from rewardkit.registry import REWARDS
    from rewardkit.trainer.config import GRPOConfig
    from rewardkit.trainer.trainer import GRPOTrainer

    if "test.first_k_right" not in REWARDS._builtins:
        REWARDS.register("test.first_k_right", first_k_right)
    config = GRPOConfig(
        model="tiny",
        tiny_model={"num_layers": 1, "hidden_size": 32, "num_heads": 2},
        task="core.arith",
        prompts_per_step=3,
        num_generations=4,
        max_completion_length=3,
        rewards=[{"name": "test.first_k_right"}],
        group_filter="math.accuracy_band",
        group_filter_options={"reward": "test.first_k_right"},
        max_resample_rounds=20,
        output_dir=str(tmp_path),
        report_to=[],
        progress=False,
    )
    trainer = GRPOTrainer(config)
    for _ in range(2):
        samples, scored, stats = trainer.sample_and_score()
        groups = sorted({s.group for s in samples})
        assert len(groups) == 3 and len(samples) == 12 and stats["group_filter/unfiltered"] == 0
        for g in groups:
            idx = [i for i, s in enumerate(samples) if s.group == g]
            accuracy = sum(scored.raw["test.first_k_right"][i] for i in idx) / len(idx)
            assert 0.2 < accuracy < 0.8
            assert int(samples[idx[0]].meta["answer"]) % 5 in (1, 2, 3)
    trainer.scorer.close()
