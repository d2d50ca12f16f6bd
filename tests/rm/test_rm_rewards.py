"""rm.score and rm.ensemble: trained reward models as GRPO rewards."""

import pytest
import torch

from rewardkit.registry import REWARDS
from rewardkit.types import Sample
from rewardkit_rm.model import RMSpec, build_reward_model, load_reward_model, save_reward_model
from rewardkit_rm.rewards import RMEnsemble, RMScore
from rewardkit_rm.scoring import head_outputs

TINY = {"num_layers": 1, "hidden_size": 32, "num_heads": 2}


def saved_rm(path, seed=0, spec=None):
    rm, tok = build_reward_model("tiny", spec or RMSpec(max_length=64), TINY, seed=seed)
    return save_reward_model(rm, tok, path)


@pytest.fixture(scope="module")
def rm_path(tmp_path_factory):
    return saved_rm(tmp_path_factory.mktemp("rm") / "bt")


def samples():
    texts = ["4", "five", "a much longer answer here", "x", "", "12 13 14", "ok"]
    return [Sample(f"q{i // 4}=", t, group=i // 4) for i, t in enumerate(texts)]


def test_rm_score_is_the_entry_point_reward_and_drops_into_a_grpo_config(rm_path):
    from rewardkit.trainer.components import resolve
    from rewardkit.trainer.config import ConfigError, GRPOConfig

    assert REWARDS.get("rm.score") is RMScore and REWARDS.get("rm.ensemble") is RMEnsemble
    config = GRPOConfig(
        rewards=[{"name": "rm.score", "options": {"path": str(rm_path), "batch_size": 4}}]
    )
    reward = resolve(config).rewards[0].reward
    assert isinstance(reward, RMScore) and reward.batch_size == 4
    bad = GRPOConfig(rewards=[{"name": "rm.score", "options": {"path": str(rm_path), "bach": 4}}])
    with pytest.raises(ConfigError, match="unknown option 'bach'. Known: path, device, batch_size"):
        resolve(bad)
    with pytest.raises(FileNotFoundError, match="not a saved reward model"):
        RMScore(str(rm_path.parent))


def test_scores_are_the_models_rewards_whatever_the_batching(rm_path):
    rm, tok, loss = load_reward_model(rm_path)
    batch = samples()
    expected = []
    for s in batch:  # one at a time, no padding at all
        out, _, _ = head_outputs(rm, tok, [s.prompt], [s.completion], 64)
        expected.append(float(loss.reward(out)[0]))
    for batch_size in (1, 3, 16):
        got = [o.score for o in RMScore(str(rm_path), batch_size=batch_size)(batch)]
        assert got == pytest.approx(expected, abs=1e-5)
    outputs = RMScore(str(rm_path))(batch)
    assert [o.info["raw"] for o in outputs] == [o.score for o in outputs]
    assert len(set(expected)) > 3  # the completions are told apart


def test_loaded_once_on_the_trainer_device(rm_path, monkeypatch):
    from accelerate import PartialState

    import rewardkit_rm.model as model

    loads = []
    original = model.load_reward_model
    monkeypatch.setattr(
        model, "load_reward_model", lambda *a, **k: loads.append(a) or original(*a, **k)
    )
    reward = RMScore(str(rm_path))
    for _ in range(3):
        reward(samples())
    assert len(loads) == 1
    assert next(reward.model.parameters()).device == PartialState().device
    assert not any(p.requires_grad for p in reward.model.parameters())
    assert reward.stats()["rm/batches"] == 3 and reward.stats()["rm/samples"] == 21


def test_group_and_batch_normalization(rm_path):
    batch = samples()
    raw = torch.tensor([o.score for o in RMScore(str(rm_path))(batch)])
    grouped = torch.tensor([o.score for o in RMScore(str(rm_path), normalize="group")(batch)])
    for g in (0, 1):
        idx = [i for i, s in enumerate(batch) if s.group == g]
        expect = (raw[idx] - raw[idx].mean()) / raw[idx].std(unbiased=False)
        assert torch.allclose(grouped[idx], expect, atol=1e-4)
    whole = torch.tensor([o.score for o in RMScore(str(rm_path), normalize="batch")(batch)])
    assert abs(whole.mean()) < 1e-5 and abs(whole.std(unbiased=False) - 1) < 1e-4
    with pytest.raises(ValueError, match="normalize must be one of"):
        RMScore(str(rm_path), normalize="rank")


def test_chat_prompt_format_scores_text_prompts_as_a_user_turn(tmp_path):
    from rewardkit.tiny import build_tokenizer

    path = saved_rm(tmp_path / "rm")
    tok = build_tokenizer()
    if not getattr(tok, "chat_template", None):
        pytest.skip("the tiny tokenizer has no chat template")
    s = Sample("2+2=", "4")
    as_chat = RMScore(str(path), prompt_format="chat")([s])[0].score
    chat_sample = Sample([{"role": "user", "content": "2+2="}], "4")
    assert as_chat == pytest.approx(RMScore(str(path))([chat_sample])[0].score, abs=1e-6)
    assert as_chat != pytest.approx(RMScore(str(path))([s])[0].score, abs=1e-6)


def test_gpm_scores_each_completion_against_its_group(tmp_path):
    spec = RMSpec(loss="gpm", loss_options={"k": 2}, out_dim=4, max_length=64)
    path = saved_rm(tmp_path / "gpm", spec=spec)
    rm, tok, loss = load_reward_model(path)
    batch = [Sample("p", "a"), Sample("p", "bb"), Sample("q", "c", group=1)]
    scores = [o.score for o in RMScore(str(path))(batch)]
    out, _, _ = head_outputs(rm, tok, ["p", "p"], ["a", "bb"], 64)
    s01 = float(loss.preference(out[:1], out[1:2])[0])
    # a group of two: each one's score is its preference over the other (skew-symmetric)
    assert scores[0] == pytest.approx(s01, abs=1e-5) and scores[1] == pytest.approx(-s01, abs=1e-5)
    assert scores[2] == 0.0  # alone in its group


def test_rm_ensemble_goes_through_the_core_ensemble_transform(tmp_path):
    from rewardkit.rewards.transforms import Ensemble

    a, b = saved_rm(tmp_path / "a", seed=0), saved_rm(tmp_path / "b", seed=1)
    batch = samples()
    sa = [o.score for o in RMScore(str(a))(batch)]
    sb = [o.score for o in RMScore(str(b))(batch)]
    mean = RMEnsemble([str(a), str(b)], batch_size=4)
    assert isinstance(mean, Ensemble)
    assert [o.score for o in mean(batch)] == pytest.approx(
        [(x + y) / 2 for x, y in zip(sa, sb, strict=True)], abs=1e-6
    )
    low = RMEnsemble([str(a), str(b)], mode="min")(batch)
    assert [o.score for o in low] == pytest.approx([min(x, y) for x, y in zip(sa, sb)], abs=1e-6)
    with pytest.raises(ValueError, match="at least one"):
        RMEnsemble([])


def test_a_grpo_run_with_rm_score_as_its_reward(rm_path, tmp_path):
    """Two GRPO steps of a tiny policy rewarded by the RM, end to end, set up as for an
    RM-vs-verifier comparison: the verifier first with weight 0 (it decides held-out
    accuracy and is logged), the RM the only reward the policy learns from."""
    import json

    from rewardkit.trainer.config import GRPOConfig
    from rewardkit.trainer.trainer import GRPOTrainer

    config = GRPOConfig(
        model="tiny", tiny_model=TINY, task="core.arith", prompts_per_step=2,
        num_generations=4, max_completion_length=4, eval_size=4, max_steps=2,
        learning_rate=1e-3, output_dir=str(tmp_path / "run"), report_to=["jsonl"],
        progress=False, rewards=[
            {"name": "core.exact_answer", "weight": 0.0},
            {"name": "rm.score", "options": {"path": str(rm_path)}},
        ],
    )  # fmt: skip
    GRPOTrainer(config).train()
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in rows if "reward/rm.score/mean" in r][-1]
    # one model scored the step-0 evaluation (4 samples) and two steps of 2 x 4 samples
    assert last["step"] == 2 and last["reward/rm.score/rm/samples"] == 20
    assert last["reward/rm.score/std"] > 0 and last["advantage/std"] > 0  # it ranks them
    assert last["reward/total/mean"] == pytest.approx(last["reward/rm.score/mean"])
    assert "reward/core.exact_answer/mean" in last
    assert [r["step"] for r in rows if "eval/accuracy" in r] == [0, 2]  # by exact_answer
