"""The throughput benchmark's backlog: a registry of revisions registered and validated for
one environment, each with its manifest in the artifact store, seeded once and copied (a
database template, hard-linked files) for every configuration the benchmark drains."""

from __future__ import annotations

import asyncio
import io
import uuid
from concurrent.futures import ThreadPoolExecutor

import asyncpg

from shared.artifacts import LocalArtifactStore
from shared.catalogue import EnvironmentSpec
from shared.codec import Codec
from shared.events import RevisionRegistered, RevisionValidated
from shared.manifest import FileEntry, Manifest
from shared.registry.catalogue_store import PostgresCatalogue
from shared.registry.store import PostgresRegistry, Step
from tests.factories import lifecycle

ENV = "bench"


def revision_of(adapter: str, i: int) -> str:
    return "sha256:" + uuid.uuid5(uuid.NAMESPACE_URL, f"{adapter}/{i}").hex * 2


async def seed(dsn: str, store: LocalArtifactStore, revisions: int, adapters: int) -> float:
    """Register and validate `revisions` over `adapters` in a fresh registry, each with its
    manifest stored; the mean size of a RevisionValidated on the wire."""
    registry = await PostgresRegistry.connect(dsn, Codec.from_env(), max_size=12)
    await PostgresCatalogue(registry.pool).put_environment(
        EnvironmentSpec(
            name=ENV,
            base_model_id="bench/base",
            base_model_revision="r1",
            tokenizer_hash="sha256:" + "11" * 32,
            chat_template_hash="sha256:" + "22" * 32,
        )
    )
    config = store.put_stream(io.BytesIO(b'{"r": 16, "lora_alpha": 32}\n'), max_bytes=1 << 20)
    files = (FileEntry(path="adapter_config.json", sha256=config.sha256, size=config.size),)

    def manifest(i: int) -> tuple[str, str, str]:
        adapter, revision = f"tput-{i % adapters:03d}", revision_of(f"tput-{i % adapters}", i)
        digest = store.put_manifest(
            Manifest(
                adapter=adapter,
                revision=revision,
                files=files,
                base_model_id="bench/base",
                base_model_revision="r1",
                tokenizer_revision="tok-1",
                tokenizer_hash="sha256:" + "11" * 32,
                chat_template_hash="sha256:" + "22" * 32,
                quantization_profile="bf16",
                target_environments=(ENV,),
                submitter="trainer",
                trained_event_id=str(uuid.uuid4()),
                source_uri=f"file:///bench/{adapter}/{i}",
            )
        )
        return adapter, revision, digest

    with ThreadPoolExecutor(8) as pool:  # each manifest is fsynced: in parallel, seconds
        planned = list(pool.map(manifest, range(revisions)))
    queue: asyncio.Queue[tuple[str, str, str]] = asyncio.Queue()
    for item in planned:
        queue.put_nowait(item)

    async def writer() -> None:
        while not queue.empty():
            adapter, revision, digest = queue.get_nowait()
            registered = lifecycle(
                RevisionRegistered, adapter, revision, manifest_digest=digest,
                target_environments=[ENV],
            )  # fmt: skip
            validated = lifecycle(RevisionValidated, adapter, revision, checked_environments=[ENV])
            await registry.commit([Step(registered), Step(validated)])

    await asyncio.gather(*(writer() for _ in range(10)))
    size = await registry.pool.fetchval(
        "SELECT avg(length(payload)) FROM outbox WHERE event_type LIKE '%.RevisionValidated'"
    )
    await registry.close()
    return float(size)


async def admin_sql(dsn: str, *statements: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()
