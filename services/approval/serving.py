"""The revision a candidate is compared with: the one serving the environment when the
candidate was evaluated (the evaluation's baseline), read from what the service already
has: the registry (its record, its activation), the read model (who approved it) and its
manifest in the artifact store (recipe and data scope)."""

from __future__ import annotations

import asyncio
from typing import Any

from services.approval.ports import ApprovalReads
from services.approval.views import ServingView
from shared.artifacts import ArtifactStore, StoreError
from shared.events import RevisionActivated
from shared.manifest import Manifest
from shared.registry.port import Registry


async def read_manifest(store: ArtifactStore, digest: str, problems: list[str]) -> Manifest | None:
    """The manifest stored under `digest`; None, with the reason in `problems`, if unreadable."""
    try:
        return await asyncio.to_thread(store.get_manifest, digest)
    except (StoreError, OSError, ValueError, TypeError) as exc:
        problems.append(f"manifest {digest} cannot be read: {exc}")
        return None


async def serving_revision(
    registry: Registry,
    reads: ApprovalReads,
    store: ArtifactStore,
    *,
    adapter: str,
    revision: str,
    environment: str,
) -> tuple[ServingView, tuple[dict[str, Any], dict[str, Any]] | None]:
    """The serving revision's view, and its (recipe, data scope) when its manifest reads."""
    problems: list[str] = []
    record = await registry.revision(adapter, revision)
    pointer = await registry.pointer(adapter, environment)
    now = pointer.active if pointer.active != revision else None
    if record is None:
        problems.append(f"the registry has no revision {revision} of {adapter}")
        view = ServingView(
            revision=revision,
            known=False,
            state=None,
            submitter=None,
            submitted_at=None,
            approvers=[],
            approved_at=None,
            activated_at=None,
            manifest_digest=None,
            serving_now=now,
            problems=problems,
        )
        return view, None
    manifest = None
    if record.manifest_digest:
        manifest = await read_manifest(store, record.manifest_digest, problems)
    decided = await reads.decision(adapter, revision, environment)
    activations = [
        e.envelope.occurred_at
        for e in await registry.events(adapter, revision, types=(RevisionActivated,))
        if e.envelope.environment == environment
    ]
    state = record.status.track(environment)
    view = ServingView(
        revision=revision,
        known=True,
        state=state.value if state else None,
        submitter=record.submitter,
        submitted_at=record.created_at,
        approvers=list(decided.approvers) if decided and decided.decision == "approved" else [],
        approved_at=decided.decided_at if decided and decided.decision == "approved" else None,
        activated_at=activations[-1] if activations else None,
        manifest_digest=record.manifest_digest,
        serving_now=now,
        problems=problems,
    )
    scopes = (dict(manifest.recipe), dict(manifest.data_scope)) if manifest else None
    return view, scopes
