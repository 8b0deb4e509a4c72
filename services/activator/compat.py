"""The serving contract as the activator reports it: one line per term a place breaks.

A revision loads only where base, tokenizer, template and quantization are exactly those
its manifest was trained for; the comparison itself is `shared.contract`'s.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from services.activator.ports import BaseCard
from shared.catalogue import EnvironmentSpec
from shared.contract import ServingContract

PROOF_HINT = (
    "serve the base from a folder named after its revision (e.g. .../snapshots/REVISION or "
    "/models/MODEL/REVISION) with --served-model-name MODEL, or let the environment serve "
    "on unproven replicas (adapterctl env set --allow-unproven-replica-base)"
)


def contract_problems(wanted: ServingContract, found: ServingContract, where: str) -> list[str]:
    """One line per term where `found` (at `where`) differs from what the manifest wants;
    a term either side leaves blank is unknown, not a difference."""
    return [
        f"{where}: {m.term.value} is {m.found}, the manifest needs {m.wanted}"
        for m in wanted.mismatches(found, blank_is_unknown=True)
    ]


def _names_model(card: BaseCard, model_id: str) -> bool:
    """A served name (`--served-model-name`: the id differs from the root) must be the model
    id; without one, the root must be the model's folder or hub id (a plain path, or the
    Hugging Face cache's `models--org--name`)."""
    if card.id != card.root:
        return card.id == model_id
    root = "/" + card.root.strip("/") + "/"
    return f"/{model_id}/" in root or "models--" + model_id.replace("/", "--") in root


def _names_revision(card: BaseCard, revision: str) -> bool:
    """Some component of the card's root is the revision (with or without `sha256:`)."""
    wanted = {revision, revision.removeprefix("sha256:")}
    return any(part in wanted for part in PurePosixPath(card.root).parts)


def base_problems(
    card: BaseCard | None, spec: EnvironmentSpec, where: str
) -> tuple[list[str], list[str]]:
    """How a replica without `/info` fails to prove, through its `/v1/models` base card, that
    it serves the environment's base at its revision: (what its card contradicts, what it
    leaves unproven). An environment may waive the second, never the first."""
    if card is None:
        return [], [f"{where} lists no base model in GET /v1/models"]
    seen = f"{where} serves {card.id!r} from {card.root!r}"
    contradicted, unproven = [], []
    if not _names_model(card, spec.base_model_id):
        contradicted.append(f"{seen}, not the environment's base {spec.base_model_id!r}")
    elif not _names_revision(card, spec.base_model_revision):
        unproven.append(
            f"{seen}, which does not name the base revision {spec.base_model_revision}: "
            + PROOF_HINT
        )
    if spec.max_model_len and card.max_model_len != spec.max_model_len:
        contradicted.append(
            f"{where} serves a context of {card.max_model_len} tokens, "
            f"the environment's is {spec.max_model_len}"
        )
    return contradicted, unproven
