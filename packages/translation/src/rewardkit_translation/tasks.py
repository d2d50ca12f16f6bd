"""`translation.jsonl`: a task over a translation JSONL (see `rewardkit_translation.dataset`).

Rows become `Sample.meta`; the prompt is a template (see `prompts.py`) filled with the
row's source and language pair, as chat messages by default. Default rewards: the
exemplar reward with the metric judge when every row has an exemplar (ExTrans), else
the lightweight multilingual reward (mExTrans).

Splits: rows marked `"split": "test"` form the test split; otherwise `test_path` gives
it; otherwise `test_size` rows are held out by a seeded shuffle.
"""

from __future__ import annotations

import random
from importlib.resources import files
from pathlib import Path
from typing import Any

from rewardkit.tasks.base import RewardSpec, Task
from rewardkit.types import Prompt
from rewardkit_translation.dataset import attach_exemplars, exemplar_path, load_rows, read_exemplars
from rewardkit_translation.prompts import chat_messages, render, resolve_template

SHIPPED_DATA = "parallel.jsonl"


def shipped_data(name: str = SHIPPED_DATA) -> Path:
    """A data file shipped inside the package (rewardkit_translation/data/)."""
    path = Path(str(files("rewardkit_translation") / "data" / name))
    if not path.exists():
        raise FileNotFoundError(f"no shipped translation data named {name!r}")
    return path


class JsonlTranslation(Task):
    """Options: path (default: the small parallel set shipped with the package),
    test_path, test_size (held out when neither split field nor test_path), directions
    (["en-de", ...] to keep), template ("think", "plain" or a format string), system
    (system prompt), chat (chat messages, else plain text), exemplars ("auto": the file
    beside the data; a path; or null), seed."""

    name = "translation.jsonl"
    default_config = {"max_completion_length": 256, "eval_correct_threshold": 0.5}

    def __init__(
        self,
        path: str | None = None,
        test_path: str | None = None,
        test_size: int = 8,
        directions: list[str] | None = None,
        template: str = "think",
        system: str | None = None,
        chat: bool = True,
        exemplars: str | None = "auto",
        seed: int = 0,
    ):
        super().__init__(
            path=path,
            test_path=test_path,
            test_size=test_size,
            directions=directions,
            template=template,
        )
        self.template = resolve_template(template)
        self.system, self.chat = system, chat
        data_path = Path(path) if path is not None else shipped_data()
        rows = self._load(data_path, exemplars, directions)
        marked = [r for r in rows if r.get("split") == "test"]
        if test_path is not None:
            if marked:
                raise ValueError(
                    "translation.jsonl: rows are marked split=test and test_path is set; use one"
                )
            train, test = rows, self._load(Path(test_path), exemplars, directions)
        elif marked:
            train, test = [r for r in rows if r.get("split") != "test"], marked
        else:
            if not 0 <= test_size < len(rows):
                raise ValueError(
                    f"translation.jsonl: test_size must be in [0, {len(rows)}) for {data_path}, got {test_size}"
                )
            order = list(range(len(rows)))
            random.Random(seed).shuffle(order)
            held = set(order[:test_size])
            train = [r for i, r in enumerate(rows) if i not in held]
            test = [r for i, r in enumerate(rows) if i in held]
        if not train:
            raise ValueError(f"translation.jsonl: {data_path} leaves no training rows")
        self._splits = {"train": train, "test": test}
        has_exemplars = all(r.get("exemplar") for r in train + test)
        self.rewards = [
            RewardSpec("translation.exemplar")
            if has_exemplars
            else RewardSpec("translation.multilingual")
        ]

    @staticmethod
    def _load(path: Path, exemplars: str | None, directions: list[str] | None) -> list[dict]:
        rows = load_rows(path)
        if exemplars is not None:
            sidecar = exemplar_path(path) if exemplars == "auto" else Path(exemplars)
            if exemplars != "auto" and not sidecar.exists():
                raise FileNotFoundError(
                    f"translation.jsonl: exemplar file {sidecar} does not exist"
                )
            attach_exemplars(rows, read_exemplars(sidecar)[0])
        if directions is not None:
            present = {f"{r['source_lang']}-{r['target_lang']}" for r in rows}
            missing = set(directions) - present
            if missing:
                raise ValueError(
                    f"translation.jsonl: directions {sorted(missing)} have no rows in {path} "
                    f"(present: {', '.join(sorted(present))})"
                )
            rows = [r for r in rows if f"{r['source_lang']}-{r['target_lang']}" in directions]
        return rows

    def rows(self, split: str) -> list[dict[str, Any]]:
        if split not in self._splits:
            raise ValueError(f"translation.jsonl has splits 'train' and 'test', not {split!r}")
        return self._splits[split]

    def prompt(self, row: dict[str, Any]) -> Prompt:
        if self.chat:
            return chat_messages(self.template, row, self.system)
        return render(self.template, row)
