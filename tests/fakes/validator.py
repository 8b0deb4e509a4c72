"""Fakes for the validator: a staged revision registered in memory, and its catalogue.

The validator calls only the kernel (registry, catalogue, artifact store), so nothing of its
own is faked: these helpers put a corpus revision (`tests.corpus.adapters.stage`) where the
validator finds it, as ingest and `adapterctl base|env` would.
"""

from __future__ import annotations

from typing import Any

from shared.events import RevisionRegistered
from shared.registry.memory import InMemoryCatalogue
from shared.registry.port import Registry
from tests.corpus.adapters import Scenario
from tests.factories import lifecycle


def catalogue_for(scenario: Scenario) -> InMemoryCatalogue:
    """The catalogue a staged revision is checked against: its base (if known), its environments."""
    bases = [scenario.base] if scenario.base is not None else []
    return InMemoryCatalogue(bases, scenario.environments)


async def register_staged(
    registry: Registry, scenario: Scenario, **fields: Any
) -> RevisionRegistered:
    """Write the staged manifest and commit its `RevisionRegistered`, as ingest does; the
    event comes back sealed, as the validator receives it."""
    manifest = scenario.manifest
    event = lifecycle(
        RevisionRegistered,
        manifest.adapter,
        manifest.revision,
        **({"manifest_digest": scenario.store.put_manifest(manifest)} | fields),
    )
    [sealed] = (await registry.transition(event, expected_version=0)).events
    assert isinstance(sealed, RevisionRegistered)
    return sealed
