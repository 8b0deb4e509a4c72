"""Revision ids as people type them: a full digest, or a unique prefix with or without
`sha256:`, resolved the same way (and refused with the same message) by every command."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import asyncpg

from adapterctl.source import CliRefusal, Source, with_registry
from shared.codec import Codec
from shared.registry.store import PostgresRegistry

SHOWN = 5  # candidates a refusal lists


def match_revision(adapter: str, text: str, known: Sequence[str], adapters: Sequence[str]) -> str:
    """The one revision of `known` that `text` names; else a refusal that lists what exists."""
    prefix = text if text.startswith("sha256:") else "sha256:" + text
    matching = [revision for revision in known if revision.startswith(prefix)]
    if len(matching) == 1:
        return matching[0]
    if matching:
        listed = ", ".join(r.removeprefix("sha256:")[:16] for r in matching[:SHOWN])
        raise CliRefusal(
            f"{len(matching)} revisions of {adapter} start with {text!r} ({listed}): "
            "give more of the digest"
        )
    if not known:
        near = difflib.get_close_matches(adapter, adapters, n=3)
        hint = f"; did you mean {' or '.join(near)}?" if near else ""
        listed = ", ".join(sorted(adapters)[:10]) or "none yet"
        raise CliRefusal(f"no adapter {adapter!r} is registered{hint} (registered: {listed})")
    listed = ", ".join(r.removeprefix("sha256:")[:16] for r in known[-SHOWN:])
    raise CliRefusal(
        f"no revision of {adapter} starts with {text!r}; recently updated: {listed} "
        f"(all of them: adapterctl history {adapter})"
    )


async def resolve(pool: asyncpg.Pool, adapter: str, text: str) -> str:
    """The full revision id `text` names among `adapter`'s registered revisions."""
    registry = PostgresRegistry(pool, Codec.from_env())
    known = [record.revision for record in await registry.revisions(adapter=adapter)]
    adapters = [] if known else sorted({r.adapter for r in await registry.revisions()})
    return match_revision(adapter, text, known, adapters)


def resolved(source: Source, adapter: str, text: str) -> str:
    """`resolve`, for a command that has no pool of its own open."""
    return with_registry(source, lambda pool: resolve(pool, adapter, text))
