"""Rollouts: completion trimming, and multi-turn episodes with environment tokens masked."""

import pytest

from rewardkit.envs import StepResult
from rewardkit.tiny import build_tokenizer
from rewardkit.trainer.rollout import Generated, HFGenerate, multi_turn_rollout, single_turn_rollout


class ScriptedBackend:
    """Answers every prompt with the next scripted text (a fake policy)."""

    def __init__(self, tokenizer, texts):
        self.tokenizer, self.texts, self.calls = tokenizer, list(texts), []

    def generate(self, prompts, max_new_tokens, greedy=False):
        self.calls.append((len(prompts), max_new_tokens))
        out = []
        for _ in prompts:
            ids = self.tokenizer.encode(self.texts.pop(0), add_special_tokens=False)[
                :max_new_tokens
            ]
            out.append(Generated(ids, truncated=len(ids) == max_new_tokens))
        return out


class CounterEnv:
    """Counts up to 2 on "inc"; anything else is an invalid action, fed back."""

    def reset(self, row, seed=None):
        self.n, self.invalid = 0, 0
        return "n=0\n"

    def state(self):
        return self.n

    def step(self, action):
        if action.strip() != "inc":
            self.invalid += 1
            return StepResult("bad\n", 0.0, False, {"invalid_actions": self.invalid})
        self.n += 1
        done = self.n == 2
        info = {"success": done, "invalid_actions": self.invalid}
        return StepResult(f"n={self.n}\n", 1.0 if done else 0.0, done, info)


def test_multi_turn_masks_environment_tokens():
    tok = build_tokenizer()
    backend = ScriptedBackend(tok, ["inc", "oops", "inc"])
    prompt_ids = [tok.encode("go:", add_special_tokens=False)]
    [sample] = multi_turn_rollout(
        backend,
        tok,
        lambda row: CounterEnv(),
        [{"id": 7}],
        prompt_ids,
        ["go:"],
        1,
        max_new_tokens=8,
        max_turns=5,
        max_episode_tokens=100,
    )
    # the first observation belongs to the prompt; then: inc | n=1\n | oops | bad\n | inc (done)
    assert sample.prompt_ids == tok.encode("go:n=0\n", add_special_tokens=False)
    assert sample.completion == "incn=1\noopsbad\ninc"
    expected_mask = [1] * 3 + [0] * 4 + [1] * 4 + [0] * 4 + [1] * 3
    assert sample.completion_mask == expected_mask
    assert [(t.start, t.end, t.action, t.state) for t in sample.turns] == [
        (0, 3, "inc", 0),
        (7, 11, "oops", 1),
        (15, 18, "inc", 1),
    ]
    assert sample.meta["id"] == 7
    assert sample.meta["episode"] == {
        "return": 1.0,
        "success": True,
        "turns": 3,
        "invalid_actions": 1,
        "finished": True,
    }
    assert not sample.truncated


def test_multi_turn_stops_at_turn_and_token_limits():
    tok = build_tokenizer()
    backend = ScriptedBackend(tok, ["nope"] * 2)
    [sample] = multi_turn_rollout(
        backend,
        tok,
        lambda row: CounterEnv(),
        [{}],
        [[5]],
        ["p"],
        1,
        max_new_tokens=8,
        max_turns=2,
        max_episode_tokens=100,
    )
    assert len(sample.turns) == 2 and sample.truncated
    assert sample.meta["episode"]["finished"] is False
    backend = ScriptedBackend(tok, ["inc", "inc"])
    [sample] = multi_turn_rollout(
        backend,
        tok,
        lambda row: CounterEnv(),
        [{}],
        [[5]],
        ["p"],
        1,
        max_new_tokens=8,
        max_turns=5,
        max_episode_tokens=5,
    )
    assert len(sample.completion_ids) == 5  # cut at the episode token budget
    assert sample.truncated and len(sample.completion_mask) == 5


def test_groups_and_meta_of_single_turn_samples():
    tok = build_tokenizer()
    backend = ScriptedBackend(tok, ["1", "2", "3", "4"])
    rows = [{"answer": "1"}, {"answer": "4"}]
    samples = single_turn_rollout(backend, tok, rows, [[5], [6]], ["a", "b"], 2, 4, group_offset=10)
    assert [s.group for s in samples] == [10, 10, 11, 11]
    assert [s.meta["answer"] for s in samples] == ["1", "1", "4", "4"]
    assert [s.completion for s in samples] == ["1", "2", "3", "4"]


@pytest.mark.parametrize(
    "ids,truncated,expected",
    [
        ([10, 11, 2, 0, 0], False, [10, 11, 2]),  # cut after <eos> (kept)
        ([10, 11, 12, 13], True, [10, 11, 12, 13]),  # hit the limit: truncated
        ([10, 11, 0, 0], False, [10, 11]),  # stopped early (stop string): padding dropped
    ],
)
def test_hf_generate_trims_completions(ids, truncated, expected):
    tok = build_tokenizer()
    backend = HFGenerate(lambda: None, tok)
    out = backend._trim(ids, max_new_tokens=4)
    assert out.ids == expected and out.truncated == truncated


def test_stop_strings_stop_generation_and_count_as_not_truncated():
    import torch

    from rewardkit.tiny import build_tiny_model
    from rewardkit.trainer.rollout import StopOnText

    tok = build_tokenizer()
    ids = tok.encode("def f():\n```\nmore", add_special_tokens=False)
    stop = StopOnText(tok, ["\n```\n"], prompt_len=2)
    assert stop.stopped(ids[: len(ids) - 4]) and not stop.stopped(ids[:8])
    upto = ids[: len(ids) - 4]  # generated up to the end of the stop string
    batch = torch.tensor([upto, ids[:8] + [0] * (len(upto) - 8)])
    assert stop(batch, None).tolist() == [True, False]
    # the text of a special token is not generated text: "<unk>" does not hold the stop "n"
    assert not StopOnText(tok, ["n"], 0).stopped([tok.unk_token_id])
    # a full generation: a stop string that is one frequent character ends every sample early
    model, _ = build_tiny_model(num_layers=1, hidden_size=32, num_heads=2, seed=0)
    prompt = tok.encode("12+3=", add_special_tokens=False)
    torch.manual_seed(7)
    free = HFGenerate(lambda: model, tok, temperature=1.0).generate([prompt] * 8, 40)
    special = set(tok.all_special_ids)
    written = [i for g in free for i in g.ids if i not in special]
    char = tok.decode([max(set(written), key=written.count)])  # the one it writes most
    stopped = HFGenerate(lambda: model, tok, stop_strings=[char]).generate([prompt] * 8, 40)
    for g in stopped:
        decoded = tok.decode(g.ids, skip_special_tokens=True)
        if char in decoded:  # ends right at the stop string, and is not truncated
            assert decoded.index(char) == len(decoded) - 1, decoded
            assert not g.truncated
    assert sum(len(g.ids) for g in stopped) < sum(len(g.ids) for g in free)
