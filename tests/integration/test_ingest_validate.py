"""From AdapterTrained to a validated or rejected revision, through real Kafka, PostgreSQL,
and the ingest and validator services running as their own processes."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from shared.artifacts import LocalArtifactStore
from shared.events import BaseModelRef, RevisionRegistered, RevisionRejected, RevisionValidated
from shared.trainer_client import describe_submission, submit
from tests.conftest import Infra
from tests.corpus.adapters import (
    lora_tensors,
    tiny_base_spec,
    tiny_tokenizer_files,
    write_adapter,
    write_base_model,
)
from tests.corpus.bad_cases import (
    EMBED,
    PICKLED,
    PREFIX_TUNING,
    _good_weights,
    _one_char_template,
    _renamed,
    _replace_weights,
    _torch_zip,
    _without,
    _wrong_b,
)
from tests.stack import Stack

BASE_ID, BASE_REVISION = "tiny-llama", "sha256:" + "b" * 64
RECIPE = {"seed": 7, "dataset_ids": ["tickets-q3"], "hyperparameters": {"r": "8"}}
SCOPE = {
    "corpora": ["support-tickets"],
    "time_window_start": "2026-07-01",
    "time_window_end": "2026-09-30",
    "filtering_rules": ["pii-scrubbed"],
}
MAX_FILE_BYTES = 4 << 20


@dataclass
class Case:
    name: str
    expected: str  # a finding code, or "validated"
    adapter: dict[str, Any] = field(default_factory=dict)
    edit: Callable[[Path], None] | None = None
    submit: dict[str, Any] = field(default_factory=dict)
    recipe: dict[str, Any] = field(default_factory=lambda: dict(RECIPE))
    scope: dict[str, Any] = field(default_factory=lambda: dict(SCOPE))
    uri: Callable[[Path, Path], str] | None = None  # (folder, incoming) -> artifact uri


def _symlink(folder: Path) -> None:
    (folder / "notes.txt").symlink_to("/etc/hostname")


def _hard_link_to_a_secret(folder: Path) -> None:
    """Issue #15: a hard link to a service's private key, outside the drop folder."""
    secret = folder.parent.parent / "keys" / f"{folder.name}.signing.key"
    secret.parent.mkdir(exist_ok=True)
    secret.write_bytes(b"-----BEGIN PRIVATE KEY----- not for ingest")
    secret.chmod(0o600)
    os.link(secret, folder / "notes.txt")


def _huge(folder: Path) -> None:
    (folder / "optimizer_state.safetensors").write_bytes(b"\0" * (MAX_FILE_BYTES + 1))


CASES = [
    Case("good", "validated"),
    Case("pickled-bin", "unsafe_format", edit=_replace_weights(PICKLED, name="adapter_model.bin")),
    Case("pickle-renamed", "pickle_detected", edit=_replace_weights(PICKLED)),
    Case("torch-zip-renamed", "unsafe_format", edit=_replace_weights(_torch_zip())),
    Case("truncated", "truncated", edit=_replace_weights(_good_weights()[:-40])),
    Case(
        "header-bomb",
        "header_too_large",
        edit=_replace_weights((1 << 40).to_bytes(8, "little") + b'{"a":'),
    ),
    Case(
        "prefix-not-in-base",
        "unknown_target_module",
        adapter={
            "tensors": _renamed(lora_tensors(tiny_base_spec()), "model.layers.", "transformer.h.")
        },
    ),
    Case("lora-b-wrong-shape", "lora_shape_mismatch", adapter={"tensors": _wrong_b()}),
    Case("rank-64", "rank_exceeds_environment", adapter={"r": 64}),
    Case("config-rank-4", "rank_mismatch", adapter={"config": {"r": 4}}),
    Case(
        "embed-tokens-saved",
        "modules_to_save_unsupported",
        adapter={
            "config": {"modules_to_save": ["embed_tokens"]},
            "tensors": {
                **lora_tensors(tiny_base_spec()),
                "base_model.model.model.embed_tokens.weight": EMBED,
            },
        },
    ),
    Case("prefix-tuning", "adapter_config_invalid", adapter={"config": PREFIX_TUNING}),
    Case(
        "tokenizer-other-revision",
        "tokenizer_mismatch",
        adapter={"tokenizer": tiny_tokenizer_files(extra_word="zebra")},
    ),
    Case(
        "template-one-char", "chat_template_mismatch", adapter={"tokenizer": _one_char_template()}
    ),
    Case("int4-served", "quantization_mismatch", submit={"quantization_profile": "int4-awq"}),
    Case("other-base", "base_model_unknown", submit={"base_revision": "sha256:" + "c" * 64}),
    Case(
        "lora-a-only",
        "lora_pair_incomplete",
        adapter={"tensors": _without("layers.1.self_attn.v_proj.lora_B.weight")},
    ),
    Case("no-dataset-ids", "recipe_incomplete", recipe={"seed": 1, "dataset_ids": []}),
    Case("no-corpora", "data_scope_incomplete", scope={**SCOPE, "corpora": []}),
    Case(
        "path-traversal",
        "path_escapes_root",
        uri=lambda folder, incoming: f"file://{incoming}/../../../etc",
    ),
    Case("symlink-inside", "symlink", edit=_symlink),
    Case("hard-linked-secret", "hard_link", edit=_hard_link_to_a_secret),
    Case("file-too-large", "file_too_large", edit=_huge),
]


@pytest.fixture(scope="module")
async def stack(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    stack = Stack(infra, tmp_path_factory.mktemp("stack"))
    await stack.create()
    base = stack.root / "base"
    write_base_model(base)
    stack.adapterctl(
        "base",
        "register",
        str(base),
        "--id",
        BASE_ID,
        "--revision",
        BASE_REVISION,
        "--tokenizer-revision",
        "tok-1",
    )
    stack.adapterctl(
        "env", "set", "staging", "--base", f"{BASE_ID}@{BASE_REVISION}", "--max-lora-rank", "16"
    )
    stack.start("ingest", INGEST_MAX_FILE_BYTES=str(MAX_FILE_BYTES))
    stack.start("validator")
    yield stack
    stack.stop()


def _stage(stack: Stack, case: Case, adapter: str) -> Any:
    folder = stack.incoming / adapter
    write_adapter(folder, tiny_base_spec(), **case.adapter)
    (folder / "recipe.json").write_text(json.dumps(case.recipe))
    (folder / "data_scope.json").write_text(json.dumps(case.scope))
    if case.edit:
        case.edit(folder)
    event = describe_submission(
        folder,
        adapter=adapter,
        base=BaseModelRef(
            model_id=BASE_ID, revision=case.submit.get("base_revision", BASE_REVISION)
        ),
        submitter="trainer-alice",
        tokenizer_revision="tok-1",
        tokenizer_folder=stack.root / "base",
        quantization_profile=case.submit.get("quantization_profile", "bf16"),
        target_environments=["staging"],
    )
    if case.uri:
        event = dataclasses.replace(event, artifact_uri=case.uri(folder, stack.incoming))
    return event


def _outcome(events: list[Any]) -> Any:
    return next((e for e in events if isinstance(e, RevisionValidated | RevisionRejected)), None)


async def test_every_submission_ends_validated_or_rejected_with_its_specific_finding(
    stack: Stack, unique: Callable[[str], str]
) -> None:
    submitted = {}
    for case in CASES:
        adapter = unique(case.name)
        submit(
            stack.infra.as_principal("ingest"),
            _stage(stack, case, adapter),
            topic=stack.trained_topic,
        )
        submitted[adapter] = case

    events = stack.wait_for(
        lambda evs: all(
            _outcome([e for e in evs if e.envelope.adapter == a]) is not None for a in submitted
        ),
        timeout_s=180,
    )
    wrong = {}
    for adapter, case in submitted.items():
        outcome = _outcome([e for e in events if e.envelope.adapter == adapter])
        if case.expected == "validated":
            ok = isinstance(outcome, RevisionValidated)
            got = type(outcome).__name__
        else:
            codes = [f.code for f in outcome.findings if f.severity == "error"]
            ok = isinstance(outcome, RevisionRejected) and case.expected in codes
            got = f"{type(outcome).__name__} {codes}"
        if not ok:
            wrong[case.name] = got
    assert not wrong, wrong
    assert sum(1 for c in CASES if c.expected != "validated") >= 15
    blobs = (stack.artifacts / "blobs" / "sha256").iterdir()
    assert not [b for b in blobs if b"not for ingest" in b.read_bytes()], "a secret was stored"
    for name in ("ingest", "validator"):
        assert stack.processes[name].poll() is None, f"{name} crashed"


async def test_a_validated_revision_has_a_manifest_binding_every_file_to_its_base(
    stack: Stack, unique: Callable[[str], str]
) -> None:
    adapter = unique("bound")
    event = _stage(stack, CASES[0], adapter)
    submit(stack.infra.as_principal("ingest"), event, topic=stack.trained_topic)
    events = stack.wait_for(lambda evs: _outcome(evs) is not None, adapter=adapter)
    registered = next(e for e in events if isinstance(e, RevisionRegistered))
    assert isinstance(_outcome(events), RevisionValidated)

    manifest = LocalArtifactStore(stack.artifacts).get_manifest(registered.manifest_digest)
    folder = stack.incoming / adapter
    on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert {f.path for f in manifest.files} == on_disk
    for entry in manifest.files:
        import hashlib

        assert entry.sha256 == hashlib.sha256((folder / entry.path).read_bytes()).hexdigest()
    assert manifest.revision == registered.envelope.revision
    assert (manifest.base_model_id, manifest.base_model_revision) == (BASE_ID, BASE_REVISION)
    assert manifest.tokenizer_hash == event.tokenizer_hash
    assert manifest.chat_template_hash == event.chat_template_hash
    assert manifest.quantization_profile == "bf16"
    assert manifest.recipe["seed"] == RECIPE["seed"] and manifest.data_scope["corpora"]


async def test_resubmitting_the_same_bytes_registers_one_revision(
    stack: Stack, unique: Callable[[str], str]
) -> None:
    adapter = unique("again")
    first = _stage(stack, CASES[0], adapter)
    submit(stack.infra.as_principal("ingest"), first, topic=stack.trained_topic)
    stack.wait_for(lambda evs: _outcome(evs) is not None, adapter=adapter)
    second = dataclasses.replace(first, event_id=first.event_id[:-4] + "beef")
    submit(stack.infra.as_principal("ingest"), second, topic=stack.trained_topic)
    submit(stack.infra.as_principal("ingest"), first, topic=stack.trained_topic)  # redelivery
    marker = unique("marker")  # a later submission: once it is done, the others were handled
    submit(
        stack.infra.as_principal("ingest"),
        _stage(stack, CASES[0], marker),
        topic=stack.trained_topic,
    )
    stack.wait_for(lambda evs: _outcome(evs) is not None, adapter=marker)

    events = stack.events(adapter)
    assert [type(e).__name__ for e in events] == ["RevisionRegistered", "RevisionValidated"]
    assert os.path.isdir(stack.artifacts / "revisions" / adapter)
