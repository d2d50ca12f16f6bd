"""Offline exemplar preparation (ExTrans, arXiv 2505.12996, Sec. 3: a strong model
translates every training source once, before RL; the policy is later compared with it).

`generate_exemplars` asks a chat model (an OpenAI-compatible endpoint or a local
transformers model) to translate each row of a translation JSONL and appends
{"id", "exemplar", "model"} to `<stem>.exemplars.jsonl` beside the data, one line as each
answer arrives. A rerun skips the ids already written (a line cut off by an interruption
is dropped and redone), so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from pathlib import Path

from rewardkit_translation.chat import ChatModel
from rewardkit_translation.dataset import exemplar_path, load_rows, read_exemplars
from rewardkit_translation.format import extract_translation
from rewardkit_translation.prompts import chat_messages


@dataclass
class ExemplarRun:
    output: Path
    total: int  # rows in the data
    skipped: int  # already present before this run
    written: int  # written by this run
    empty: list[str]  # ids whose answer had no translation (not written; a rerun retries)


def _open_for_append(path: Path) -> tuple[dict[str, str], object]:
    """Existing exemplars, and the file opened for appending after dropping a cut-off
    last line (and ending the last complete line with a newline)."""
    done, good = read_exemplars(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.stat().st_size != good:
        with path.open("r+b") as f:
            f.truncate(good)
    handle = path.open("a", encoding="utf-8")
    if good and not path.read_bytes().endswith(b"\n"):
        handle.write("\n")
    return done, handle


async def generate_exemplars_async(
    data: str | Path,
    chat: ChatModel,
    output: str | Path | None = None,
    template: str = "plain",
    system: str | None = None,
    concurrency: int = 4,
    progress: bool = True,
) -> ExemplarRun:
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    rows = load_rows(data)
    output = Path(output) if output is not None else exemplar_path(data)
    done, handle = _open_for_append(output)
    todo = [r for r in rows if r["id"] not in done]
    written: list[str] = []
    empty: list[str] = []
    lock = threading.Lock()
    slots = asyncio.Semaphore(concurrency)

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("exemplars"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        disable=not progress,
    )

    async def one(row: dict, job) -> None:
        async with slots:
            answer = await chat.complete(chat_messages(template, row, system))
        text = extract_translation(answer)
        with lock:
            if text:
                line = {"id": row["id"], "exemplar": text, "model": chat.name}
                handle.write(json.dumps(line, ensure_ascii=False) + "\n")
                handle.flush()
                written.append(row["id"])
            else:
                empty.append(row["id"])
            bar.advance(job)

    try:
        with bar:
            job = bar.add_task("exemplars", total=len(todo))
            try:
                async with asyncio.TaskGroup() as group:  # the first failure cancels the rest
                    for row in todo:
                        group.create_task(one(row, job))
            except ExceptionGroup as eg:  # report the first failure itself
                raise eg.exceptions[0] from eg
    finally:
        handle.close()
    return ExemplarRun(output, len(rows), len(rows) - len(todo), len(written), empty)


def generate_exemplars(data: str | Path, chat: ChatModel, **options) -> ExemplarRun:
    """Synchronous wrapper of `generate_exemplars_async`."""
    return asyncio.run(generate_exemplars_async(data, chat, **options))
