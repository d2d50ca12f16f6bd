"""Shared fixtures of the math tests: one verifier-backed reward for the whole session
(its worker process takes a few seconds to import sympy and math-verify)."""

import pytest

from rewardkit_math.accuracy import MathAccuracy


@pytest.fixture(scope="session")
def accuracy() -> MathAccuracy:
    return MathAccuracy(timeout=3.0, num_workers=1)


@pytest.fixture()
def bpe_tokenizer():
    """A tiny BPE tokenizer built in code: characters a b c, space, newline and the merge
    "ab", so that one text has several valid tokenizations; decoding concatenates."""
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "a": 1, "b": 2, "c": 3, " ": 4, "\n": 5, "ab": 6, "<unk>": 7}
    tok = Tokenizer(models.BPE(vocab, [("a", "b")], unk_token="<unk>"))
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>")
