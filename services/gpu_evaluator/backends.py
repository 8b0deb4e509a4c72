"""Which backend serves an environment: its base model's folder, checked against the
environment's contract, and one backend per base and serving limits, kept per process."""

from __future__ import annotations

import dataclasses
import gc
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from pathlib import Path

from services.gpu_evaluator.ports import (
    AdapterRef,
    BackendConfigError,
    BackendError,
    EvaluationBackend,
)
from services.gpu_evaluator.settings import EvaluatorSettings
from shared.catalogue import EnvironmentSpec
from shared.contract import ServingContract
from shared.hf_folder import FolderError, chat_template_hash, tokenizer_hash

Build = Callable[[Path, EnvironmentSpec], EvaluationBackend]
Key = Callable[[Path, EnvironmentSpec], Hashable]


def is_resource_error(exc: BaseException) -> bool:
    """Out of host or GPU memory, or a file the runtime needs is missing or unreadable.

    torch raises `torch.OutOfMemoryError` (a RuntimeError; `torch.cuda.OutOfMemoryError`
    before 2.5) and, for other device faults, a RuntimeError naming CUDA; matched by name
    so that this module needs no torch.
    """
    if isinstance(exc, MemoryError | OSError):
        return True
    if type(exc).__name__ == "OutOfMemoryError":
        return True
    message = str(exc)
    return isinstance(exc, RuntimeError) and ("out of memory" in message or "CUDA" in message)


@contextmanager
def backend_errors() -> Iterator[None]:
    """Raise the runtime's resource errors as `BackendError`; let everything else through."""
    try:
        yield
    except (MemoryError, OSError, RuntimeError) as exc:  # torch's errors are RuntimeErrors
        if is_resource_error(exc):
            raise BackendError(f"{type(exc).__name__}: {exc}") from exc
        raise


@contextmanager
def adapter_loading(ref: AdapterRef) -> Iterator[None]:
    """Any failure to load `ref`'s weights is the revision's (a malformed adapter): a
    `BackendError`, so the revision gets its verdict rather than endless retries."""
    try:
        yield
    except BackendError:
        raise
    except Exception as exc:  # PEFT, safetensors and torch each raise their own types
        raise BackendError(f"adapter {ref.adapter} does not load: {exc}") from exc


class BaseModelFolders:
    """Where each registered base model lives here, verified once against the contract."""

    def __init__(self, folders: dict[str, Path]) -> None:
        self._folders = folders
        self._verified: set[tuple[str, ServingContract]] = set()

    def folder_for(self, environment: EnvironmentSpec) -> Path:
        key = f"{environment.base_model_id}@{environment.base_model_revision}"
        folder = self._folders.get(key)
        if folder is None:
            raise BackendConfigError(
                f"no folder for base model {key} (environment {environment.name}): add "
                f"{key}=/path/to/model to EVALUATOR_BASE_MODELS"
            )
        wanted = ServingContract.of_environment(environment)
        check = (str(folder), wanted)
        if check not in self._verified:
            try:
                found = dataclasses.replace(
                    wanted,
                    tokenizer_hash=tokenizer_hash(folder),
                    chat_template_hash=chat_template_hash(folder),
                    quantization_profile="",  # the engine's, not the folder's
                )
            except (FolderError, OSError) as exc:
                raise BackendConfigError(f"base model folder {folder}: {exc}") from exc
            differences = wanted.mismatches(found, blank_is_unknown=True)
            if differences:
                raise BackendConfigError(
                    f"base model folder {folder} does not match environment "
                    f"{environment.name}: "
                    + "; ".join(
                        f"{d.term.value} {d.found}, the environment serves {d.wanted}"
                        for d in differences
                    )
                )
            self._verified.add(check)
        return folder


class CachedBackends:
    """Backends built on first use and reused for every later event; at most `keep` live
    at once (a GPU holds one engine), the least recently used closed first."""

    def __init__(self, folders: BaseModelFolders, build: Build, key: Key, *, keep: int) -> None:
        self._folders = folders
        self._build = build
        self._key = key
        self._keep = keep
        self._live: OrderedDict[Hashable, EvaluationBackend] = OrderedDict()

    def backend_for(self, environment: EnvironmentSpec) -> EvaluationBackend:
        folder = self._folders.folder_for(environment)
        key = self._key(folder, environment)
        if key in self._live:
            self._live.move_to_end(key)
            return self._live[key]
        while len(self._live) >= self._keep:
            _, old = self._live.popitem(last=False)
            close = getattr(old, "close", None)
            if close is not None:
                close()
            del old
            gc.collect()
        backend = self._build(folder, environment)
        self._live[key] = backend
        return backend


def backends_from_settings(settings: EvaluatorSettings) -> CachedBackends:
    """The configured runtime; nothing is loaded until the first event needs it."""
    folders = BaseModelFolders(dict(settings.base_models))
    if settings.backend == "vllm":
        from services.gpu_evaluator.vllm_backend import build_vllm_backend

        def build_vllm(folder: Path, environment: EnvironmentSpec) -> EvaluationBackend:
            return build_vllm_backend(
                folder,
                environment,
                gpu_memory_utilization=settings.vllm_gpu_memory_utilization,
                max_model_len=settings.vllm_max_model_len,
                enforce_eager=settings.vllm_enforce_eager,
            )

        # The engine's LoRA slots and quantization are the environment's: part of the key.
        return CachedBackends(
            folders,
            build_vllm,
            lambda f, e: (str(f), e.max_loras, e.max_lora_rank, e.quantization_profile),
            keep=1,
        )
    from services.gpu_evaluator.transformers_backend import TransformersBackend

    def build_transformers(folder: Path, environment: EnvironmentSpec) -> EvaluationBackend:
        return TransformersBackend(
            folder,
            device=settings.device,
            batch_size=settings.batch_size,
            max_loaded_adapters=settings.max_loaded_adapters,
        )

    return CachedBackends(folders, build_transformers, lambda f, e: str(f), keep=2)
