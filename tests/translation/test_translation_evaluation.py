"""Corpus BLEU / chrF per direction with the sacrebleu signature, and the CLI."""

import json

import pytest

from rewardkit_translation.cli import main
from rewardkit_translation.dataset import DataError, exemplar_path
from rewardkit_translation.evaluation import evaluate, format_results, read_predictions
from rewardkit_translation.tasks import shipped_data


@pytest.fixture
def data(tmp_path):
    rows = [
        {"id": "a", "source": "x", "source_lang": "en", "target_lang": "de", "reference": "abc"},
        {"id": "b", "source": "y", "source_lang": "en", "target_lang": "zh", "reference": "我"},
        {"id": "c", "source": "z", "source_lang": "en", "target_lang": "de"},  # no reference
    ]
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def test_per_direction_scores_and_signatures(data):
    results, unreferenced = evaluate(data, {"a": "ab", "b": "我"})
    assert unreferenced == 1
    by = {r.direction: r for r in results}
    assert sorted(by) == ["en-de", "en-zh"]
    assert by["en-de"].scores["chrf"].score == pytest.approx(700 / 11)  # hand: see metric tests
    assert by["en-zh"].scores["chrf"].score == pytest.approx(100.0)
    assert "tok:zh" in by["en-zh"].scores["bleu"].signature
    assert "tok:13a" in by["en-de"].scores["bleu"].signature
    text = format_results(results, unreferenced)
    assert "signature: nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:" in text
    assert "1 rows have no reference and were not scored" in text


def test_missing_predictions_are_an_error(data):
    with pytest.raises(DataError, match="1 rows of .* have no prediction \\(first: b\\)"):
        evaluate(data, {"a": "ab"})


def test_predictions_file_formats(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(
        '{"id": "a", "completion": "<think>x</think> ab "}\n{"id": "b", "translation": " 我 "}\n'
    )
    assert read_predictions(path) == {"a": "ab", "b": "我"}
    path.write_text('{"id": "a", "text": "ab"}\n')
    with pytest.raises(DataError, match="p.jsonl:1: a prediction needs 'id' and one of"):
        read_predictions(path)


def test_cli_evaluates_the_shipped_exemplars(capsys):
    data = shipped_data()
    code = main(["evaluate", str(data), "--predictions", str(exemplar_path(data))])
    # the exemplar file only covers en-de: the other directions have no prediction
    assert code == 2 and "have no prediction" in capsys.readouterr().err


def test_cli_prints_corpus_scores_with_signature(tmp_path, capsys):
    rows = [json.loads(x) for x in shipped_data().read_text().splitlines()]
    en_de = [r for r in rows if r["source_lang"] == "en" and r["target_lang"] == "de"]
    data = tmp_path / "en-de.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in en_de))
    preds = tmp_path / "p.jsonl"
    preds.write_text(
        "".join(json.dumps({"id": r["id"], "translation": r["reference"]}) + "\n" for r in en_de)
    )
    assert main(["evaluate", str(data), "--predictions", str(preds)]) == 0
    out = capsys.readouterr().out
    assert "en-de (24 segments)" in out
    assert "BLEU = 100.00" in out and "chrF2 = 100.00" in out
    assert "signature: nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:" in out
