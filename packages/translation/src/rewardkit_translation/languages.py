"""The 11 languages of mExTrans, language identification and the length-ratio band.

mExTrans (ExTrans, arXiv 2505.12996, Sec. "multilingual extension") covers ar, cs, de, en,
es, fr, it, ja, ko, ru and zh. Language identification uses py3langid (the maintained fork
of langid.py, Lui & Baldwin 2012) restricted to these 11 languages, so that a German output
is never called Luxembourgish.

The length check compares the output length in characters with the source length. Scripts
differ a lot in characters per sentence (a Chinese sentence is about a third as long as its
English translation), so the expected ratio of a pair is `CHARS_PER_EN_CHAR[tgt] /
CHARS_PER_EN_CHAR[src]`. These factors are our own rough estimates from typical parallel
text (not from the paper); override them per pair with `length_bands` where they do not fit.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

LANGUAGES: dict[str, str] = {
    "ar": "Arabic",
    "cs": "Czech",
    "de": "German",
    "en": "English",
    "es": "Spanish",
    "fr": "French",
    "it": "Italian",
    "ja": "Japanese",
    "ko": "Korean",
    "ru": "Russian",
    "zh": "Chinese",
}

# characters of text in the language per character of the same content in English
CHARS_PER_EN_CHAR: dict[str, float] = {
    "ar": 0.85,
    "cs": 0.95,
    "de": 1.15,
    "en": 1.0,
    "es": 1.1,
    "fr": 1.15,
    "it": 1.1,
    "ja": 0.4,
    "ko": 0.45,
    "ru": 1.05,
    "zh": 0.3,
}


def check_language(code: str, what: str = "language") -> str:
    """`code` if it is one of the 11 languages, else a ValueError naming it."""
    if code not in LANGUAGES:
        raise ValueError(
            f"{what} {code!r} is not one of the supported languages: {', '.join(LANGUAGES)}"
        )
    return code


def language_name(code: str) -> str:
    return LANGUAGES[check_language(code)]


@functools.lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(sorted(LANGUAGES))
    return identifier


@dataclass(frozen=True)
class Identified:
    language: str  # one of LANGUAGES
    confidence: float  # normalised probability among the 11 languages


def identify(text: str) -> Identified:
    """The most probable of the 11 languages for `text` (py3langid, naive Bayes over byte
    n-grams, probabilities normalised over the 11 languages)."""
    if not text.strip():
        raise ValueError("cannot identify the language of an empty text")
    language, confidence = _identifier().classify(text)
    return Identified(language, float(confidence))


def expected_length_ratio(source_lang: str, target_lang: str) -> float:
    """Expected len(target) / len(source) in characters for a language pair."""
    check_language(source_lang, "source language")
    check_language(target_lang, "target language")
    return CHARS_PER_EN_CHAR[target_lang] / CHARS_PER_EN_CHAR[source_lang]


def length_band(
    source_lang: str,
    target_lang: str,
    tolerance: float = 2.0,
    overrides: dict[str, list[float]] | None = None,
) -> tuple[float, float]:
    """The accepted [low, high] band of len(output) / len(source) for a pair.

    `overrides` maps "src-tgt" to an explicit [low, high]; otherwise the band is
    [r0 / tolerance, r0 * tolerance] around the expected ratio r0.
    """
    key = f"{source_lang}-{target_lang}"
    if overrides and key in overrides:
        low, high = overrides[key]
        if not 0 <= low < high:
            raise ValueError(f"length band for {key} must satisfy 0 <= low < high, got {low, high}")
        return float(low), float(high)
    if tolerance < 1:
        raise ValueError(f"length tolerance must be >= 1, got {tolerance}")
    r0 = expected_length_ratio(source_lang, target_lang)
    return r0 / tolerance, r0 * tolerance
