"""Reads what the checks need from the artifact store: hashes, headers, configs, tokenizer.

Every read is bounded: blobs are hashed in chunks, headers parsed by the bounded parser,
JSON documents refused above a size, and pickle-bearing files never read past their
first bytes. Nothing here decides; `checks.check_revision` does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from services.validator.checks import RevisionInputs
from services.validator.integrity import is_weight_file
from shared.artifacts import StoreError, hash_file
from shared.catalogue import BaseModelSpec, EnvironmentSpec
from shared.hf_folder import (
    TEMPLATE_FILE,
    TOKENIZER_CONFIG,
    TOKENIZER_FILES,
    FolderError,
    compute_chat_template_hash,
    compute_tokenizer_hash,
)
from shared.manifest import Manifest
from shared.safetensors_header import (
    MAX_HEADER_BYTES,
    SNIFF_BYTES,
    HeaderError,
    SafetensorsHeader,
    read_header,
    sniff_format,
)

ADAPTER_CONFIG = "adapter_config.json"
MAX_CONFIG_BYTES = 1024 * 1024
MAX_TOKENIZER_BYTES = 64 * 1024 * 1024


class BlobStore(Protocol):
    def blob_path(self, sha256: str) -> Path: ...


def read_revision_inputs(
    store: BlobStore,
    manifest: Manifest,
    base: BaseModelSpec | None,
    environments: Iterable[EnvironmentSpec],
    *,
    max_header_bytes: int = MAX_HEADER_BYTES,
    verify_hashes: bool = True,
) -> RevisionInputs:
    """The inputs for `check_revision`; `environments` may hold more than the targets.

    `verify_hashes=False` trusts the content-addressed store's names and checks sizes
    only: validation then reads headers alone, whatever the weights weigh. The default
    re-hashes every byte, so a blob changed after ingest is caught.
    """
    blobs = {e.path: p for e in manifest.files if (p := _blob(store, e.sha256)) is not None}
    by_name = {env.name: env for env in environments}
    config, config_error = _read_config(blobs.get(ADAPTER_CONFIG))
    return RevisionInputs(
        manifest=manifest,
        actual_hashes={
            path: hash_file(blob) if verify_hashes else (sha, blob.stat().st_size)
            for (path, blob), sha in ((item, _sha_of(manifest, item[0])) for item in blobs.items())
        },
        headers={
            path: _read_header(blob, max_header_bytes)
            for path, blob in blobs.items()
            if is_weight_file(path)
        },
        sniffed={path: _sniff(blob) for path, blob in blobs.items()},
        adapter_config=config,
        adapter_config_error=config_error,
        tokenizer_hash_from_files=_shipped_hash(blobs, TOKENIZER_FILES, compute_tokenizer_hash),
        chat_template_hash_from_files=_shipped_hash(
            blobs, (TOKENIZER_CONFIG, TEMPLATE_FILE), compute_chat_template_hash
        ),
        base=base,
        environments=[by_name[n] for n in manifest.target_environments if n in by_name],
        unknown_environments=[n for n in manifest.target_environments if n not in by_name],
    )


def _sha_of(manifest: Manifest, path: str) -> str:
    entry = manifest.file(path)
    return entry.sha256 if entry else ""


def _blob(store: BlobStore, sha256: str) -> Path | None:
    try:
        path = store.blob_path(sha256)
    except StoreError:
        return None
    return path if path.is_file() else None


def _sniff(blob: Path) -> str:
    with blob.open("rb") as f:
        return sniff_format(f.read(SNIFF_BYTES))


def _read_header(blob: Path, bound: int) -> SafetensorsHeader | HeaderError:
    with blob.open("rb") as f:
        try:
            return read_header(f, blob.stat().st_size, max_header_bytes=bound)
        except HeaderError as exc:
            return exc


def _read_bounded(blob: Path, bound: int) -> bytes:
    with blob.open("rb") as f:
        data = f.read(bound + 1)
    if len(data) > bound:
        raise FolderError(f"{blob.name} exceeds {bound} bytes")
    return data


def _read_config(blob: Path | None) -> tuple[dict[str, Any] | None, str | None]:
    if blob is None:
        return None, None
    try:
        body = json.loads(_read_bounded(blob, MAX_CONFIG_BYTES))
    except FolderError as exc:
        return None, f"larger than {MAX_CONFIG_BYTES} bytes ({exc})"
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return None, f"not JSON: {exc}"
    if not isinstance(body, dict):
        return None, "not a JSON object"
    return body, None


def _shipped_hash(
    blobs: dict[str, Path],
    names: tuple[str, ...],
    compute: Callable[[Mapping[str, bytes]], str],
) -> str | None:
    """The hash of the named files the revision ships; None when it ships none of them."""
    present = {name: blobs[name] for name in names if name in blobs}
    if not present:
        return None
    try:
        return compute({name: _read_bounded(p, MAX_TOKENIZER_BYTES) for name, p in present.items()})
    except FolderError as exc:
        return f"unreadable: {exc}"
