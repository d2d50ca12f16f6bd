"""Task hooks: `prepare_policy` runs before the reference copy and the optimizer;
`evaluate_policy` runs before the first GRPO step and after the last."""

import json

import pytest

from rewardkit.registry import REWARDS, TASKS
from rewardkit.rewards import per_sample
from rewardkit.tasks.base import Task
from rewardkit.trainer.config import GRPOConfig

Arithmetic = TASKS.get("core.arith")
HOOK_TOKEN = "<|hook|>"


class HookedArith(Arithmetic):
    """core.arith plus both hooks; every call is appended to `events`."""

    name = "test.hooked_arith"

    def __init__(self, **options):
        super().__init__(**options)
        self.events: list[tuple] = []

    def prepare_policy(self, model, tokenizer, config):
        tokenizer.add_tokens([HOOK_TOKEN])
        model.resize_token_embeddings(len(tokenizer))
        self.events.append(("prepare", len(tokenizer)))
        return model, tokenizer

    def evaluate_policy(self, model, tokenizer):
        rows = model.get_input_embeddings().weight.shape[0]
        weight_sum = float(sum(p.detach().abs().sum() for p in model.parameters()))
        self.events.append(("evaluate", rows))
        return {"embedding_rows": rows, "weight_sum": weight_sum}


class OneDigitArith(Arithmetic):
    """core.arith whose answers are constrained to one digit, then eos."""

    name = "test.one_digit_arith"

    def generation_constraint(self, tokenizer):
        digits = tokenizer.convert_tokens_to_ids(list("0123456789"))
        self.prompts_seen = []

        def allowed(prompt_ids, completion_ids):
            self.prompts_seen.append(tokenizer.decode(prompt_ids, skip_special_tokens=True))
            return digits if not completion_ids else [tokenizer.eos_token_id]

        return allowed


class BadMetrics(Arithmetic):
    def evaluate_policy(self, model, tokenizer):
        return {"ndcg": "high"}


@per_sample(name="test.hook_length")
def completion_length(sample):
    """A reward a random model's samples differ on, so that GRPO moves the weights."""
    return float(len(sample.completion))


for name, cls in (
    ("test.hooked_arith", HookedArith),
    ("test.bad_metrics", BadMetrics),
    ("test.one_digit_arith", OneDigitArith),
):
    if name not in TASKS._builtins:
        TASKS.register(name, cls)
if "test.hook_length" not in REWARDS._builtins:
    REWARDS.register("test.hook_length", completion_length)


def config(tmp_path, task, max_steps=2):
    return GRPOConfig(
        model="tiny",
        tiny_model={"num_layers": 1, "hidden_size": 32, "num_heads": 2},
        task=task,
        prompts_per_step=2,
        num_generations=4,
        max_completion_length=4,
        eval_size=4,
        max_steps=max_steps,
        learning_rate=1e-3,
        beta=0.04,
        output_dir=str(tmp_path / "run"),
        report_to=["jsonl"],
        progress=False,
        log_completions_every=0,
        rewards=[{"name": "core.exact_answer"}, {"name": "test.hook_length", "weight": 0.1}],
    )


def test_hooks_run_in_order_and_the_optimizer_trains_the_resized_policy(tmp_path):
    from rewardkit.trainer.trainer import GRPOTrainer

    trainer = GRPOTrainer(config(tmp_path, "test.hooked_arith"))
    task = trainer.task
    vocab = len(trainer.tokenizer)
    # the tiny tokenizer has 4 special tokens + 96 characters; the hook added one more
    assert vocab == 4 + 96 + 1 and trainer.tokenizer.convert_tokens_to_ids(HOOK_TOKEN) == 100
    assert task.events == [("prepare", vocab)]  # in __init__, before any evaluation
    embedding = trainer.model.get_input_embeddings().weight
    assert embedding.shape[0] == vocab
    optimized = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert id(embedding) in optimized  # the optimizer was made after the resize
    assert id(trainer.model.get_output_embeddings().weight) in optimized
    # the reference copy (beta > 0) was made after the resize too
    assert trainer.ref_model.get_input_embeddings().weight.shape[0] == vocab

    steps = []
    train_step = trainer.train_step
    trainer.train_step = lambda: (steps.append(len(task.events)), train_step())[1]
    history = trainer.train()
    # evaluate once before the first step (1 event so far) and once after the last
    assert steps == [2, 2]
    assert task.events == [("prepare", vocab), ("evaluate", vocab), ("evaluate", vocab)]

    saved = json.loads((tmp_path / "run" / "task_eval.json").read_text())
    assert set(saved) == {"before", "after"}
    assert saved["before"]["embedding_rows"] == saved["after"]["embedding_rows"] == vocab
    # "after" measures the trained policy: two steps at lr 1e-3 moved the weights
    assert saved["after"]["weight_sum"] != pytest.approx(saved["before"]["weight_sum"], abs=1e-6)
    assert (
        history[0]["step"] == 0 and history[0]["task/weight_sum"] == saved["before"]["weight_sum"]
    )
    assert (
        history[-1]["step"] == 2 and history[-1]["task/weight_sum"] == saved["after"]["weight_sum"]
    )
    assert "eval/accuracy" in history[0] and "eval/accuracy" in history[-1]
    logged = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in logged if "task/embedding_rows" in x] == [0, 2]


def test_default_hooks_change_nothing_and_write_no_file(tmp_path):
    from rewardkit.trainer.trainer import GRPOTrainer

    model, tokenizer = object(), object()
    assert Task().prepare_policy(model, tokenizer, None) == (model, tokenizer)
    assert Task().evaluate_policy(model, tokenizer) == {}
    history = GRPOTrainer(config(tmp_path, "core.arith", max_steps=0)).train()
    assert not (tmp_path / "run" / "task_eval.json").exists()
    assert not any(k.startswith("task/") for row in history for k in row)


def test_the_task_generation_constraint_shapes_every_rollout(tmp_path):
    from rewardkit.trainer.trainer import GRPOTrainer

    trainer = GRPOTrainer(config(tmp_path, "test.one_digit_arith", max_steps=1))
    eos = trainer.tokenizer.eos_token_id
    rows = trainer.train_rows[:3]
    for samples in (trainer.rollout(rows), trainer.rollout(rows, greedy=True, generations=1)):
        for s in samples:
            assert s.completion in list("0123456789") and s.completion_ids[-1] == eos, s
            assert not s.truncated
    prompts = {trainer.task.prompt(r) for r in rows}
    assert set(trainer.task.prompts_seen) == prompts
    trainer.train()  # a training step and both evaluations run under the constraint
    assert Task().generation_constraint(trainer.tokenizer) is None


def test_non_numeric_task_metrics_are_a_clear_error(tmp_path):
    from rewardkit.trainer.trainer import GRPOTrainer

    trainer = GRPOTrainer(config(tmp_path, "test.bad_metrics", max_steps=0))
    with pytest.raises(
        TypeError, match=r"test.bad_metrics: evaluate_policy must return numbers.*'ndcg'"
    ):
        trainer.train()
