"""GRPO trainer: config validation, a real CPU run, interrupt + resume, loss weights."""

import json

import pytest
import torch

from rewardkit.cli import main
from rewardkit.registry import REWARDS
from rewardkit.rewards import per_sample
from rewardkit.trainer.config import ConfigError, GRPOConfig
from rewardkit.trainer.loss import per_token_loss, token_weights


@per_sample(name="test.length")
def completion_length(sample):
    """A reward a random model's samples differ on, so advantages are non-zero."""
    return float(len(sample.completion))


if "test.length" not in REWARDS._builtins:
    REWARDS.register("test.length", completion_length)
LENGTH_REWARD = [{"name": "core.exact_answer"}, {"name": "test.length", "weight": 0.1}]

TINY = {"num_layers": 1, "hidden_size": 32, "num_heads": 2}


def tiny_config(tmp_path, **overrides):
    values = dict(
        model="tiny",
        tiny_model=TINY,
        task="core.arith",
        prompts_per_step=2,
        num_generations=4,
        max_completion_length=4,
        eval_size=4,
        max_steps=2,
        learning_rate=1e-3,
        output_dir=str(tmp_path / "run"),
        report_to=["jsonl"],
        progress=False,
        log_completions_every=1,
        rewards=LENGTH_REWARD,
    )
    values.update(overrides)
    return GRPOConfig(**values)


# -- config ---------------------------------------------------------------------------
def test_unknown_key_suggests_the_right_one():
    with pytest.raises(ConfigError, match="unknown config key 'learning_rat'.*learning_rate"):
        GRPOConfig.from_dict({"learning_rat": 1e-4})


def test_bad_choice_lists_allowed_values():
    with pytest.raises(ConfigError, match="lr_scheduler must be one of 'constant', 'linear'"):
        GRPOConfig(lr_scheduler="step")
    from rewardkit.registry import RegistryError
    from rewardkit.trainer.components import resolve

    with pytest.raises(RegistryError, match="unknown loss 'gpso'. Did you mean 'gspo'"):
        resolve(GRPOConfig(loss_type="gpso"))


def test_wrong_type_names_the_key():
    with pytest.raises(ConfigError, match="num_generations must be of type int"):
        GRPOConfig.from_dict({"num_generations": "eight"})
    with pytest.raises(ConfigError, match="num_generations must be >= 1"):
        GRPOConfig(num_generations=0)


def test_reward_specs_are_checked():
    with pytest.raises(
        ConfigError, match=r"rewards\[0\]: unknown key 'wieght'.*Did you mean weight"
    ):
        GRPOConfig(rewards=[{"name": "core.exact_answer", "wieght": 2}])
    # a transform's settings outside `options` were silently dropped
    with pytest.raises(
        ConfigError, match=r"rewards\[0\]\.transform: unknown key 'k'.*under its options"
    ):
        GRPOConfig(rewards=[{"name": "core.exact_answer", "transform": {"name": "par", "k": 2}}])
    with pytest.raises(ConfigError, match=r"rewards\[0\]\.transform\.name is required"):
        GRPOConfig(rewards=[{"name": "core.exact_answer", "transform": {"options": {}}}])
    config = GRPOConfig(rewards=[{"name": "core.exact_answer", "transform": "par"}])
    assert config.rewards[0].transform.name == "par" and config.rewards[0].weight == 1.0
    with pytest.raises(ConfigError, match="max_steps must be >= 0, got -1"):
        config.max_steps = -1  # assignments are checked too


def test_merge_order_task_defaults_then_yaml_then_overrides(tmp_path):
    """task defaults < YAML < --set, merged before the one check."""
    path = tmp_path / "c.yaml"
    path.write_text(
        "task: core.arith\nlearning_rate: 0.001\ntask_options: {digits: 3}\nstop_strings: [x]\n"
    )
    config = GRPOConfig.load(path, ["learning_rate=5e-4", "task_options.operators=+-"])
    assert config.learning_rate == 5e-4  # --set over YAML
    assert config.task_options == {"digits": 3, "operators": "+-"}
    assert config.max_completion_length == 8  # core.arith's default_config, not the global 64
    assert config.stop_strings == ["x"]  # YAML over the task's default ([])
    assert GRPOConfig.load(path, ["max_completion_length=3"]).max_completion_length == 3
    assert GRPOConfig(task="core.arith").max_completion_length == 64  # Python: as written
    with pytest.raises(ConfigError, match="must look like key=value"):
        GRPOConfig.load(path, ["learning_rate"])
    # one check after the merge: a --set can fix what the YAML alone gets wrong
    path.write_text("task: core.arith\ngroup_filter: zero_variance\nnum_generations: 1\n")
    with pytest.raises(ConfigError, match="group_filter needs num_generations >= 2"):
        GRPOConfig.load(path)
    assert GRPOConfig.load(path, ["num_generations=4"]).num_generations == 4
    with pytest.raises(ConfigError, match="was replaced.*task_options.max_turns"):
        GRPOConfig.load(path, ["max_turns=3"])


def test_task_options_are_typed_and_checked_before_a_model_loads():
    from rewardkit.trainer.components import resolve

    with pytest.raises(
        ConfigError,
        match="task_options of 'core.arith': unknown option 'digit'. Did you mean digits",
    ):
        resolve(GRPOConfig(task_options={"digit": 3}))
    with pytest.raises(
        ConfigError, match="task_options of 'core.arith': digits must be of type int"
    ):
        resolve(GRPOConfig(task_options={"digits": "three"}))
    assert resolve(GRPOConfig(task_options={"digits": "3"})).task.digits == 3  # converted
    with pytest.raises(ConfigError, match="advantage_options of 'grpo': unknown option 'scal'"):
        resolve(GRPOConfig(advantage_options={"scal": "none"}))


def test_estimator_requires_is_checked():
    from rewardkit.registry import ADVANTAGES
    from rewardkit.trainer.components import check_requires

    class NeedsTurns:
        requires = frozenset({"turns"})

    class NeedsMagic:
        requires = frozenset({"magic"})

    config = GRPOConfig()
    task = type("T", (), {"multi_turn": False})()
    with pytest.raises(ConfigError, match="needs multi-turn rollouts.*single-turn"):
        check_requires(config, task, NeedsTurns())
    with pytest.raises(ConfigError, match=r"requires \['magic'\], which the trainer does not"):
        check_requires(config, task, NeedsMagic())
    check_requires(config, task, ADVANTAGES.get("canon")())  # entropy: provided


def test_cli_rejects_bad_config_before_loading_a_model(capsys, monkeypatch):
    import rewardkit.trainer.components as components

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded for an invalid config")

    monkeypatch.setattr(components, "load_policy", no_model)
    assert main(["train", "--task", "core.arith", "--set", "advantage=gpro"]) == 2
    assert "unknown advantage 'gpro'" in capsys.readouterr().err
    assert main(["train", "--task", "core.arith", "--set", "rewards=[{name: core.exact}]"]) == 2
    assert "unknown reward 'core.exact'" in capsys.readouterr().err
    assert main(["train", "--task", "core.nope"]) == 2
    assert "unknown task 'core.nope'" in capsys.readouterr().err


# -- loss weights (docs/training.md) --------------------------------------------------
def test_token_weights_by_hand():
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])  # lengths 2 and 3, B = 2
    # grpo: 1 / (len_i * B): 1/4 for sample 0, 1/6 for sample 1
    assert torch.allclose(token_weights(mask, "grpo", 4)[0, :2], torch.tensor([0.25, 0.25]))
    assert torch.allclose(token_weights(mask, "grpo", 4)[1], torch.full((3,), 1 / 6))
    # bnpo: 1 / 5 policy tokens
    assert torch.allclose(token_weights(mask, "bnpo", 4), mask / 5)
    # dr_grpo: 1 / (B * max_completion_length) = 1 / 8
    assert torch.allclose(token_weights(mask, "dr_grpo", 4), mask / 8)
    # dapo with 20 tokens globally over 2 processes: 1 / (20 / 2) = 0.1
    assert torch.allclose(
        token_weights(mask, "dapo", 4, global_tokens=20, num_processes=2), mask / 10
    )
    assert token_weights(mask, "grpo", 4)[0, 2] == 0


def test_gspo_sequence_ratio_by_hand():
    """GSPO (Zheng et al. 2025): s_i = exp(mean_t (logp - old)) on every token of sequence i.
    Two sequences: rows 0 (tokens 0, 1) and 1 (tokens 2, 3; token 3 masked out)."""
    from rewardkit.registry import LOSSES

    gspo = LOSSES.get("gspo")()
    logp = torch.tensor([-1.0, -2.0, -1.0, -3.0], requires_grad=True)
    old = torch.tensor([-1.2, -1.6, -1.5, -9.0])
    mask = torch.tensor([1.0, 1.0, 1.0, 0.0])
    rows = torch.tensor([0, 0, 1, 1])
    adv = torch.tensor([1.0, 1.0, -1.0, -1.0])
    out = gspo.token_loss(logp, old, adv, mask, rows, 0.2, 0.28)
    # row 0: mean log-ratio (0.2 - 0.4) / 2 = -0.1, s = e^-0.1 = 0.904837 inside [0.8, 1.28]:
    #        l = -s * 1 on both tokens
    # row 1: mean over the one unmasked token: 0.5, s = e^0.5 = 1.648721 > 1.28, A = -1:
    #        min(-1.6487, -1.28) = -1.6487 (unclipped) -> l = 1.648721 on both tokens
    want = torch.tensor([-0.904837, -0.904837, 1.648721, 1.648721])
    assert torch.allclose(out.loss, want, atol=1e-6)
    assert out.clipped.tolist() == [False, False, False, False]
    # the gradient reaches every unmasked token of a row: d(-s)/dlogp_t = -s / 2 in row 0
    out.loss[:2].sum().backward()
    assert torch.allclose(logp.grad, torch.tensor([-0.904837, -0.904837, 0.0, 0.0]), atol=1e-6)
    # on-policy (old None): s = 1 in value
    assert torch.allclose(gspo.token_loss(logp, None, adv, mask, rows, 0.2, 0.2).loss, -adv)
    # a clipped sequence: row 0 with A = -1 and s below 0.95 when eps_low = 0.05
    clipped = gspo.token_loss(logp, old, -adv, mask, rows, 0.05, 0.28)
    assert clipped.clipped.tolist()[:2] == [True, True]


def test_per_token_loss_by_hand():
    logp = torch.tensor([-1.0, -1.0], requires_grad=True)
    old = torch.tensor([-1.5, -0.5])  # ratios e^0.5 = 1.6487, e^-0.5 = 0.6065
    adv = torch.tensor([1.0, 1.0])
    out = per_token_loss(logp, old, adv, 0.2, 0.28)
    # token 0: min(1.6487, clip -> 1.28) = 1.28 (clipped); token 1: min(0.6065, 0.8) = 0.6065
    assert torch.allclose(out.loss, torch.tensor([-1.28, -0.60653066]), atol=1e-6)
    assert out.clipped.tolist() == [True, False]
    ref = torch.tensor([-2.0, -1.0])
    with_kl = per_token_loss(logp, old, adv, 0.2, 0.28, beta=0.1, ref_logp=ref)
    # k3: exp(-1) - (-1) - 1 = 0.36788 for token 0, 0 for token 1
    assert torch.allclose(with_kl.kl, torch.tensor([0.36787944, 0.0]), atol=1e-6)
    assert torch.allclose(with_kl.loss, out.loss + 0.1 * with_kl.kl, atol=1e-6)


# -- real runs on a tiny model ----------------------------------------------------------
def test_train_writes_metrics_completions_plot_and_checkpoint(tmp_path):
    from rewardkit.trainer.trainer import GRPOTrainer

    config = tiny_config(tmp_path, num_iterations=2, beta=0.04, epsilon_high=0.28, packing=True)
    trainer = GRPOTrainer(config)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    history = trainer.train()
    out = tmp_path / "run"
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [x for x in lines if "loss" in x]
    assert [x["step"] for x in steps] == [1, 2]
    for key in (
        "reward/core.exact_answer/mean",
        "reward/test.length/mean",
        "reward/total/std",
        "kl",
        "clip_fraction",
        "entropy",
        "advantage/std",
        "completion_length",
        "frac_zero_variance_groups",
        "time/generate",
        "time/score",
        "time/forward_backward",
        "time/optimizer",
        "time/step",
    ):
        assert key in steps[0], key
    assert history[0]["step"] == 0 and "eval/accuracy" in history[0]
    completions = (out / "completions.jsonl").read_text().splitlines()
    assert len(completions) == 2 * 2 * 4
    assert (out / "training.png").stat().st_size > 1000
    assert (out / "checkpoint-2" / "trainer_state.json").exists()
    changed = any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))
    assert changed, "two steps with learning_rate 1e-3 left every weight unchanged"


@per_sample(name="test.step_scaled")
def step_scaled_length(sample, context=None):
    """A reward that follows the trainer step (as a schedule does): length x (1 + step)."""
    return float(len(sample.completion)) * (1 + (context.step if context else 0))


CONTEXTS: list = []


def record_context(samples, context=None):
    CONTEXTS.append(context)
    return [0.0] * len(samples)


for _name, _reward in (
    ("test.step_scaled", step_scaled_length),
    ("test.record_context", record_context),
):
    if _name not in REWARDS._builtins:
        REWARDS.register(_name, _reward)

# a stateful transform (its window carries over steps) and a step-dependent reward
STATEFUL_REWARDS = [
    {"name": "core.exact_answer"},
    {
        "name": "test.length",
        "weight": 0.1,
        "transform": {"name": "length_correction", "options": {"min_samples": 8, "window": 16}},
    },
    {"name": "test.step_scaled", "weight": 0.01},
]


def test_eval_size_zero_means_no_held_out_evaluation(tmp_path):
    from rewardkit.trainer.trainer import GRPOTrainer

    trainer = GRPOTrainer(tiny_config(tmp_path, eval_size=0, eval_every=1, max_steps=1))
    history = trainer.train()
    assert not any("eval/accuracy" in h for h in history)  # not a logged 0.0
    assert any("loss" in h for h in history)


def test_rewards_get_the_trainer_step_and_phase(tmp_path):
    from rewardkit.rewards.lifecycle import RewardContext
    from rewardkit.trainer.trainer import GRPOTrainer

    CONTEXTS.clear()
    rewards = [{"name": "core.exact_answer"}, {"name": "test.record_context"}]
    GRPOTrainer(tiny_config(tmp_path, max_steps=2, rewards=rewards)).train()
    assert CONTEXTS == [
        RewardContext(0, "eval"),
        RewardContext(0, "train"),
        RewardContext(1, "train"),
        RewardContext(2, "eval"),
    ]


def test_interrupted_run_resumes_with_identical_metrics(tmp_path):
    """Also the rewards: the length-correction window is saved in the checkpoint and the
    step-dependent reward reads the restored step, so steps 3 and 4 score as in the
    uninterrupted run."""
    from rewardkit.trainer.trainer import GRPOTrainer

    def config(path, **kw):
        return tiny_config(path, max_steps=4, rewards=STATEFUL_REWARDS, **kw)

    full = GRPOTrainer(config(tmp_path / "a", save_every=2)).train()

    interrupted = GRPOTrainer(config(tmp_path / "b", save_every=2))
    original_step = interrupted.train_step

    def crash_after_three():
        if interrupted.step == 3:
            raise KeyboardInterrupt
        return original_step()

    interrupted.train_step = crash_after_three
    with pytest.raises(KeyboardInterrupt):
        interrupted.train()
    # the periodic save at step 2 wrote a checkpoint, not <output_dir>/final
    assert (tmp_path / "b" / "run" / "checkpoint-2").is_dir()
    assert not (tmp_path / "b" / "run" / "final").exists()
    resumed = GRPOTrainer(config(tmp_path / "b", resume_from="latest"))
    assert resumed.step == 2
    window = resumed.reward_objects["test.length"].window
    assert len(window) == 16  # restored, not empty
    history = resumed.train()

    def by_step(h, step):
        row = next(x for x in h if x["step"] == step)
        return {k: v for k, v in row.items() if not k.startswith("time/")}

    for step in (3, 4):
        assert by_step(history, step) == pytest.approx(by_step(full, step), rel=1e-6, abs=1e-7)
        assert by_step(full, step)["reward/test.length/std"] > 0  # the corrected reward varies

    def logged_steps(run):  # the rows the interrupted run logged after step 2 were dropped
        rows = (tmp_path / run / "run" / "metrics.jsonl").read_text().splitlines()
        return [json.loads(r)["step"] for r in rows]

    assert logged_steps("b") == logged_steps("a")


def test_a_fresh_run_sets_aside_an_earlier_runs_logs(tmp_path):
    from rewardkit.trainer.trainer import GRPOTrainer

    GRPOTrainer(tiny_config(tmp_path, max_steps=2)).train()
    out = tmp_path / "run"
    first = (out / "metrics.jsonl").read_text()
    evaluation = GRPOTrainer(tiny_config(tmp_path, max_steps=0, report_to=[]))
    evaluation.evaluate()  # as `rewardkit eval` does: the run's logs stay where they are
    evaluation.scorer.close()
    assert (out / "metrics.jsonl").read_text() == first
    trainer = GRPOTrainer(tiny_config(tmp_path, max_steps=1))
    with pytest.warns(UserWarning, match="held logs of an earlier run"):
        trainer.train()
    GRPOTrainer(tiny_config(tmp_path / "clean", max_steps=1)).train()

    def steps(run_dir):
        return [json.loads(r)["step"] for r in (run_dir / "metrics.jsonl").read_text().splitlines()]

    assert steps(out) == steps(tmp_path / "clean" / "run")  # only the second run's rows
    completions = [json.loads(r) for r in (out / "completions.jsonl").read_text().splitlines()]
    assert {r["step"] for r in completions} == {1}
    (old_metrics,) = out.glob("metrics.before-*.jsonl")
    assert old_metrics.read_text() == first
    assert len(list(out.glob("completions.before-*.jsonl"))) == 1


def test_resume_drops_rows_logged_after_the_checkpoint_and_a_torn_line(tmp_path):
    from rewardkit.trainer.logging import drop_rows_after

    rows = [{"step": 0, "eval/accuracy": 0.5}, {"step": 1}, {"step": 2}, {"step": 3}]
    text = "".join(json.dumps(r) + "\n" for r in rows) + '{"step": 4, "rew'
    (tmp_path / "metrics.jsonl").write_text(text)
    (tmp_path / "completions.jsonl").write_text('{"step": 2, "group": 0}\n{"step": 3}\n')
    with pytest.warns(UserWarning, match="dropped 3 log rows"):
        assert drop_rows_after(tmp_path, 2) == 3
    kept = [json.loads(r)["step"] for r in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert kept == [0, 1, 2]
    assert (tmp_path / "completions.jsonl").read_text() == '{"step": 2, "group": 0}\n'


def test_resuming_with_other_stateful_rewards_is_an_error(tmp_path):
    from rewardkit.trainer.trainer import GRPOTrainer

    GRPOTrainer(tiny_config(tmp_path, max_steps=1, rewards=STATEFUL_REWARDS)).train()
    with pytest.raises(ValueError, match="holds reward state for \\['test.length'\\]"):
        GRPOTrainer(tiny_config(tmp_path, max_steps=2, resume_from="latest"))


def test_final_model_is_written_at_the_end_only_and_reward_threads_are_closed(tmp_path):
    import threading
    import time

    from rewardkit.trainer.trainer import GRPOTrainer

    trainer = GRPOTrainer(tiny_config(tmp_path, max_steps=2, save_every=1))

    def reward_threads():  # this trainer's scorer's threads
        prefix = trainer.scorer.thread_name + "_"
        return [t for t in threading.enumerate() if t.name.startswith(prefix)]

    trainer.train()
    out = tmp_path / "run"
    assert (out / "checkpoint-1").is_dir() and (out / "checkpoint-2").is_dir()
    from safetensors.torch import load_file

    final = load_file(out / "final" / "model.safetensors")
    trained = trainer.accelerator.unwrap_model(trainer.model).state_dict()
    assert all(torch.equal(final[k], trained[k]) for k in final)  # the end of the run
    deadline = time.monotonic() + 5
    while reward_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not reward_threads(), "the scorer's thread pool outlived the run"
    assert trainer.evaluate() >= 0.0  # a later evaluation starts its threads again
    assert reward_threads()
    trainer.scorer.close()


def test_resume_from_a_missing_checkpoint_is_a_clear_error(tmp_path):
    from rewardkit.trainer.trainer import GRPOTrainer

    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        GRPOTrainer(tiny_config(tmp_path, resume_from="latest"))


@per_sample(name="test.even_only")
def length_on_even_answers(sample):
    """Varies within a group only when the row's answer is even."""
    return float(len(sample.completion)) if int(sample.meta["answer"]) % 2 == 0 else 0.0


if "test.even_only" not in REWARDS._builtins:
    REWARDS.register("test.even_only", length_on_even_answers)


def test_dynamic_sampling_keeps_only_groups_whose_rewards_vary(tmp_path):
    from rewardkit.trainer.trainer import GRPOTrainer

    config = tiny_config(
        tmp_path,
        rewards=[{"name": "test.even_only"}],
        group_filter="zero_variance",
        prompts_per_step=3,
        max_resample_rounds=8,
        max_completion_length=6,
    )
    trainer = GRPOTrainer(config)
    samples, scored, stats = trainer.sample_and_score()
    groups = sorted({s.group for s in samples})
    assert len(samples) == 3 * 4 and len(groups) == 3
    assert all(int(s.meta["answer"]) % 2 == 0 for s in samples)
    for g in groups:
        idx = [i for i, s in enumerate(samples) if s.group == g]
        assert scored.total[idx].std() > 0
    assert scored.raw["test.even_only"] == scored.total.tolist()
    assert stats["group_filter/groups_kept"] == 3
    assert stats["group_filter/rounds"] >= 1 or stats["frac_zero_variance_groups"] == 0
    with pytest.raises(ConfigError, match="replaced: use `group_filter: zero_variance`"):
        GRPOConfig.from_dict({"dynamic_sampling": True})


def test_fill_batch_checks_what_a_filter_returns():
    from rewardkit.filters import fill_batch
    from rewardkit.rewards.scoring import ScoreResult
    from rewardkit.types import Sample

    samples = [Sample("p", "c", group=i // 2) for i in range(4)]
    scored = ScoreResult(
        torch.tensor([0.0, 1.0, 2.0, 2.0]), {"r": [0.0, 1.0, 2.0, 2.0]}, [None] * 4
    )

    def draw(offset):
        return [Sample("p", "c", group=offset + s.group) for s in samples], scored

    def half(samples, scored):
        return torch.tensor([True, False, True, True])

    with pytest.raises(ValueError, match="kept part of group 0"):
        fill_batch(draw, half, 2, 0)
    with pytest.raises(ValueError, match=r"must return a \(4,\) bool tensor"):
        fill_batch(draw, lambda s, r: torch.ones(4), 2, 0)
    # zero variance: group 0 (0, 1) varies, group 1 (2, 2) does not; two rounds fill 2 groups
    from rewardkit.filters import ZeroVariance

    kept, result, stats = fill_batch(draw, ZeroVariance(), 2, 3)
    assert [s.group for s in kept] == [0, 0, 2, 2] and stats["group_filter/rounds"] == 1
    assert stats["group_filter/dropped_fraction"] == 0.5  # groups 1 and 3 of 4 drawn
    assert result.total.tolist() == [0.0, 1.0, 0.0, 1.0]
    # nothing passes: the last round, unfiltered and counted
    kept, _, stats = fill_batch(draw, lambda s, r: torch.zeros(4, dtype=torch.bool), 2, 1)
    assert len(kept) == 4 and stats["group_filter/unfiltered"] == 1.0
    assert stats["group_filter/dropped_fraction"] == 1.0
