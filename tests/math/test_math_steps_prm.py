"""Step segmentation with token ends, and math.prm over tiny randomly initialised models."""

import pytest
import torch
from transformers import LlamaForSequenceClassification, LlamaForTokenClassification

from rewardkit.registry import REWARDS
from rewardkit.rewards.base import build_reward
from rewardkit.tiny import build_tiny_model, tiny_config
from rewardkit.types import Sample
from rewardkit_math.prm import PRMReward, aggregate
from rewardkit_math.steps import Step, segment, split_steps, token_char_ends

# -- steps -------------------------------------------------------------------------------


def test_split_steps_spans():
    text = "ab  \n\n\n\nc d\n\n"  # trailing spaces and empty pieces are not steps
    assert split_steps(text) == [Step(0, 2), Step(8, 11)]
    assert [s.text(text) for s in split_steps(text)] == ["ab", "c d"]
    assert split_steps("a. b. c", delimiter=". ") == [Step(0, 1), Step(3, 4), Step(6, 7)]
    assert split_steps("  \n\n ") == []
    with pytest.raises(ValueError, match="delimiter"):
        split_steps("a", delimiter="")


def test_step_ends_from_offsets(bpe_tokenizer):
    tok = bpe_tokenizer
    text = "ab ab\n\nab c"
    # tokens: ab | ' ' | ab | \n | \n | ab | ' ' | c  with character ends 2 3 5 6 7 9 10 11
    assert list(token_char_ends(tok, text)) == [2, 3, 5, 6, 7, 9, 10, 11]
    steps, ends = segment(text, tok)
    # step 0 = "ab ab" ends at character 5 -> token 2; step 1 = "ab c" ends at 11 -> token 7
    assert steps == [Step(0, 5), Step(7, 11)] and ends == [2, 7]


def test_step_ends_from_other_token_ids(bpe_tokenizer):
    tok = bpe_tokenizer
    text = "ab ab\n\nab c"
    # the same text as a b ' ' ab \n \n a b ' ' c: prefix lengths 1 2 3 5 6 7 8 9 10 11
    ids = [1, 2, 4, 6, 5, 5, 1, 2, 4, 3]
    assert tok.decode(ids) == text
    _, ends = segment(text, tok, ids)
    assert ends == [3, 9]


def test_steps_ending_in_one_token_are_merged():
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "b": 1, "c": 2, "\n": 3, "\n\n": 4, "b\n\n": 5, "b\n\nc": 6}
    merges = [("\n", "\n"), ("b", "\n\n"), ("b\n\n", "c")]
    tok = Tokenizer(models.BPE(vocab, merges, unk_token="<unk>"))
    tok.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>")
    # "cb\n\nc" -> tokens c | b\n\nc: both steps ("cb" and "c") end inside token 1
    assert tok("cb\n\nc", add_special_tokens=False)["input_ids"] == [2, 6]
    steps, ends = segment("cb\n\nc", tok)
    assert steps == [Step(0, 5)] and ends == [1]


def test_step_beyond_tokens_is_an_error(bpe_tokenizer):
    tok = bpe_tokenizer
    with pytest.raises(ValueError, match="step 1 ends at character 11"):
        segment("ab ab\n\nab c", tok, [6, 4, 6])  # ids cover only "ab ab"


# -- aggregation -------------------------------------------------------------------------


def test_aggregate_hand_computed():
    s = [0.9, 0.5, 0.8]
    assert aggregate(s, "min") == 0.5
    assert aggregate(s, "product") == pytest.approx(0.36)  # 0.9 * 0.5 * 0.8
    assert aggregate(s, "last") == 0.8
    assert aggregate(s, "mean") == pytest.approx(2.2 / 3)
    assert aggregate([], "min") == 0.0
    with pytest.raises(ValueError, match="aggregation"):
        aggregate(s, "max")


# -- PRM models --------------------------------------------------------------------------

PROMPT = "Q: 12+30?\n"
COMPLETION = "12+30\n\n=42\n\nso 42"
STEPS = ["12+30", "=42", "so 42"]


@pytest.fixture(scope="module")
def lm():
    return build_tiny_model(seed=1, num_layers=1, hidden_size=32, num_heads=2)


def _encode(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


def test_causal_prm_scores_each_step_at_its_tag(lm):
    model, tok = lm
    prm = PRMReward(model, tok, step_tag="\n\n", good_token="+", bad_token="-")
    assert prm.kind == "causal"
    ids = _encode(tok, COMPLETION)
    [out] = prm([Sample(PROMPT, COMPLETION, completion_ids=ids)])
    # independent check: step k's score only depends on the prefix up to its tag
    plus, minus = _encode(tok, "+")[0], _encode(tok, "-")[0]
    prefix = _encode(tok, PROMPT)
    expected = []
    for step in STEPS:
        prefix = prefix + _encode(tok, step) + _encode(tok, "\n\n")
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([prefix])).logits[0, -1]
        expected.append(torch.softmax(logits[[plus, minus]], dim=-1)[0].item())
    assert out.step_rewards == pytest.approx(expected, abs=1e-5)
    assert out.score == pytest.approx(min(expected), abs=1e-5)
    # one token per character: "12+30" is 0-4, "\n\n" 5-6, "=42" 7-9, "\n\n" 10-11, "so 42" 12-16
    assert out.step_ends == [4, 9, 16]
    assert len(set(expected)) == 3  # a real, position-dependent model, not a constant


def test_batched_scores_equal_single_scores(lm):
    model, tok = lm
    prm = PRMReward(model, tok, aggregation="product", batch_size=3)
    samples = [
        Sample(PROMPT, COMPLETION),
        Sample("Q: 1?\n", "1"),
        Sample([{"role": "user", "content": "hi"}], "a\n\nb\n\nc\n\nd"),
    ]
    together = prm(samples)
    alone = [prm([s])[0] for s in samples]
    for a, b in zip(together, alone, strict=True):
        assert a.step_rewards == pytest.approx(b.step_rewards, abs=1e-5)
        assert a.score == pytest.approx(b.score, abs=1e-5)


def test_token_classifier_prm():
    _, tok = build_tiny_model(num_layers=1, hidden_size=32, num_heads=2)
    config = tiny_config(len(tok), num_layers=1, hidden_size=32, num_heads=2)
    config.num_labels = 2
    torch.manual_seed(0)
    model = LlamaForTokenClassification(config).eval()
    prm = PRMReward(model, tok, step_tag="#", aggregation="mean")
    assert prm.kind == "token"
    [out] = prm([Sample(PROMPT, COMPLETION)])
    ids = _encode(tok, PROMPT + "12+30#=42#so 42#")
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0]
    tags = [i for i, t in enumerate(ids) if t == _encode(tok, "#")[0]]
    expected = torch.softmax(logits[tags], dim=-1)[:, 1].tolist()
    assert out.step_rewards == pytest.approx(expected, abs=1e-5)
    assert out.score == pytest.approx(sum(expected) / 3, abs=1e-5)


def test_sequence_classifier_prm_scores_prefixes():
    _, tok = build_tiny_model(num_layers=1, hidden_size=32, num_heads=2)
    config = tiny_config(len(tok), num_layers=1, hidden_size=32, num_heads=2)
    config.num_labels = 2
    config.pad_token_id = tok.pad_token_id
    torch.manual_seed(0)
    model = LlamaForSequenceClassification(config).eval()
    prm = PRMReward(model, tok, aggregation="last")
    assert prm.kind == "sequence"
    [out] = prm([Sample(PROMPT, COMPLETION)])
    expected = []
    for k in range(3):
        ids = _encode(tok, PROMPT + "\n\n".join(STEPS[: k + 1]))
        with torch.no_grad():
            expected.append(
                torch.softmax(model(input_ids=torch.tensor([ids])).logits[0], -1)[1].item()
            )
    assert out.step_rewards == pytest.approx(expected, abs=1e-5)
    assert out.score == pytest.approx(expected[-1], abs=1e-5)


def test_prm_bad_input(lm):
    model, tok = lm
    with pytest.raises(ValueError, match="kind"):
        PRMReward(model, tok, kind="reward")
    with pytest.raises(ValueError, match="aggregation"):
        PRMReward(model, tok, aggregation="max")
    with pytest.raises(ValueError, match="one token"):
        PRMReward(model, tok, good_token="good")
    with pytest.raises(ValueError, match="tokenizer"):
        PRMReward(model)
    [out] = PRMReward(model, tok)([Sample(PROMPT, "  ")])
    assert out.score == 0.0 and out.step_rewards is None and out.info["reason"] == "no_steps"


def test_prm_from_registry_with_a_saved_model(tmp_path):
    build_tiny_model(tmp_path / "prm", num_layers=1, hidden_size=32, num_heads=2)
    reward = build_reward(REWARDS.get("math.prm"), model=str(tmp_path / "prm"), kind="causal")
    [out] = reward([Sample(PROMPT, COMPLETION)])
    assert len(out.step_rewards) == 3 and all(0 < r < 1 for r in out.step_rewards)
