"""Principals: who may act, in which role, by bearer token, and which person each is.

A principal is a name acting in one role, with a bearer token; only the token's SHA-256 is
stored, so the token is shown once, when it is made. Names are stored canonical
(`shared.identity`: NFKC, case-folded, trimmed), and a name that mixes scripts or looks
like another person's principal is refused. A principal belongs to a person (by default
its own name): separation of duties compares persons, so one person's two principals are
one person, and count once toward N approvals. Names made before registry migration 004
keep their spelling, which the old rule kept to ASCII, so `lower(name)` is every row's
canonical name: the queries below look names up by it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import asyncpg

from shared.identity import canonical, refuse_reason, skeleton

TOKEN_PREFIX = "apt_"
# A row's canonical name, in SQL: names before migration 004 were ASCII, later ones canonical.
_CANONICAL = "lower(name)"


class Role(StrEnum):
    TRAINER = "trainer"
    APPROVER = "approver"
    OPERATOR = "operator"
    AUDITOR = "auditor"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role
    person: str = ""  # "" where unknown: the canonical name stands for the person

    @property
    def who(self) -> str:
        """The person separation of duties compares."""
        return self.person or canonical(self.name)


@dataclass(frozen=True, slots=True)
class PrincipalRecord:
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None
    person: str = ""


def new_token() -> str:
    """256 random bits, URL-safe, with a prefix that secret scanners can recognise."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


async def add_principal(
    pool: asyncpg.Pool, name: str, role: Role, person: str | None = None
) -> str:
    """A new token for `name` (stored canonical) in `role`, belonging to `person` (default:
    the name); a revoked pair gets a fresh token, an active one fails. ValueError for a
    name that mixes scripts or looks like another person's principal, or that already
    belongs to another person."""
    for given in (name, person):
        reason = refuse_reason(given) if given is not None else None
        if reason is not None:
            raise ValueError(reason)
    stored_name = canonical(name)
    owner = canonical(person) if person else stored_name
    async with pool.acquire() as conn, conn.transaction():
        # One creation at a time: the look-alike check reads what the others write.
        await conn.execute("LOCK TABLE principals IN SHARE ROW EXCLUSIVE MODE")
        rows = await conn.fetch("SELECT DISTINCT name, person FROM principals")
        for row in rows:
            same_name = canonical(row["name"]) == stored_name
            if same_name and row["person"] != owner:
                raise ValueError(
                    f"{stored_name} belongs to {row['person']}, not {owner}: a name is one person"
                )
            other = row["person"] != owner and not same_name
            if other and skeleton(row["name"]) == skeleton(stored_name):
                raise ValueError(
                    f"{name!r} looks like {row['name']!r} (person {row['person']}): "
                    "pick a name nobody could take for theirs"
                )
        # One active token per canonical name and role, whatever spelling an older row has.
        older = await conn.fetchval(
            f"SELECT name FROM principals WHERE {_CANONICAL} = $1 AND name <> $1"
            " AND role = $2 AND revoked_at IS NULL",
            stored_name,
            role.value,
        )
        if older is not None:
            raise ValueError(
                f"{older} already holds an active {role} token: revoke it first to issue a new one"
            )
        token = new_token()
        stored = await conn.fetchval(
            "INSERT INTO principals (name, role, token_hash, person) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (name, role) DO UPDATE SET token_hash = $3, created_at = now(),"
            " revoked_at = NULL WHERE principals.revoked_at IS NOT NULL RETURNING 1",
            stored_name,
            role.value,
            hash_token(token),
            owner,
        )
    if stored is None:
        raise ValueError(
            f"{stored_name} already holds an active {role} token: "
            "revoke it first to issue a new one"
        )
    return token


async def list_principals(pool: asyncpg.Pool) -> list[PrincipalRecord]:
    rows = await pool.fetch(
        "SELECT name, role, created_at, revoked_at, person FROM principals ORDER BY name, role"
    )
    return [
        PrincipalRecord(r["name"], Role(r["role"]), r["created_at"], r["revoked_at"], r["person"])
        for r in rows
    ]


async def revoke_principal(pool: asyncpg.Pool, name: str, role: Role | None) -> list[Role]:
    """Revoke `name`'s token in `role` (every role when None); the roles revoked."""
    rows = await pool.fetch(
        f"UPDATE principals SET revoked_at = now() WHERE {_CANONICAL} = $1 AND revoked_at IS NULL"
        " AND ($2::text IS NULL OR role = $2) RETURNING role",
        canonical(name),
        role.value if role else None,
    )
    return sorted(Role(r["role"]) for r in rows)


async def find_principal(pool: asyncpg.Pool, token: str) -> Principal | None:
    """The active principal holding `token`, or None."""
    return await find_principal_by_hash(pool, hash_token(token))


async def find_principal_by_hash(pool: asyncpg.Pool, digest: str) -> Principal | None:
    """The active principal whose token hashes to `digest`, or None (a session keeps the
    hash, never the token)."""
    row = await pool.fetchrow(
        "SELECT name, role, token_hash, person FROM principals"
        " WHERE token_hash = $1 AND revoked_at IS NULL",
        digest,
    )
    # The index lookup finds the row; the constant-time compare is what accepts it.
    if row is None or not hmac.compare_digest(row["token_hash"], digest):
        return None
    return Principal(canonical(row["name"]), Role(row["role"]), row["person"])


Lookup = Callable[[str], Awaitable[Principal | None]]


def lookup_by_hash_in(pool: asyncpg.Pool) -> Lookup:
    """A token hash's active principal, from the principals in `pool`'s database."""

    async def lookup(digest: str) -> Principal | None:
        return await find_principal_by_hash(pool, digest)

    return lookup


def lookup_in(pool: asyncpg.Pool) -> Lookup:
    """A bearer token's active principal, from the principals in `pool`'s database."""

    async def lookup(token: str) -> Principal | None:
        return await find_principal(pool, token)

    return lookup


Roles = Callable[[str], Awaitable[frozenset[Role]]]


def roles_in(pool: asyncpg.Pool) -> Roles:
    """The roles a principal name holds an active (unrevoked) token for, from `pool`'s
    database: what a command's actor is checked against where the command is carried out."""

    async def roles(name: str) -> frozenset[Role]:
        rows = await pool.fetch(
            f"SELECT role FROM principals WHERE {_CANONICAL} = $1 AND revoked_at IS NULL",
            canonical(name),
        )
        return frozenset(Role(r["role"]) for r in rows)

    return roles


async def person_of(pool: asyncpg.Pool, name: str) -> str | None:
    """The person `name` belongs to, from any of its principals (revoked ones too), or None
    where no principal has that name."""
    person: str | None = await pool.fetchval(
        f"SELECT person FROM principals WHERE {_CANONICAL} = $1 LIMIT 1", canonical(name)
    )
    return person


Persons = Callable[[Collection[str]], Awaitable[dict[str, str]]]


def persons_in(pool: asyncpg.Pool) -> Persons:
    """The person of each principal name (revoked ones too: who approved stays who it was);
    a name no principal holds stands for itself, canonical."""

    async def persons(names: Collection[str]) -> dict[str, str]:
        wanted = {name: canonical(name) for name in names}
        rows = await pool.fetch(
            f"SELECT DISTINCT {_CANONICAL} AS name, person FROM principals"
            f" WHERE {_CANONICAL} = ANY($1::text[])",
            sorted(set(wanted.values())),
        )
        found = {r["name"]: r["person"] for r in rows}
        return {name: found.get(key, key) for name, key in wanted.items()}

    return persons
