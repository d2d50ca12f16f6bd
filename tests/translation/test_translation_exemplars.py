"""Exemplar preparation against the scripted chat server: output beside the data,
resume after an interruption, cut-off last lines, empty answers, and the CLI."""

import json

import pytest

from rewardkit_translation.chat import ChatError, OpenAIChat
from rewardkit_translation.cli import main
from rewardkit_translation.dataset import exemplar_path, read_exemplars
from rewardkit_translation.exemplars import generate_exemplars

SOURCES = ["The sun is up.", "Dogs bark.", "We eat rice.", "It is late.", "Read the book."]


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "news.jsonl"
    rows = [
        {"id": f"s{i}", "source": s, "source_lang": "en", "target_lang": "de"}
        for i, s in enumerate(SOURCES)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def source_of(server, body):
    """The source text a request asks to translate: the user prompt's last paragraph."""
    return server.user_text(body).rsplit("\n\n", 1)[1]


def translator(server, fail_on=None):
    """Answers '<think>..</think>DE: <source>'; HTTP 400 for the source `fail_on`."""

    def respond(body):
        source = source_of(server, body)
        if source == fail_on:
            return 400, "refused"
        return f"<think>easy</think>DE: {source}"

    return respond


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_writes_exemplars_beside_the_data(chat_server, data):
    chat_server.responder = translator(chat_server)
    run = generate_exemplars(data, OpenAIChat(chat_server.url, model="strong"), progress=False)
    assert run.output == exemplar_path(data) == data.parent / "news.exemplars.jsonl"
    assert (run.total, run.skipped, run.written, run.empty) == (5, 0, 5, [])
    got = {e["id"]: e for e in lines(run.output)}
    assert got["s1"] == {"id": "s1", "exemplar": "DE: Dogs bark.", "model": "strong"}
    # the "plain" template asks for a German translation of the source
    prompt = chat_server.user_text(chat_server.requests[0])
    assert prompt.startswith("Translate the following English text into German. Write only")


def test_resume_after_interruption(chat_server, data):
    chat_server.responder = translator(chat_server, fail_on="We eat rice.")
    chat = OpenAIChat(chat_server.url, http_retries=0)
    with pytest.raises(ChatError, match="HTTP 400"):
        generate_exemplars(data, chat, concurrency=1, progress=False)
    first = lines(exemplar_path(data))
    assert [e["id"] for e in first] == ["s0", "s1"]  # one at a time, in order, up to the failure

    chat_server.requests.clear()
    chat_server.responder = translator(chat_server)
    run = generate_exemplars(data, chat, concurrency=2, progress=False)
    assert (run.skipped, run.written) == (2, 3)
    assert sorted(source_of(chat_server, r) for r in chat_server.requests) == sorted(SOURCES[2:])
    final = lines(exemplar_path(data))
    assert final[:2] == first and sorted(e["id"] for e in final) == [f"s{i}" for i in range(5)]

    chat_server.requests.clear()  # a third run has nothing left to do
    assert generate_exemplars(data, chat, progress=False).written == 0
    assert chat_server.requests == []


def test_a_cut_off_last_line_is_redone(chat_server, data):
    out = exemplar_path(data)
    out.write_text(
        '{"id": "s0", "exemplar": "DE: The sun is up.", "model": "m"}\n{"id": "s1", "exempl'
    )  # killed in the middle of a write
    assert read_exemplars(out)[0] == {"s0": "DE: The sun is up."}
    chat_server.responder = translator(chat_server)
    run = generate_exemplars(data, OpenAIChat(chat_server.url), progress=False)
    assert (run.skipped, run.written) == (1, 4)
    assert sorted(e["id"] for e in lines(out)) == [f"s{i}" for i in range(5)]


def test_a_complete_last_line_without_newline_is_kept(chat_server, data):
    out = exemplar_path(data)
    out.write_text('{"id": "s0", "exemplar": "X", "model": "m"}')
    chat_server.responder = translator(chat_server)
    run = generate_exemplars(data, OpenAIChat(chat_server.url), progress=False)
    assert (run.skipped, run.written) == (1, 4)
    assert len(lines(out)) == 5 and lines(out)[0]["exemplar"] == "X"


def test_a_corrupt_middle_line_is_an_error(tmp_path):
    out = tmp_path / "x.exemplars.jsonl"
    out.write_text('garbage\n{"id": "s0", "exemplar": "X"}\n')
    with pytest.raises(ValueError, match="x.exemplars.jsonl:1: bad exemplar line"):
        read_exemplars(out)


def test_empty_answers_are_reported_not_written(chat_server, data):
    chat_server.responder = lambda body: (
        "<think>hmm"
        if source_of(chat_server, body) == "Dogs bark."
        else "DE: " + source_of(chat_server, body)
    )
    run = generate_exemplars(data, OpenAIChat(chat_server.url), progress=False)
    assert run.empty == ["s1"] and run.written == 4
    assert "s1" not in read_exemplars(run.output)[0]


def test_cli_exemplars_with_progress(chat_server, data, capsys):
    chat_server.responder = translator(chat_server)
    assert main(["exemplars", str(data), "--url", chat_server.url, "--model", "m"]) == 0
    assert "5 exemplars written, 0 already present, 5 rows" in capsys.readouterr().out
    assert main(["exemplars", str(data), "--url", chat_server.url, "--no-progress"]) == 0
    assert "0 exemplars written, 5 already present" in capsys.readouterr().out
    assert main(["exemplars", str(data)]) == 2
    assert "exactly one of --url" in capsys.readouterr().err


def test_local_model_path(tmp_path, data):
    """Exemplars from a local transformers model loaded from a path (a random tiny model:
    its answers are gibberish, but each is either written or reported as empty)."""
    from rewardkit.tiny import build_tiny_model
    from rewardkit_translation.chat import TransformersChat

    build_tiny_model(tmp_path / "model", seed=0, hidden_size=32, num_layers=1)
    chat = TransformersChat(str(tmp_path / "model"), max_new_tokens=6, device="cpu")
    run = generate_exemplars(data, chat, progress=False)
    assert run.written + len(run.empty) == 5
    assert all(e["model"] == str(tmp_path / "model") for e in lines(run.output))
