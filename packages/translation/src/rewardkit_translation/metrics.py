"""sacrebleu metrics: sentence-level chrF / BLEU for rewards, corpus-level for evaluation.

chrF (Popović 2015): character n-gram F-score with beta = 2 (sacrebleu defaults: char
order 6, word order 0). BLEU (Papineni et al. 2002) at sentence level uses effective
order (n-gram orders longer than the hypothesis are left out, sacrebleu's recommendation
for sentence BLEU). BLEU tokenisation follows the target language: "zh" for Chinese,
"char" for Japanese and Korean (sacrebleu's MeCab tokenizers need the extras
`sacrebleu[ja]` / `sacrebleu[ko]`; pass `tokenize=` to use them), "13a" otherwise.
Corpus results carry sacrebleu's signature string so numbers can be reproduced.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sacrebleu.metrics import BLEU, CHRF

METRICS = ("chrf", "bleu")

_BLEU_TOKENIZE = {"zh": "zh", "ja": "char", "ko": "char"}


def bleu_tokenize(target_lang: str | None) -> str:
    """The sacrebleu BLEU tokenizer used for a target language."""
    return _BLEU_TOKENIZE.get(target_lang or "", "13a")


def check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    return metric


@functools.lru_cache(maxsize=16)
def _sentence_bleu(tokenize: str) -> BLEU:
    return BLEU(tokenize=tokenize, effective_order=True)


@functools.lru_cache(maxsize=1)
def _chrf() -> CHRF:
    return CHRF()


def sentence_score(
    metric: str, hypothesis: str, references: list[str], target_lang: str | None = None
) -> float:
    """Sentence chrF or BLEU of `hypothesis` against `references`, on sacrebleu's 0-100 scale."""
    check_metric(metric)
    if not references or any(not isinstance(r, str) for r in references):
        raise ValueError(f"{metric}: references must be a non-empty list of strings")
    if metric == "chrf":
        return float(_chrf().sentence_score(hypothesis, references).score)
    return float(
        _sentence_bleu(bleu_tokenize(target_lang)).sentence_score(hypothesis, references).score
    )


@dataclass(frozen=True)
class CorpusResult:
    metric: str
    score: float
    signature: str
    text: str  # sacrebleu's own formatted line, e.g. "BLEU = 23.10 55.0/30.2/..."

    def __str__(self) -> str:
        return f"{self.text}  [{self.signature}]"


def corpus_scores(
    hypotheses: list[str],
    references: list[str],
    target_lang: str | None = None,
    tokenize: str | None = None,
) -> dict[str, CorpusResult]:
    """Corpus BLEU and chrF (one reference per segment) with their sacrebleu signatures."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    if not hypotheses:
        raise ValueError("corpus metrics need at least one segment")
    bleu = BLEU(tokenize=tokenize or bleu_tokenize(target_lang))
    chrf = CHRF()
    out = {}
    for name, metric in (("bleu", bleu), ("chrf", chrf)):
        result = metric.corpus_score(hypotheses, [references])
        out[name] = CorpusResult(
            name, float(result.score), str(metric.get_signature()), str(result)
        )
    return out
