"""The ExTrans format gate: <think> reasoning </think> then the translation only."""

import pytest

from rewardkit_translation.format import LABELS_BY_LANGUAGE, extract_translation, parse_output


@pytest.mark.parametrize(
    "completion, translation",
    [
        ("<think>simple sentence</think>Das Wetter ist schön.", "Das Wetter ist schön."),
        ("  <think>\nline 1\nline 2\n</think>\n\nBonjour le monde.\n", "Bonjour le monde."),
        ("<think></think>Hola.", "Hola."),  # empty reasoning is still the format
        ("<think>x</think>第一行。\n第二行。", "第一行。\n第二行。"),  # multi-line translation
        ("<think>x</think>Notable results were achieved.", "Notable results were achieved."),
    ],
)
def test_valid_outputs(completion, translation):
    parsed = parse_output(completion)
    assert parsed.valid, parsed.reason
    assert parsed.translation == translation
    assert parsed.reason == ""


def test_reasoning_is_returned():
    parsed = parse_output("<think> think hard </think> Ciao.")
    assert parsed.reasoning == "think hard"


@pytest.mark.parametrize(
    "completion, reason",
    [
        ("Das Wetter ist schön.", "no <think> block"),
        ("", "no <think> block"),
        ("Sure! <think>x</think>Hallo.", "text before <think>"),
        ("<think>still thinking ...", "not closed"),
        ("<think>x</think>", "no translation"),
        ("<think>x</think>   \n  ", "no translation"),
        ("<think>a</think>Hallo.<think>b</think>Hallo!", "exactly one block"),
        ("<think>a</think>Hallo.</think>", "exactly one block"),
        ("<think>a<think>b</think>Hallo.", "exactly one block"),
        ("<think>x</think>Hallo Welt.\nNote: I kept it informal.", "commentary"),
        ("<think>x</think>Translation: Hallo Welt.", "commentary"),
        ("<think>x</think>**Explanation**: literal.\nHallo.", "commentary"),
        ("<think>x</think>Hallo.\n\nÜbersetzung: Hallo.", "commentary"),
        ("<think>x</think>翻译：你好。", "commentary"),
        ("<think>x</think>Перевод: Привет.", "commentary"),
        ("<think>x</think>```\nHallo.\n```", "code fence"),
    ],
)
def test_malformed_outputs_fail_the_gate(completion, reason):
    parsed = parse_output(completion)
    assert not parsed.valid
    assert parsed.translation == ""
    assert reason in parsed.reason


def test_non_string_completion_is_an_error():
    with pytest.raises(TypeError, match="completion must be a string"):
        parse_output(None)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("<think>x</think> Hallo. ", "Hallo."),
        ("Hallo.", "Hallo."),  # an exemplar model that does not reason
        ("<think>unfinished", ""),
        ("<think>a</think>b</think> c", "c"),  # the text after the last </think>
    ],
)
def test_extract_translation(text, expected):
    assert extract_translation(text) == expected


@pytest.mark.parametrize("lang", sorted(LABELS_BY_LANGUAGE))
def test_commentary_labels_in_each_language(lang):
    for label in LABELS_BY_LANGUAGE[lang].split("|"):
        for colon in (":", "："):
            parsed = parse_output(f"<think>x</think>Hallo.\n{label.capitalize()}{colon} text")
            assert not parsed.valid and "commentary" in parsed.reason, (label, colon)


def test_colons_inside_a_translation_are_fine():
    parsed = parse_output("<think>x</think>Le train part à 10:30, voie 2 : quai B.")
    assert parsed.valid
