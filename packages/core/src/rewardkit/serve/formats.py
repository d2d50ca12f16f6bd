"""What the reward server accepts: request bodies (pydantic models) and their Samples."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from rewardkit.external import groups_of, sample_from_json
from rewardkit.types import Sample


class ServeError(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


_STRICT = ConfigDict(extra="forbid", strict=True)


class TurnIn(BaseModel):
    model_config = _STRICT
    start: int
    end: int
    action: str = ""
    observation: str = ""
    state: Any = None
    reward: float = 0.0


class SampleIn(BaseModel):
    model_config = _STRICT
    prompt: str | list[dict[str, Any]] = ""
    completion: str
    meta: dict[str, Any] = Field(default_factory=dict)
    group: int | None = None
    completion_ids: list[int] = Field(default_factory=list)
    completion_mask: list[int] | None = None
    turns: list[TurnIn] | None = None
    truncated: bool = False


class ScoreRequest(BaseModel):
    model_config = _STRICT
    samples: list[SampleIn] = Field(min_length=1)
    rewards: str | list[str] | dict[str, float] | None = None


class OpenRLHFRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)  # forks add fields of their own
    query: list[str] = Field(min_length=1)
    prompts: list[str] | None = None
    labels: list[Any] | None = None
    metas: list[dict[str, Any] | None] | None = None


def samples_from_request(body: ScoreRequest) -> list[Sample]:
    """Samples from a /score request; without groups, runs of equal prompts share one."""
    given = [s.group is not None for s in body.samples]
    if any(given) and not all(given):
        raise ServeError(422, "give `group` for every sample or for none")
    groups = (
        [s.group for s in body.samples]
        if all(given)
        else groups_of([json.dumps(s.prompt, sort_keys=True) for s in body.samples])
    )
    try:
        return [sample_from_json(s.model_dump(), g) for s, g in zip(body.samples, groups)]
    except ValueError as exc:  # e.g. completion_mask and completion_ids of other lengths
        raise ServeError(422, f"samples: {exc}") from None


def samples_from_openrlhf(
    body: OpenRLHFRequest, label_key: str = "answer", strip_suffixes: tuple[str, ...] = ()
) -> list[Sample]:
    """Samples from OpenRLHF's remote reward model request (see the package docstring)."""
    n = len(body.query)
    for field in ("prompts", "labels", "metas"):
        values = getattr(body, field)
        if values is not None and len(values) != n:
            raise ServeError(422, f"{field} has {len(values)} entries for {n} queries")
    prompts = body.prompts or [""] * n
    groups, samples = groups_of(prompts), []
    for i, (query, prompt) in enumerate(zip(body.query, prompts)):
        start = query.find(prompt)
        if start < 0:
            raise ServeError(
                422,
                f"query {i} does not contain its prompt, so its response "
                f"cannot be told apart; prompt starts {prompt[:60]!r}",
            )
        response = query[start + len(prompt) :]
        stripped = True
        while stripped:
            stripped = False
            for suffix in strip_suffixes:
                if suffix and response.endswith(suffix):
                    response, stripped = response[: -len(suffix)], True
        meta: dict[str, Any] = dict((body.metas or [None] * n)[i] or {})
        label = (body.labels or [None] * n)[i]
        if isinstance(label, dict):
            meta.update(label)
        elif label is not None:
            meta[label_key] = label
        samples.append(Sample(prompt=prompt, completion=response, meta=meta, group=groups[i]))
    return samples
