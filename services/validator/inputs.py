"""Reads what the checks need from the artifact store: hashes, headers, configs, tokenizer.

Every read is bounded: blobs are hashed in chunks, headers parsed by the bounded parser,
float tensors scanned for NaN/inf in chunks of `SCAN_CHUNK_BYTES`, JSON documents refused
above a size, and pickle-bearing files never read past their first bytes. Nothing here
decides; `checks.check_revision` does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from services.validator.checks import RevisionInputs
from services.validator.integrity import is_weight_file
from services.validator.provenance import TokenizerFacts
from services.validator.values import FLOAT_LAYOUTS, NonFinite, count_non_finite
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
ADDED_TOKENS = "added_tokens.json"
MAX_CONFIG_BYTES = 1024 * 1024
MAX_TOKENIZER_BYTES = 64 * 1024 * 1024
SCAN_CHUNK_BYTES = 8 * 1024 * 1024  # a multiple of every float's size
# JSON files read for code references (`auto_map`, ...): every one but the vocabularies,
# which are data a loader never takes code from.
DATA_JSON = ("tokenizer.json", "vocab.json")
MAX_SCANNED_JSON_BYTES = 16 * 1024 * 1024


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
    scan_values: bool | None = None,
    base_tokenizer_files: Mapping[str, bytes] | None = None,
) -> RevisionInputs:
    """The inputs for `check_revision`; `environments` may hold more than the targets.

    `verify_hashes=False` trusts the content-addressed store's names and checks sizes
    only: validation then reads headers alone, whatever the weights weigh, unless
    `scan_values=True`. The default re-hashes every byte, so a blob changed after ingest
    is caught, and scans every float tensor for NaN and infinities.
    `base_tokenizer_files` (the base's tokenizer files, where the caller has them) let
    the tokenizer and chat template findings say what differs.
    """
    blobs = {e.path: p for e in manifest.files if (p := _blob(store, e.sha256)) is not None}
    by_name = {env.name: env for env in environments}
    config, config_error, duplicates = _read_config(blobs.get(ADAPTER_CONFIG))
    headers = {
        path: _read_header(blob, max_header_bytes)
        for path, blob in blobs.items()
        if is_weight_file(path)
    }
    scan = verify_hashes if scan_values is None else scan_values
    shipped_docs = _shipped_documents(blobs)
    return RevisionInputs(
        manifest=manifest,
        actual_hashes={
            path: hash_file(blob) if verify_hashes else (sha, blob.stat().st_size)
            for (path, blob), sha in ((item, _sha_of(manifest, item[0])) for item in blobs.items())
        },
        headers=headers,
        sniffed={path: _sniff(blob) for path, blob in blobs.items()},
        adapter_config=config,
        adapter_config_error=config_error,
        adapter_config_duplicates=duplicates,
        tokenizer_hash_from_files=_shipped_hash(blobs, TOKENIZER_FILES, compute_tokenizer_hash),
        chat_template_hash_from_files=_shipped_hash(
            blobs, (TOKENIZER_CONFIG, TEMPLATE_FILE), compute_chat_template_hash
        ),
        base=base,
        environments=[by_name[n] for n in manifest.target_environments if n in by_name],
        unknown_environments=[n for n in manifest.target_environments if n not in by_name],
        value_scans={
            path: scan_non_finite(blobs[path], header)
            for path, header in headers.items()
            if scan and isinstance(header, SafetensorsHeader)
        },
        json_documents=_json_documents(blobs),
        shipped_tokenizer=tokenizer_facts(shipped_docs) if shipped_docs else None,
        shipped_chat_template=chat_template_text(shipped_docs),
        reference_tokenizer=tokenizer_facts(base_tokenizer_files) if base_tokenizer_files else None,
        reference_chat_template=chat_template_text(base_tokenizer_files or {}),
    )


def scan_non_finite(blob: Path, header: SafetensorsHeader) -> dict[str, NonFinite]:
    """NaN/inf counts of every float tensor holding any, read `SCAN_CHUNK_BYTES` at a time:
    memory stays bounded whatever the file weighs."""
    start = 8 + header.header_length
    found: dict[str, NonFinite] = {}
    with blob.open("rb") as f:
        for name, info in header.tensors.items():
            if info.dtype not in FLOAT_LAYOUTS:
                continue
            begin, end = info.data_offsets
            f.seek(start + begin)
            total = NonFinite()
            remaining = end - begin
            while remaining > 0:
                chunk = f.read(min(SCAN_CHUNK_BYTES, remaining))
                if not chunk:
                    break  # shorter than its header said: `truncated` already
                total += count_non_finite(info.dtype, chunk)
                remaining -= len(chunk)
            if total.total:
                found[name] = total
    return found


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


def _read_config(
    blob: Path | None,
) -> tuple[dict[str, Any] | None, str | None, tuple[str, ...]]:
    """The config, the reason it is unreadable, and the keys given twice in one object."""
    if blob is None:
        return None, None, ()
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        body = dict(items)  # the last value wins, as in json.loads
        if len(body) != len(items):
            seen: set[str] = set()
            for key, _ in items:
                if key in seen and key not in duplicates:
                    duplicates.append(key)
                seen.add(key)
        return body

    try:
        body = json.loads(_read_bounded(blob, MAX_CONFIG_BYTES), object_pairs_hook=pairs)
    except FolderError as exc:
        return None, f"larger than {MAX_CONFIG_BYTES} bytes ({exc})", ()
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return None, f"not JSON: {exc}", ()
    if not isinstance(body, dict):
        return None, "not a JSON object", ()
    return body, None, tuple(duplicates)


def _json_documents(blobs: Mapping[str, Path]) -> dict[str, Any]:
    """Every configuration JSON file, parsed; unreadable ones are left out (a loader
    fails on them before it could import anything)."""
    documents = {}
    for path, blob in blobs.items():
        name = PurePosixPath(path).name
        if not name.endswith(".json") or name in DATA_JSON:
            continue
        try:
            documents[path] = json.loads(_read_bounded(blob, MAX_SCANNED_JSON_BYTES))
        except (FolderError, UnicodeDecodeError, ValueError, RecursionError):
            continue
    return documents


def _shipped_documents(blobs: Mapping[str, Path]) -> dict[str, bytes]:
    names = (*TOKENIZER_FILES, TEMPLATE_FILE, ADDED_TOKENS)
    documents = {}
    for name in names:
        if name in blobs:
            try:
                documents[name] = _read_bounded(blobs[name], MAX_TOKENIZER_BYTES)
            except FolderError:
                continue  # the hash says "unreadable" already
    return documents


def tokenizer_facts(documents: Mapping[str, bytes]) -> TokenizerFacts:
    """Vocabulary size and added tokens from a tokenizer's files (what can be parsed)."""
    ids: list[int] = []
    added: dict[int, str] = {}
    tokenizer = _json_object(documents.get("tokenizer.json"))
    vocab = (
        tokenizer.get("model", {}).get("vocab")
        if isinstance(tokenizer.get("model"), dict)
        else None
    )
    if isinstance(vocab, dict):
        ids += [i for i in vocab.values() if isinstance(i, int)]
    elif isinstance(vocab, list):
        ids.append(len(vocab) - 1)
    for token in tokenizer.get("added_tokens") or []:
        if isinstance(token, dict) and isinstance(token.get("id"), int):
            added[token["id"]] = str(token.get("content", ""))
    config = _json_object(documents.get(TOKENIZER_CONFIG))
    decoder = config.get("added_tokens_decoder")
    for key, token in decoder.items() if isinstance(decoder, dict) else ():
        if str(key).isdigit() and len(str(key)) <= 12 and isinstance(token, dict):
            added.setdefault(int(key), str(token.get("content", "")))
    for text, i in _json_object(documents.get(ADDED_TOKENS)).items():
        if isinstance(i, int):
            added.setdefault(i, text)
    ids += list(added)
    return TokenizerFacts(
        vocab_size=max(ids) + 1 if ids else None,
        added_tokens=tuple(sorted(added.items())),
    )


def chat_template_text(documents: Mapping[str, bytes]) -> str | None:
    """The template's text as `compute_chat_template_hash` sees it; None when none."""
    if TEMPLATE_FILE in documents:
        return documents[TEMPLATE_FILE].decode("utf-8", errors="replace")
    template = _json_object(documents.get(TOKENIZER_CONFIG)).get("chat_template")
    if isinstance(template, str):
        return template
    if template is not None:
        return json.dumps(template, sort_keys=True, indent=1)
    return None


def _json_object(data: bytes | None) -> dict[str, Any]:
    if data is None:
        return {}
    try:
        body = json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return {}
    return body if isinstance(body, dict) else {}


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
