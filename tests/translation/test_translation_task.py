"""translation.jsonl: rows, splits, exemplar files, prompt templates for all directions."""

import json

import pytest

from rewardkit.registry import TASKS
from rewardkit_translation.dataset import DataError, exemplar_path, load_rows, read_exemplars
from rewardkit_translation.languages import LANGUAGES
from rewardkit_translation.prompts import TEMPLATES, render, resolve_template
from rewardkit_translation.tasks import JsonlTranslation, shipped_data


def write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


ROWS = [
    {
        "id": f"r{i}",
        "source": f"Sentence number {i} is here.",
        "source_lang": "en",
        "target_lang": "de",
        "reference": f"Satz Nummer {i} ist hier.",
    }
    for i in range(6)
]


def test_registered_and_loads_the_shipped_data():
    assert TASKS.get("translation.jsonl") is JsonlTranslation
    task = JsonlTranslation()
    train, test = task.rows("train"), task.rows("test")
    assert len(test) == 8 and len(train) == 144 - 8
    assert {r["id"] for r in train}.isdisjoint(r["id"] for r in test)
    directions = {f"{r['source_lang']}-{r['target_lang']}" for r in train + test}
    assert directions == {"en-de", "de-en", "en-fr", "fr-en", "en-es", "es-en"}
    # not every row has an exemplar: the default reward is the multilingual one
    assert [s.name for s in task.rewards] == ["translation.multilingual"]


def test_shipped_exemplars_make_exemplar_the_default_reward():
    task = JsonlTranslation(directions=["en-de"], test_size=4)
    rows = task.rows("train") + task.rows("test")
    assert len(rows) == 24 and all(r["exemplar"] for r in rows)
    assert [s.name for s in task.rewards] == ["translation.exemplar"]
    assert len(read_exemplars(exemplar_path(shipped_data()))[0]) == 24


def test_prompt_is_chat_messages_from_the_template():
    task = JsonlTranslation(directions=["en-de"], system="Be precise.")
    row = task.rows("train")[0]
    messages = task.prompt(row)
    assert messages[0] == {"role": "system", "content": "Be precise."}
    assert messages[1]["role"] == "user"
    assert messages[1]["content"].startswith("Translate the following English text into German.")
    assert messages[1]["content"].endswith("\n\n" + row["source"])
    plain = JsonlTranslation(directions=["en-de"], chat=False, template="plain")
    assert plain.prompt(row) == TEMPLATES["plain"].format(
        source_name="English", target_name="German", source=row["source"]
    )


def test_all_directions_among_the_eleven_languages_render():
    n = 0
    for src in LANGUAGES:
        for tgt in LANGUAGES:
            if src != tgt:
                text = render(
                    "{source_name}->{target_name} ({source_lang}-{target_lang}): {source}",
                    {"source": "x", "source_lang": src, "target_lang": tgt},
                )
                assert text == f"{LANGUAGES[src]}->{LANGUAGES[tgt]} ({src}-{tgt}): x"
                n += 1
    assert n == 110
    assert "Chinese" in render("think", {"source": "x", "source_lang": "ja", "target_lang": "zh"})


def test_bad_templates():
    with pytest.raises(ValueError, match=r"unknown placeholder\(s\) \['language'\]"):
        resolve_template("Translate {source} into {language}")
    with pytest.raises(ValueError, match="neither a built-in"):
        resolve_template("thinking")


def test_splits_from_field_and_from_test_path(tmp_path):
    marked = [dict(r, split="test") if i < 2 else r for i, r in enumerate(ROWS)]
    task = JsonlTranslation(path=str(write(tmp_path / "m.jsonl", marked)))
    assert [r["id"] for r in task.rows("test")] == ["r0", "r1"]
    assert len(task.rows("train")) == 4
    task = JsonlTranslation(
        path=str(write(tmp_path / "a.jsonl", ROWS[:4])),
        test_path=str(write(tmp_path / "b.jsonl", ROWS[4:])),
    )
    assert [r["id"] for r in task.rows("test")] == ["r4", "r5"]
    with pytest.raises(ValueError, match="splits 'train' and 'test'"):
        task.rows("validation")
    with pytest.raises(ValueError, match="test_size must be in"):
        JsonlTranslation(path=str(tmp_path / "a.jsonl"), test_size=4)


def test_exemplar_file_beside_the_data_is_attached(tmp_path):
    data = write(tmp_path / "d.jsonl", ROWS)
    write(exemplar_path(data), [{"id": r["id"], "exemplar": "E" + r["id"]} for r in ROWS])
    assert exemplar_path(data).name == "d.exemplars.jsonl"
    task = JsonlTranslation(path=str(data), test_size=0)
    assert [r["exemplar"] for r in task.rows("train")] == [f"Er{i}" for i in range(6)]
    assert [s.name for s in task.rewards] == ["translation.exemplar"]
    without = JsonlTranslation(path=str(data), test_size=0, exemplars=None)
    assert "exemplar" not in without.rows("train")[0]
    with pytest.raises(FileNotFoundError, match="exemplar file"):
        JsonlTranslation(path=str(data), exemplars=str(tmp_path / "none.jsonl"))


def test_directions_filter_names_missing_directions(tmp_path):
    data = write(tmp_path / "d.jsonl", ROWS)
    with pytest.raises(ValueError, match=r"directions \['en-zh'\] have no rows.*present: en-de"):
        JsonlTranslation(path=str(data), directions=["en-zh"])


def test_source_language_is_identified_and_ids_are_stable(tmp_path):
    data = write(
        tmp_path / "d.jsonl", [{"source": "Der Hund schläft im Garten.", "target_lang": "en"}]
    )
    (row,) = load_rows(data)
    assert row["source_lang"] == "de"
    assert len(row["id"]) == 16 and load_rows(data)[0]["id"] == row["id"]


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"source": "x", "target_lang": "de"', r"d.jsonl:2: invalid JSON"),
        ('["x"]', r"d.jsonl:2: each line must be a JSON object"),
        ('{"source": "", "target_lang": "de"}', r"d.jsonl:2: 'source' must be a non-empty"),
        ('{"source": "Hallo"}', r"d.jsonl:2: missing 'target_lang'"),
        ('{"source": "Hallo", "target_lang": "pt"}', r"d.jsonl:2: target_lang 'pt' is not one"),
        ('{"source": "Hi", "source_lang": "en", "target_lang": "en"}', r"both 'en'"),
        (
            '{"source": "Hi", "source_lang": "en", "target_lang": "de", "reference": 3}',
            r"'reference' must be a string",
        ),
        (
            '{"source": "Hi", "source_lang": "en", "target_lang": "de", "split": "dev"}',
            r"'split' must be 'train' or 'test'",
        ),
        (
            '{"id": "a", "source": "Hi", "source_lang": "en", "target_lang": "de"}',
            r"d.jsonl:2: duplicate id 'a' \(first on line 1\)",
        ),
    ],
)
def test_malformed_rows_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "d.jsonl"
    path.write_text(
        '{"id": "a", "source": "Hi", "source_lang": "en", "target_lang": "de"}\n' + line + "\n"
    )
    with pytest.raises(DataError, match=message):
        load_rows(path)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_rows(tmp_path / "nope.jsonl")
    (tmp_path / "e.jsonl").write_text("\n")
    with pytest.raises(DataError, match="no rows"):
        load_rows(tmp_path / "e.jsonl")
