"""A Hugging Face model folder described from its config, headers and tokenizer files.

Hashes are computed over canonical bytes (JSON re-serialised with sorted keys), so the
same tokenizer saved by two library versions hashes the same, while any change to its
vocabulary, merges or special tokens changes the hash. The chat template is hashed
apart, and left out of the tokenizer hash, because it changes on its own.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shared.catalogue import BaseModelSpec
from shared.safetensors_header import HeaderError, read_header_file

# Hashed in this order, each framed by its name and length; JSON ones canonicalised.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",  # a sentencepiece model, hashed as raw bytes
)
TOKENIZER_CONFIG = "tokenizer_config.json"
TEMPLATE_FILE = "chat_template.jinja"
NO_TEMPLATE = "none"
MAX_JSON_BYTES = 64 * 1024 * 1024
NOT_LINEAR = ("embed", "lm_head", "norm", "wte", "wpe")


class FolderError(ValueError):
    """A model or tokenizer file that is missing, unreadable or not what its name says."""


def describe_base_model(
    folder: Path,
    *,
    model_id: str,
    revision: str,
    tokenizer_revision: str,
    quantization_profiles: tuple[str, ...] = ("bf16",),
) -> BaseModelSpec:
    """The base model's spec from `config.json`, weight headers and tokenizer files."""
    config = _load_json(folder / "config.json")
    architectures = config.get("architectures") or [""]
    modules: dict[str, tuple[int, int]] = {}
    shards = sorted(folder.glob("model*.safetensors"))
    if not shards:
        raise FolderError(f"{folder} holds no model*.safetensors file")
    for shard in shards:
        try:
            header = read_header_file(shard)
        except HeaderError as exc:
            raise FolderError(f"{shard.name}: {exc}") from exc
        modules.update(linear_modules({n: t.shape for n, t in header.tensors.items()}))
    return BaseModelSpec(
        model_id=model_id,
        revision=revision,
        architecture=str(architectures[0]),
        modules=modules,
        vocab_size=int(config["vocab_size"]),
        hidden_size=int(config["hidden_size"]),
        tokenizer_revision=tokenizer_revision,
        tokenizer_hash=tokenizer_hash(folder),
        chat_template_hash=chat_template_hash(folder),
        quantization_profiles=quantization_profiles,
    )


def linear_modules(shapes: Mapping[str, tuple[int, ...]]) -> dict[str, tuple[int, int]]:
    """Every 2-D `*.weight` that is a linear layer (not an embedding, head or norm)."""
    found: dict[str, tuple[int, int]] = {}
    for name, shape in shapes.items():
        if not name.endswith(".weight") or len(shape) != 2:
            continue
        module = name.removesuffix(".weight")
        short = module.rsplit(".", 1)[-1]
        if not any(marker in short for marker in NOT_LINEAR):
            found[module] = (shape[0], shape[1])
    return found


def tokenizer_hash(folder: Path) -> str:
    return compute_tokenizer_hash(read_documents(folder, TOKENIZER_FILES))


def chat_template_hash(folder: Path) -> str:
    return compute_chat_template_hash(read_documents(folder, (TOKENIZER_CONFIG, TEMPLATE_FILE)))


def read_documents(folder: Path, names: tuple[str, ...]) -> dict[str, bytes]:
    """The named files that exist in `folder`, each bounded in size."""
    documents: dict[str, bytes] = {}
    for name in names:
        path = folder / name
        if path.is_file():
            if path.stat().st_size > MAX_JSON_BYTES:
                raise FolderError(f"{name} exceeds {MAX_JSON_BYTES} bytes")
            documents[name] = path.read_bytes()
    return documents


def compute_tokenizer_hash(documents: Mapping[str, bytes]) -> str:
    """sha256 over the tokenizer files present, canonicalised, chat template removed."""
    if not any(name in documents for name in TOKENIZER_FILES if name != "special_tokens_map.json"):
        raise FolderError("no tokenizer.json, tokenizer_config.json or tokenizer.model")
    digest = hashlib.sha256()
    for name in TOKENIZER_FILES:
        if name not in documents:
            continue
        data = documents[name]
        if name.endswith(".json"):
            body = _parse_json(name, data)
            if name == TOKENIZER_CONFIG:
                body.pop("chat_template", None)
            text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
            data = text.encode("utf-8")
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return "sha256:" + digest.hexdigest()


def compute_chat_template_hash(documents: Mapping[str, bytes]) -> str:
    """sha256 of the template text, byte for byte; `NO_TEMPLATE` when there is none.

    A `chat_template.jinja` file wins over the config's key, as in transformers.
    """
    if TEMPLATE_FILE in documents:
        text = documents[TEMPLATE_FILE]
    else:
        config = (
            _parse_json(TOKENIZER_CONFIG, documents[TOKENIZER_CONFIG])
            if TOKENIZER_CONFIG in documents
            else {}
        )
        template = config.get("chat_template")
        if template is None:
            return NO_TEMPLATE
        if isinstance(template, str):
            text = template.encode("utf-8")
        else:  # named templates: a list of {"name", "template"} objects
            text = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(text).hexdigest()


def _load_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FolderError(f"{path} is missing")
    if path.stat().st_size > MAX_JSON_BYTES:
        raise FolderError(f"{path} exceeds {MAX_JSON_BYTES} bytes")
    return _parse_json(path.name, path.read_bytes())


def _parse_json(name: str, data: bytes) -> dict[str, Any]:
    try:
        body = json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FolderError(f"{name} is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise FolderError(f"{name} is not a JSON object")
    return body
