"""Ingest hashing throughput against `sha256sum` on the same 1 GB file, and validation time
of a 1 GB adapter against a 1 MB one, each measured in the same run; peak RSS reported.

    .venv/bin/python -m benchmarks.bench_ingest [--gigabytes 1]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import Figure, write_report

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
mode, path, store_root = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
started = time.perf_counter()
if mode == "ingest":
    from shared.artifacts import LocalArtifactStore
    with path.open("rb") as f:
        LocalArtifactStore(store_root).put_stream(f, max_bytes=1 << 40)
elif mode == "hash":
    from shared.artifacts import hash_file
    hash_file(path)
elif mode == "use":
    from benchmarks.bench_ingest import verified_uses
    first, again = verified_uses(path, store_root)
    print(json.dumps({"seconds": first, "again_seconds": again, "peak_rss_mb": 0}))
    raise SystemExit(0)
else:
    from benchmarks.bench_ingest import validate
    validate(path, store_root, verify_hashes=(mode == "validate-full"))
elapsed = time.perf_counter() - started
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": elapsed, "peak_rss_mb": peak_mb}))
"""


def run_child(mode: str, path: Path, store_root: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(path), str(store_root)],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def verified_uses(path: Path, store_root: Path) -> tuple[float, float]:
    """Seconds of a revision's first use (verified copy) and of a later one (re-hash)."""
    from shared.artifacts import LocalArtifactStore
    from shared.manifest import FileEntry, Manifest, revision_digest

    store = LocalArtifactStore(store_root)
    with path.open("rb") as f:
        stored = store.put_stream(f, max_bytes=1 << 40)
    files = (FileEntry(path="adapter_model.safetensors", sha256=stored.sha256, size=stored.size),)
    manifest = Manifest(
        adapter="bench", revision=revision_digest(files), files=files, base_model_id="b",
        base_model_revision="r", tokenizer_revision="t", tokenizer_hash="", chat_template_hash="",
        quantization_profile="bf16", submitter="s", trained_event_id="e", source_uri="file:///x",
    )  # fmt: skip
    started = time.perf_counter()
    store.materialize(manifest)
    first = time.perf_counter() - started
    started = time.perf_counter()
    store.materialize(manifest)
    return first, time.perf_counter() - started


def best_of(runs: int, measure: Any) -> dict[str, float]:
    results = [measure() for _ in range(runs)]
    return min(results, key=lambda r: r["seconds"])


def write_big_file(path: Path, size: int) -> None:
    block = bytes(range(256)) * 4096  # 1 MiB, not all zeros
    with path.open("wb") as f:
        for _ in range(size // len(block)):
            f.write(block)


def make_adapter(folder: Path, weight_bytes: int) -> None:
    """An adapter whose one tensor file is `weight_bytes` long: header + data, as PEFT saves."""
    import numpy as np

    from tests.corpus.adapters import adapter_config, lora_tensors, tiny_base_spec
    from tests.corpus.st_writer import write

    folder.mkdir(parents=True, exist_ok=True)
    base = tiny_base_spec()
    tensors = lora_tensors(base)
    small = sum(t.nbytes for t in tensors.values())
    padding = max(0, weight_bytes - small) // 4
    # A large extra tensor stands for a big adapter: its data is never read by validation.
    tensors["base_model.model.model.layers.0.self_attn.q_proj.lora_A.extra"] = np.zeros(
        padding, np.float32
    )
    write(folder / "adapter_model.safetensors", tensors, {"format": "pt"})
    (folder / "adapter_config.json").write_text(json.dumps(adapter_config(base)))


def validate(folder: Path, store_root: Path, *, verify_hashes: bool) -> None:
    from services.validator.checks import check_revision
    from services.validator.inputs import read_revision_inputs
    from shared.artifacts import LocalArtifactStore
    from tests.corpus.adapters import environment_for, register, tiny_base_spec

    store = LocalArtifactStore(store_root)
    base = tiny_base_spec()
    env = environment_for(base)
    manifest = register(folder, store, base, [env])
    started = time.perf_counter()
    inputs = read_revision_inputs(store, manifest, base, [env], verify_hashes=verify_hashes)
    check_revision(inputs)
    print(json.dumps({"check_seconds": time.perf_counter() - started}), file=sys.stderr)


def validation_seconds(mode: str, folder: Path, store_root: Path) -> float:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(folder), str(store_root)],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(json.loads(out.stderr.strip().splitlines()[-1])["check_seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gigabytes", type=float, default=1.0)
    args = parser.parse_args()
    size = int(args.gigabytes * (1 << 30))
    with tempfile.TemporaryDirectory(dir=Path.cwd() / "var") as tmp:
        root = Path(tmp)
        big = root / "big.bin"
        write_big_file(big, size)
        subprocess.run(["sha256sum", str(big)], check=True, capture_output=True)  # warm cache

        def sha256sum() -> dict[str, float]:
            started = time.perf_counter()
            subprocess.run(["sha256sum", str(big)], check=True, capture_output=True)
            return {"seconds": time.perf_counter() - started}

        baseline = best_of(3, sha256sum)
        hashing = best_of(3, lambda: run_child("hash", big, root / "store-h"))
        ingest = best_of(2, lambda: run_child("ingest", big, root / f"store-{time.time_ns()}"))
        use = best_of(2, lambda: run_child("use", big, root / f"store-u{time.time_ns()}"))
        big.unlink()

        small_adapter, big_adapter = root / "small", root / "large"
        make_adapter(small_adapter, 1 << 20)
        make_adapter(big_adapter, size - (1 << 16))  # the corpus stores files up to 1 GiB
        checks: dict[str, float] = {}
        for label, folder in (("1MB", small_adapter), ("1GB", big_adapter)):
            for mode in ("validate-headers", "validate-full"):
                checks[f"{label} {mode}"] = min(
                    validation_seconds(mode, folder, root / f"vs-{label}-{mode}-{i}")
                    for i in range(3)
                )

    mb = size / (1 << 20)
    figures = [
        Figure(
            "hash_file throughput",
            mb / hashing["seconds"],
            mb / baseline["seconds"],
            "MiB/s",
            "sha256sum",
            higher_is_better=True,
        ),
        Figure(
            "ingest (copy+hash+fsync) throughput",
            mb / ingest["seconds"],
            mb / baseline["seconds"],
            "MiB/s",
            "sha256sum",
            higher_is_better=True,
        ),
        Figure(
            "first use: verified read-only copy (copy+hash) throughput",
            mb / use["seconds"],
            mb / baseline["seconds"],
            "MiB/s",
            "sha256sum",
            higher_is_better=True,
        ),
        Figure(
            "every later use: re-hash of the served copy, throughput",
            mb / use["again_seconds"],
            mb / baseline["seconds"],
            "MiB/s",
            "sha256sum",
            higher_is_better=True,
        ),
        Figure(
            "validation, headers only, 1GB vs 1MB",
            checks["1GB validate-headers"],
            checks["1MB validate-headers"],
            "s",
            "1MB adapter",
            higher_is_better=False,
        ),
        Figure(
            "validation with integrity rehash, 1GB vs 1MB",
            checks["1GB validate-full"],
            checks["1MB validate-full"],
            "s",
            "1MB adapter",
            higher_is_better=False,
        ),
    ]
    write_report(
        "ingest",
        figures,
        {
            "file_bytes": size,
            "sha256sum_s": baseline["seconds"],
            "hash_file": hashing,
            "ingest": ingest,
            "verified_use": use,
            "validation_s": checks,
        },
    )


if __name__ == "__main__":
    main()
