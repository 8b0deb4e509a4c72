"""Principals: who may call the approval service, in which role, by bearer token.

A principal is a name acting in one role, with a bearer token; only the token's SHA-256 is
stored, so the token is shown once, when it is made. A person holding two roles gets two
tokens under one name: separation of duties compares names.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import asyncpg

TOKEN_PREFIX = "apt_"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")


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


@dataclass(frozen=True, slots=True)
class PrincipalRecord:
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None


def new_token() -> str:
    """256 random bits, URL-safe, with a prefix that secret scanners can recognise."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


async def add_principal(pool: asyncpg.Pool, name: str, role: Role) -> str:
    """A new token for `name` in `role`; a revoked pair gets a fresh token, an active one fails."""
    if not NAME.fullmatch(name):
        raise ValueError(f"principal name {name!r}: use letters, digits and . _ @ + - only")
    token = new_token()
    stored = await pool.fetchval(
        "INSERT INTO principals (name, role, token_hash) VALUES ($1, $2, $3)"
        " ON CONFLICT (name, role) DO UPDATE SET token_hash = $3, created_at = now(),"
        " revoked_at = NULL WHERE principals.revoked_at IS NOT NULL RETURNING 1",
        name,
        role.value,
        hash_token(token),
    )
    if stored is None:
        raise ValueError(
            f"{name} already holds an active {role} token: revoke it first to issue a new one"
        )
    return token


async def list_principals(pool: asyncpg.Pool) -> list[PrincipalRecord]:
    rows = await pool.fetch(
        "SELECT name, role, created_at, revoked_at FROM principals ORDER BY name, role"
    )
    return [
        PrincipalRecord(r["name"], Role(r["role"]), r["created_at"], r["revoked_at"]) for r in rows
    ]


async def revoke_principal(pool: asyncpg.Pool, name: str, role: Role | None) -> list[Role]:
    """Revoke `name`'s token in `role` (every role when None); the roles revoked."""
    rows = await pool.fetch(
        "UPDATE principals SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL"
        " AND ($2::text IS NULL OR role = $2) RETURNING role",
        name,
        role.value if role else None,
    )
    return sorted(Role(r["role"]) for r in rows)


async def find_principal(pool: asyncpg.Pool, token: str) -> Principal | None:
    """The active principal holding `token`, or None."""
    digest = hash_token(token)
    row = await pool.fetchrow(
        "SELECT name, role, token_hash FROM principals"
        " WHERE token_hash = $1 AND revoked_at IS NULL",
        digest,
    )
    # The index lookup finds the row; the constant-time compare is what accepts it.
    if row is None or not hmac.compare_digest(row["token_hash"], digest):
        return None
    return Principal(row["name"], Role(row["role"]))


Lookup = Callable[[str], Awaitable[Principal | None]]


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
            "SELECT role FROM principals WHERE name = $1 AND revoked_at IS NULL", name
        )
        return frozenset(Role(r["role"]) for r in rows)

    return roles
