"""Rollouts: sample completions for prompts, single-turn or against a text environment.

A generation backend turns prompt token ids into completion token ids. `HFGenerate`
(transformers' `generate`) is the default; `VLLMGenerate` is optional and import-guarded.
A task may constrain generation (`Task.generation_constraint`): `HFGenerate` then masks the
tokens it does not allow (`AllowedTokens`, a logits processor) before sampling.
`multi_turn_rollout` alternates policy actions and environment observations; the
observation tokens get completion_mask 0, so the loss never trains on them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from transformers import LogitsProcessor, StoppingCriteria

from rewardkit.chat import prompt_ids
from rewardkit.data import left_pad
from rewardkit.envs import TextEnvironment
from rewardkit.trainer.lora_merge import is_peft_model, merge_unsupported, merged_lora
from rewardkit.types import Sample, Turn

log = logging.getLogger(__name__)


@dataclass
class Generated:
    ids: list[int]
    truncated: bool  # hit max_new_tokens without an end-of-sequence or stop string


class GenerationBackend(Protocol):
    def generate(
        self, prompts: list[list[int]], max_new_tokens: int, greedy: bool = False
    ) -> list[Generated]: ...

    def sync_weights(self, model: torch.nn.Module) -> None:
        """Called after every training step with the trained policy."""
        ...


Allowed = Callable[[list[int], list[int]], Sequence[int] | None]  # (prompt, completion) -> ids


def make_backend(
    config: Any,
    tokenizer: Any,
    policy: Callable[[], torch.nn.Module],
    allowed: Allowed | None = None,
):
    """The config's generation backend: "hf" (generate on the policy) or "vllm"; `allowed`:
    the task's generation constraint (`Task.generation_constraint`), if any."""
    c = config
    if c.backend == "vllm":
        if allowed is not None:
            raise ValueError(
                f"task {c.task!r} constrains generation (generation_constraint), which the "
                "vllm backend does not support; use backend 'hf'"
            )
        return VLLMGenerate(
            c.model,
            tokenizer,
            temperature=c.temperature,
            top_p=c.top_p,
            top_k=c.top_k,
            stop_strings=c.stop_strings,
        )
    return HFGenerate(
        policy,
        tokenizer,
        c.temperature,
        c.top_p,
        c.top_k,
        c.stop_strings,
        allowed=allowed,
        merge_lora=c.merge_lora_for_generation,
    )


def encode_prompts(
    tokenizer: Any, prompts: list[Any], max_prompt_length: int, task: str = "?"
) -> tuple[list[list[int]], int]:
    """Token ids of text prompts (or chat messages, through the chat template: an error
    naming `task` when the tokenizer has none), each cut to its last max_prompt_length
    tokens; and how many were cut."""
    ids, cut = [], 0
    for p in prompts:
        tokens = prompt_ids(tokenizer, p, task)
        cut += len(tokens) > max_prompt_length
        ids.append(tokens[-max_prompt_length:])
    return ids, cut


class AllowedTokens(LogitsProcessor):
    """A `generate` logits processor: each row may only continue with the tokens
    `allowed(prompt_ids, completion_ids)` lists (None: any token); the others get -inf
    before temperature and top-k/top-p, so sampling renormalises over the allowed ones."""

    def __init__(self, allowed: Allowed, prompts: list[list[int]], prompt_len: int):
        self.allowed, self.prompts, self.prompt_len = allowed, prompts, prompt_len

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        for b, completion in enumerate(input_ids[:, self.prompt_len :].tolist()):
            ok = self.allowed(self.prompts[b], completion)
            if ok is None:
                continue
            if not len(ok):
                raise ValueError(
                    f"generation_constraint allows no token after completion {completion} "
                    f"(prompt row {b}): it must allow at least one (e.g. eos)"
                )
            keep = torch.full_like(scores[b], float("-inf"))
            keep[list(ok)] = 0.0
            scores[b] = scores[b] + keep
        return scores


class HFGenerate:
    """transformers `generate` on the policy itself (always in sync with its weights);
    with `allowed`, only the tokens it allows are sampled (`AllowedTokens`).

    A LoRA policy generates with its adapters merged into the base weights (`merge_lora`,
    rewardkit.trainer.lora_merge), restored exactly afterwards; where that cannot be done,
    through the adapters, the reason logged once and kept in `merge_fallback`."""

    def __init__(
        self,
        model_fn: Callable[[], torch.nn.Module],
        tokenizer: Any,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = 0,
        stop_strings: list[str] | None = None,
        allowed: Allowed | None = None,
        merge_lora: bool = True,
    ):
        self.model_fn = model_fn  # returns the unwrapped policy (it changes under PEFT/DDP)
        self.allowed = allowed
        self.tokenizer = tokenizer
        self.temperature, self.top_p, self.top_k = temperature, top_p, top_k
        self.stop_strings = list(stop_strings or [])
        self.eos_id = tokenizer.eos_token_id
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_id
        self.merge_lora = merge_lora
        self.merge_fallback: str | None = None  # why a LoRA policy generates unmerged
        self.lora_merged = False  # whether the last generation ran merged

    @torch.no_grad()
    def generate(
        self, prompts: list[list[int]], max_new_tokens: int, greedy: bool = False
    ) -> list[Generated]:
        model = self.model_fn()
        device = next(model.parameters()).device
        batch = left_pad(prompts, self.pad_id, device)
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        kwargs: dict[str, Any] = dict(
            max_new_tokens=max_new_tokens,
            pad_token_id=self.pad_id,
            eos_token_id=self.eos_id,
        )
        if greedy:
            kwargs.update(do_sample=False)
        else:
            kwargs.update(
                do_sample=True, temperature=self.temperature, top_p=self.top_p, top_k=self.top_k
            )
        if self.stop_strings:
            stop = StopOnText(self.tokenizer, self.stop_strings, batch["input_ids"].shape[1])
            kwargs.update(stopping_criteria=[stop])
        if self.allowed is not None:
            width = batch["input_ids"].shape[1]
            kwargs.update(logits_processor=[AllowedTokens(self.allowed, prompts, width)])
        was_training = model.training
        model.eval()
        try:
            with self._merged(model):
                out = model.generate(**batch, **kwargs)
        finally:
            model.train(was_training)
        completions = out[:, batch["input_ids"].shape[1] :].tolist()
        return [self._trim(ids, max_new_tokens) for ids in completions]

    def _merged(self, model: torch.nn.Module) -> contextlib.AbstractContextManager:
        """`merged_lora` for a LoRA policy that merges; otherwise nothing."""
        self.lora_merged = False
        if not self.merge_lora or not is_peft_model(model) or self.merge_fallback:
            return contextlib.nullcontext()
        reason = merge_unsupported(model)
        if reason is not None:
            self.merge_fallback = reason
            log.warning("LoRA policy generates through its adapters, unmerged: %s", reason)
            return contextlib.nullcontext()
        self.lora_merged = True
        return merged_lora(model)

    def sync_weights(self, model: torch.nn.Module) -> None:
        """Nothing to do: generation runs on the policy itself."""

    def _trim(self, ids: list[int], max_new_tokens: int) -> Generated:
        """Cut at the first end-of-sequence (kept), drop trailing padding."""
        if self.eos_id in ids:
            return Generated(ids[: ids.index(self.eos_id) + 1], truncated=False)
        while ids and ids[-1] == self.pad_id:
            ids = ids[:-1]
        if len(ids) < max_new_tokens:  # stopped early: a stop string
            return Generated(ids, truncated=False)
        stopped = StopOnText(self.tokenizer, self.stop_strings, 0).stopped(ids)
        return Generated(ids, truncated=not stopped)


class StopOnText(StoppingCriteria):
    """A `generate` stopping criterion: a sequence is done once its last few generated tokens
    decode (special tokens left out) to text that holds a stop string. transformers' own
    `stop_strings` first indexes the whole vocabulary, which took minutes per process for
    SmolLM2's 49k tokens on this CPU."""

    TAIL_TOKENS = 8  # a stop string completes within the last few tokens

    def __init__(self, tokenizer: Any, stop_strings: list[str], prompt_len: int):
        self.tokenizer, self.stop_strings, self.prompt_len = tokenizer, stop_strings, prompt_len

    def stopped(self, ids: list[int]) -> bool:
        tail = self.tokenizer.decode(ids[-self.TAIL_TOKENS :], skip_special_tokens=True)
        return any(s in tail for s in self.stop_strings)

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        generated = input_ids[:, self.prompt_len :].tolist()
        done = [self.stopped(ids) for ids in generated]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


class VLLMGenerate:
    """Generation with vLLM, weights pushed each step. Not a dependency of rewardkit:
    vLLM pins its own torch, so install a vLLM build that matches yours on a GPU machine.

    Experimental: vLLM's internal weight-loading API changes between versions.
    """

    def __init__(self, model_path: str, tokenizer: Any, **sampling: Any):
        try:
            import vllm
        except ImportError as exc:
            raise ImportError(
                "backend 'vllm' needs vLLM, which is not installed: install a vLLM build "
                "matching your torch (`uv pip install vllm`) on a machine with a supported "
                "GPU, or use backend 'hf' (the default)"
            ) from exc
        self.vllm = vllm
        self.llm = vllm.LLM(model=model_path, enable_prefix_caching=True)
        self.tokenizer = tokenizer
        self.sampling = sampling

    def sync_weights(self, model: torch.nn.Module) -> None:
        """vLLM generates from its own copy of the weights: push the trained ones."""
        runner = self.llm.llm_engine.model_executor.driver_worker.model_runner
        runner.model.load_weights(model.state_dict().items())

    def generate(
        self, prompts: list[list[int]], max_new_tokens: int, greedy: bool = False
    ) -> list[Generated]:
        params = self.vllm.SamplingParams(
            max_tokens=max_new_tokens,
            temperature=0.0 if greedy else self.sampling.get("temperature", 1.0),
            top_p=self.sampling.get("top_p", 1.0),
            top_k=self.sampling.get("top_k", 0) or -1,
            stop=self.sampling.get("stop_strings") or None,
        )
        outs = self.llm.generate([{"prompt_token_ids": p} for p in prompts], params)
        return [
            Generated(list(o.outputs[0].token_ids), o.outputs[0].finish_reason == "length")
            for o in outs
        ]


def single_turn_rollout(
    backend: GenerationBackend,
    tokenizer: Any,
    rows: list[dict[str, Any]],
    prompt_ids: list[list[int]],
    prompts: list[Any],
    num_generations: int,
    max_new_tokens: int,
    group_offset: int = 0,
    greedy: bool = False,
) -> list[Sample]:
    """num_generations completions per prompt; sample k*G .. k*G+G-1 belong to prompt k."""
    repeated = [ids for ids in prompt_ids for _ in range(num_generations)]
    generated = backend.generate(repeated, max_new_tokens, greedy=greedy)
    samples = []
    for j, gen in enumerate(generated):
        k = j // num_generations
        samples.append(
            Sample(
                prompt=prompts[k],
                completion=tokenizer.decode(gen.ids, skip_special_tokens=True),
                prompt_ids=prompt_ids[k],
                completion_ids=gen.ids,
                group=group_offset + k,
                meta=rows[k],
                truncated=gen.truncated,
            )
        )
    return samples


def multi_turn_rollout(
    backend: GenerationBackend,
    tokenizer: Any,
    make_env: Callable[[dict[str, Any]], TextEnvironment],
    rows: list[dict[str, Any]],
    prompt_ids: list[list[int]],
    prompts: list[Any],
    num_generations: int,
    max_new_tokens: int,
    max_turns: int,
    max_episode_tokens: int,
    group_offset: int = 0,
    seed: int = 0,
    greedy: bool = False,
) -> list[Sample]:
    """Episodes against text environments, batched across episodes turn by turn.

    The environment's first observation is appended to the prompt. Each turn the policy
    writes an action (mask 1), the environment answers (mask 0). An episode ends when
    the environment says done, after max_turns actions, or at max_episode_tokens.
    Sample.meta is the row plus `episode`: return, success, turns, invalid actions.
    """

    def encode(text: str) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False)

    episodes = []
    for j in range(len(rows) * num_generations):
        k = j // num_generations
        env = make_env(rows[k])
        first = env.reset(rows[k], seed=seed + j)
        episodes.append(
            dict(
                env=env,
                k=k,
                context=prompt_ids[k] + encode(first),
                ids=[],
                mask=[],
                turns=[],
                ret=0.0,
                done=False,
                truncated=False,
                info={},
                first=first,
            )
        )
    for _ in range(max_turns):
        active = [e for e in episodes if not e["done"]]
        if not active:
            break
        budgets = [max_episode_tokens - len(e["ids"]) for e in active]
        n_new = max(1, min(max_new_tokens, max(budgets)))
        actions = backend.generate([e["context"] + e["ids"] for e in active], n_new, greedy)
        for e, gen, budget in zip(active, actions, budgets, strict=True):
            ids = gen.ids[: max(budget, 0)]
            start = len(e["ids"])
            e["ids"] += ids
            e["mask"] += [1] * len(ids)
            action = tokenizer.decode(ids, skip_special_tokens=True)  # <eos> is no part of it
            state = e["env"].state()
            result = e["env"].step(action)
            e["ret"] += result.reward
            e["info"] = result.info
            obs_ids = [] if result.done else encode(result.observation)
            e["turns"].append(
                Turn(
                    start,
                    start + len(ids),
                    action,
                    result.observation,
                    state,
                    result.reward,
                    e["env"].state(),
                )
            )
            e["ids"] += obs_ids
            e["mask"] += [0] * len(obs_ids)
            if result.done:
                e["done"] = True
            elif len(e["ids"]) >= max_episode_tokens or gen.truncated and len(ids) >= budget:
                e["done"] = e["truncated"] = True
    samples = []
    for e in episodes:
        k = e["k"]
        ids, mask = e["ids"][:max_episode_tokens], e["mask"][:max_episode_tokens]
        meta = dict(rows[k])
        meta["episode"] = {
            "return": e["ret"],
            "success": bool(e["info"].get("success", False)),
            "turns": len(e["turns"]),
            "invalid_actions": int(e["info"].get("invalid_actions", 0)),
            "finished": e["done"] and not e["truncated"],
        }
        samples.append(
            Sample(
                prompt=prompts[k],
                completion=tokenizer.decode(ids, skip_special_tokens=True),
                prompt_ids=e["context"],
                completion_ids=ids,
                completion_mask=mask,
                group=group_offset + k,
                meta=meta,
                turns=e["turns"],
                truncated=not e["done"] or e["truncated"],
            )
        )
    return samples
