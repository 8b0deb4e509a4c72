"""The revision's files: the bytes are the registered ones, and none of them is a pickle."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath

from services.validator.findings import error
from shared.events.common import Finding
from shared.findings import FindingCode
from shared.manifest import Manifest
from shared.safetensors_header import HeaderError, SafetensorsHeader

# Formats that torch.load unpickles: loading one runs whatever code it carries.
UNSAFE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
UNSAFE_SNIFFS = ("pickle", "zip")
WEIGHT_SUFFIX = ".safetensors"


def is_weight_file(path: str) -> bool:
    return PurePosixPath(path).suffix == WEIGHT_SUFFIX


def check_file_hashes(
    manifest: Manifest, actual_hashes: Mapping[str, tuple[str, int]]
) -> list[Finding]:
    """Every file in the manifest is stored, with the very bytes registered."""
    findings: list[Finding] = []
    for entry in manifest.files:
        actual = actual_hashes.get(entry.path)
        if actual is None:
            findings.append(
                error(
                    FindingCode.FILE_MISSING,
                    f"{entry.path} is in the manifest but not in the store",
                    path=entry.path,
                    expected=entry.sha256,
                )
            )
        elif actual != (entry.sha256, entry.size):
            findings.append(
                error(
                    FindingCode.HASH_MISMATCH,
                    f"the stored bytes of {entry.path} differ from the manifest",
                    path=entry.path,
                    expected=f"sha256:{entry.sha256} size={entry.size}",
                    found=f"sha256:{actual[0]} size={actual[1]}",
                )
            )
    return findings


def check_file_formats(manifest: Manifest, sniffed: Mapping[str, str]) -> list[Finding]:
    """Pickle-bearing files are refused by name and by content, unread."""
    findings: list[Finding] = []
    for entry in manifest.files:
        suffix = PurePosixPath(entry.path).suffix.lower()
        content = sniffed.get(entry.path, "unknown")
        if suffix in UNSAFE_SUFFIXES or content in UNSAFE_SNIFFS:
            reason = (
                f"its bytes are a {content}, which torch.load would unpickle"
                if content in UNSAFE_SNIFFS
                else f"{suffix} is a pickle format"
            )
            findings.append(
                error(
                    FindingCode.UNSAFE_FORMAT,
                    f"{entry.path} is refused unread: {reason}",
                    path=entry.path,
                    expected="safetensors",
                    found=f"suffix={suffix or '-'} content={content}",
                )
            )
    return findings


def check_headers(headers: Mapping[str, SafetensorsHeader | HeaderError]) -> list[Finding]:
    """The parser's refusals, one finding each, under the parser's code."""
    return [
        error(result.code, f"{path}: {result.message}", path=path, detail=result.message)
        for path, result in sorted(headers.items())
        if isinstance(result, HeaderError)
    ]


def check_has_weights(
    manifest: Manifest,
    headers: Mapping[str, SafetensorsHeader | HeaderError],
    lora_tensor_count: int,
) -> list[Finding]:
    """A revision needs a safetensors file, and readable ones need LoRA tensors."""
    weights = [e.path for e in manifest.files if is_weight_file(e.path)]
    if not weights:
        return [
            error(
                FindingCode.NO_WEIGHTS,
                "the revision has no .safetensors weight file",
                expected="adapter_model.safetensors",
                found=",".join(e.path for e in manifest.files) or "no files",
            )
        ]
    readable = all(isinstance(headers.get(p), SafetensorsHeader) for p in weights)
    if readable and lora_tensor_count == 0:
        return [
            error(
                FindingCode.NO_WEIGHTS,
                f"{', '.join(weights)} hold no LoRA tensors",
                expected="lora_A/lora_B tensors",
                found="none",
            )
        ]
    return []
