"""Replicas for the conformance suite: vLLM's own HTTP layer (`tests/conformance/replica.py`),
started once per session as separate processes, the way an operator starts `vllm serve`.

Four replicas, started together (each imports torch and vLLM, about 20 s of CPU):

- `open`: runtime LoRA updating on (`VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`), no API key;
- `keyed`: the same with `--api-key`;
- `frozen`: runtime LoRA updating off, so vLLM never registers the load/unload routes;
- `elsewhere`: runtime LoRA updating on, serving another base model.

Each serves a tiny LLaMA-shaped base (config.json and the model kit's tokenizer, no weights:
the engine is stubbed) from `<root>/models/<model>/<revision>` as `--served-model-name
<model>`, the layout the activator's base proof reads. Tests share the replicas and use
unique adapter names, so none needs cleaning up after another.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.manifest import FileEntry, Manifest
from tests.fakes.activator import CONTRACT

REPO = Path(__file__).resolve().parents[2]
API_KEY = "conformance-key"
BASE_ID = CONTRACT.base_model_id
BASE_HEX = CONTRACT.base_model_revision.removeprefix("sha256:")
OTHER_BASE_ID = "qwen"
MAX_LORA_RANK = 8
MAX_MODEL_LEN = 64  # the model kit's context (its config.json's max_position_embeddings)
STARTUP_TIMEOUT_S = 240.0  # four processes importing torch on two cores; under pytest's 300


@dataclass(frozen=True, slots=True)
class Replica:
    name: str
    url: str
    base_id: str
    base_folder: Path
    api_key: str | None
    runtime_lora: bool
    log: Path


@dataclass(frozen=True, slots=True)
class Layout:
    """What a replica is started with: its variant's switches."""

    base_id: str
    api_key: str | None = None
    runtime_lora: bool = True


LAYOUTS = {
    "open": Layout(BASE_ID),
    "keyed": Layout(BASE_ID, api_key=API_KEY),
    "frozen": Layout(BASE_ID, runtime_lora=False),
    "elsewhere": Layout(OTHER_BASE_ID),
}


def build_base(folder: Path) -> Path:
    """A LLaMA-shaped base vLLM accepts: config.json and the model kit's tokenizer."""
    from transformers import LlamaConfig

    from shared.modelkit.base import ARCHITECTURE, build_tokenizer

    tokenizer = build_tokenizer()
    tokenizer.save_pretrained(folder)
    LlamaConfig(
        architectures=["LlamaForCausalLM"],
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **ARCHITECTURE,
    ).save_pretrained(folder)
    return folder


def _command(layout: Layout, folder: Path, port_file: Path) -> list[str]:
    command = [sys.executable, "-m", "tests.conformance.replica", "--port-file", str(port_file)]
    command += ["--", "--model", str(folder), "--served-model-name", layout.base_id]
    command += f"--host 127.0.0.1 --port 0 --enable-lora --max-lora-rank {MAX_LORA_RANK}".split()
    return command + (["--api-key", layout.api_key] if layout.api_key else [])


def _environment(layout: Layout) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VLLM_")}
    env |= {"HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
    if layout.runtime_lora:
        env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True"
    return env


def _wait_until_healthy(process: subprocess.Popen[bytes], port_file: Path, log: Path) -> str:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if port_file.exists() and (port := port_file.read_text().strip()):
            url = f"http://127.0.0.1:{port}"
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    return url
            except httpx.TransportError:
                pass
        time.sleep(0.5)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
    raise RuntimeError(f"the vLLM replica logging to {log} did not come up:\n{tail}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # vLLM's serve_http shuts down on SIGTERM
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Replica]]:
    if importlib.util.find_spec("vllm") is None:
        pytest.fail(f"vllm is not installed in {sys.prefix}: run `make conformance`")
    root = tmp_path_factory.mktemp("vllm")
    folders = {
        model: build_base(root / "models" / model / BASE_HEX) for model in (BASE_ID, OTHER_BASE_ID)
    }
    started: dict[str, tuple[subprocess.Popen[bytes], Path, Path]] = {}
    try:
        for name, layout in LAYOUTS.items():
            port_file, log = root / f"{name}.port", root / f"{name}.log"
            with log.open("wb") as out:
                started[name] = (
                    subprocess.Popen(
                        _command(layout, folders[layout.base_id], port_file),
                        cwd=REPO,
                        env=_environment(layout),
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    ),
                    port_file,
                    log,
                )
        yield {
            name: Replica(
                name=name,
                url=_wait_until_healthy(process, port_file, log),
                base_id=LAYOUTS[name].base_id,
                base_folder=folders[LAYOUTS[name].base_id],
                api_key=LAYOUTS[name].api_key,
                runtime_lora=LAYOUTS[name].runtime_lora,
                log=log,
            )
            for name, (process, port_file, log) in started.items()
        }
    finally:
        for process, _, _ in started.values():
            _stop(process)


@pytest.fixture(scope="session")
def adapters(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """`adapters(rank=8)`: a fresh adapter folder on the replicas' disk, with the
    `adapter_config.json` PEFT writes (the stub engine checks it as vLLM's LoRA worker does,
    against the replicas' `--max-lora-rank`; it reads no tensors)."""
    root = tmp_path_factory.mktemp("adapters")

    def make(rank: int = MAX_LORA_RANK) -> Path:
        folder = root / uuid.uuid4().hex[:12]
        folder.mkdir()
        config = {
            "peft_type": "LORA",
            "r": rank,
            "lora_alpha": 2 * rank,
            "target_modules": ["q_proj", "v_proj"],
            "bias": "none",
        }
        (folder / "adapter_config.json").write_text(json.dumps(config) + "\n")
        return folder

    return make


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """A LoRA name no other test uses: `<adapter>@<12 hex>`, as the activator names them."""
    return lambda adapter: f"{adapter}-{uuid.uuid4().hex[:8]}@{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def client() -> Any:
    async with httpx.AsyncClient(timeout=30) as http:
        yield http


def manifest(adapter: str, revision: str, **overrides: Any) -> Manifest:
    """A revision trained for the replicas' base (`tests.fakes.activator.CONTRACT`)."""
    fields: dict[str, Any] = {
        "adapter": adapter,
        "revision": revision,
        "files": (FileEntry(path="adapter_model.safetensors", sha256="e" * 64, size=1),),
        "base_model_id": CONTRACT.base_model_id,
        "base_model_revision": CONTRACT.base_model_revision,
        "tokenizer_revision": "tok-1",
        "tokenizer_hash": CONTRACT.tokenizer_hash,
        "chat_template_hash": CONTRACT.chat_template_hash,
        "quantization_profile": CONTRACT.quantization_profile,
        "submitter": "trainer-alice",
        "trained_event_id": "trained-" + adapter,
        "source_uri": f"file:///incoming/{adapter}",
    }
    return Manifest(**(fields | overrides))
