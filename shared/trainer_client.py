"""The training cluster's client: describe a trained adapter folder, hand the
AdapterTrained to ingest's API and read back its verdict and the catalogue, as the trainer
a bearer token proves (ADR 0017, ADR 0022)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from shared.codec import Codec
from shared.events import AdapterTrained, BaseModelRef, DataScope, TrainingRecipe
from shared.hf_folder import chat_template_hash, tokenizer_hash
from shared.kafka.auth import Kafka
from shared.kafka.producer import make_producer, publish
from shared.kafka.topics import TRAINED
from shared.verdicts import Verdict, from_json

# The content type of a submission's body: the AdapterTrained, Avro-encoded as on the topic.
AVRO = "application/vnd.adapters.avro"


class SubmissionError(ValueError):
    """The folder or the flags do not describe a submittable adapter; says what is missing."""


def _json_file(folder: Path, name: str) -> dict[str, Any] | None:
    path = folder / name
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SubmissionError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise SubmissionError(f"{path} must hold a JSON object")
    return value


def read_recipe(folder: Path) -> TrainingRecipe:
    recipe = _json_file(folder, "recipe.json")
    if recipe is None:
        raise SubmissionError(
            f"{folder}/recipe.json is missing: a revision must say how it was trained "
            '(e.g. {"seed": 1, "dataset_ids": ["tickets-q3"], "hyperparameters": {"r": "8"}})'
        )
    return TrainingRecipe(
        seed=int(recipe.get("seed", -1)),
        dataset_ids=[str(d) for d in recipe.get("dataset_ids", [])],
        hyperparameters={str(k): str(v) for k, v in recipe.get("hyperparameters", {}).items()},
        evaluation_summary={
            str(k): float(v) for k, v in recipe.get("evaluation_summary", {}).items()
        },
    )


def read_data_scope(folder: Path) -> DataScope:
    scope = _json_file(folder, "data_scope.json")
    if scope is None:
        raise SubmissionError(
            f"{folder}/data_scope.json is missing: say which corpora, time window and "
            "filtering rules the training data came from (no raw data)"
        )
    return DataScope(
        corpora=[str(c) for c in scope.get("corpora", [])],
        time_window_start=str(scope.get("time_window_start", "")),
        time_window_end=str(scope.get("time_window_end", "")),
        filtering_rules=[str(r) for r in scope.get("filtering_rules", [])],
    )


def describe_submission(
    folder: Path,
    *,
    adapter: str,
    base: BaseModelRef,
    tokenizer_revision: str,
    submitter: str = "",
    tokenizer_folder: Path | None = None,
    quantization_profile: str = "bf16",
    target_environments: Sequence[str] = (),
    artifact_uri: str | None = None,
    description: str = "",
) -> AdapterTrained:
    """The AdapterTrained event for an adapter folder.

    Tokenizer and chat-template hashes come from the tokenizer the adapter was trained
    with: the adapter folder's own tokenizer files, else `tokenizer_folder` (the base).
    """
    folder = folder.resolve()
    if not (folder / "adapter_config.json").is_file():
        raise SubmissionError(f"{folder} has no adapter_config.json: not a PEFT adapter folder")
    source = folder if (folder / "tokenizer_config.json").is_file() else tokenizer_folder
    if source is None:
        raise SubmissionError(
            f"{folder} ships no tokenizer: pass the base model folder the adapter was trained "
            "with (--base-folder) so its tokenizer and chat template can be hashed"
        )
    return AdapterTrained(
        event_id=str(uuid.uuid4()),
        adapter=adapter,
        submitter=submitter,
        submitted_at=datetime.now(UTC),
        base_model=base,
        tokenizer_revision=tokenizer_revision,
        tokenizer_hash=tokenizer_hash(source),
        chat_template_hash=chat_template_hash(source),
        quantization_profile=quantization_profile,
        target_environments=list(target_environments),
        recipe=read_recipe(folder),
        data_scope=read_data_scope(folder),
        artifact_uri=artifact_uri or folder.as_uri(),
        description=description,
    )


class SubmissionRefused(Exception):
    """Ingest's API refused the submission (the token, or the event): `status` and why."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Receipt:
    """Where ingest put a submission, and who it says submitted it."""

    event_id: str
    submitter: str
    partition: int
    offset: int


def submit_to_ingest(
    url: str, token: str, event: AdapterTrained, *, timeout_s: float = 30.0
) -> Receipt:
    """Hand `event` to ingest's API (`POST <url>/submissions`) as the trainer `token` proves;
    the submitter is the token's principal. SubmissionRefused when ingest says no;
    httpx.TransportError when it cannot be reached."""
    response = httpx.post(
        f"{url.rstrip('/')}/submissions",
        content=Codec.from_env().encode(event),
        headers={"Authorization": f"Bearer {token}", "Content-Type": AVRO},
        timeout=timeout_s,
    )
    if response.status_code != 202:
        raise _refused(response)
    body = response.json()
    return Receipt(body["event_id"], body["submitter"], body["partition"], body["offset"])


def _refused(response: httpx.Response) -> SubmissionRefused:
    try:
        detail = str(response.json().get("detail", response.text))
    except (ValueError, AttributeError):
        detail = response.text[:200]
    return SubmissionRefused(response.status_code, detail)


def _read(url: str, token: str, timeout_s: float) -> httpx.Response:
    return httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout_s)


def fetch_verdict(
    url: str, token: str, event_id: str, *, timeout_s: float = 10.0
) -> Verdict | None:
    """The verdict of the submission `event_id` (`GET <url>/submissions/<id>`), None while
    ingest has not handled it. SubmissionRefused for another trainer's submission or a bad
    token; httpx.TransportError when ingest cannot be reached."""
    response = _read(f"{url.rstrip('/')}/submissions/{event_id}", token, timeout_s)
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise _refused(response)
    return from_json(response.json())


def read_catalogue(url: str, token: str, *, timeout_s: float = 10.0) -> dict[str, Any]:
    """The registered base models and environments (`GET <url>/catalogue`), as JSON:
    `{"base_models": [...], "environments": [...]}`. SubmissionRefused when ingest says no."""
    response = _read(f"{url.rstrip('/')}/catalogue", token, timeout_s)
    if response.status_code != 200:
        raise _refused(response)
    body: dict[str, Any] = response.json()
    return body


def submit(kafka: Kafka, event: AdapterTrained, *, topic: str = TRAINED) -> tuple[int, int]:
    """Publish the event keyed by adapter; returns (partition, offset) once acknowledged.
    Only ingest's Kafka principal may write the trained topic: this is ingest's own path
    (and the admin's, in tests); a training cluster uses `submit_to_ingest`."""
    delivered = publish(
        make_producer(kafka),
        topic,
        key=event.adapter.encode(),
        value=Codec.from_env().encode(event),
    )
    return delivered.partition() or 0, delivered.offset() or 0
