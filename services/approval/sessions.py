"""The approval page's server-side sessions: what the cookie names instead of the token.

Logging in with a bearer token opens a session: 256 random bits, of which only the SHA-256
is stored, with the SHA-256 of the token it was opened with and an absolute expiry
(`APPROVAL_SESSION_TTL_S`). Each page request finds the session, then the principal whose
token it was, so a revoked principal's sessions end with it; logging out deletes the
session. `PostgresSessions` keeps them in the approval service's own table (migration 003).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Protocol

import asyncpg


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "surrogateescape")).hexdigest()


class Sessions(Protocol):
    async def open(self, token_hash: str, expires_at: datetime) -> str:
        """A new session for the token whose hash is given; its id, for the cookie."""
        ...

    async def token_hash(self, session_id: str, now: datetime) -> str | None:
        """The token hash of the unexpired session `session_id`, or None."""
        ...

    async def close(self, session_id: str) -> None:
        """End the session (a no-op for one that does not exist)."""
        ...


class PostgresSessions:
    """Implements `Sessions` on `approval_sessions`; expired rows are swept on each login."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def open(self, token_hash: str, expires_at: datetime) -> str:
        session_id = new_session_id()
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM approval_sessions WHERE expires_at <= now()")
            await conn.execute(
                "INSERT INTO approval_sessions (id_hash, token_hash, expires_at)"
                " VALUES ($1, $2, $3)",
                session_hash(session_id),
                token_hash,
                expires_at,
            )
        return session_id

    async def token_hash(self, session_id: str, now: datetime) -> str | None:
        found: str | None = await self._pool.fetchval(
            "SELECT token_hash FROM approval_sessions WHERE id_hash = $1 AND expires_at > $2",
            session_hash(session_id),
            now,
        )
        return found

    async def close(self, session_id: str) -> None:
        await self._pool.execute(
            "DELETE FROM approval_sessions WHERE id_hash = $1", session_hash(session_id)
        )
