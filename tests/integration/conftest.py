"""Every integration test runs against the real infrastructure."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from tests.conftest import Infra


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


async def create_database(infra: Infra) -> str:
    """A database of its own on the session's PostgreSQL: nothing leaks into the main one."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(infra.database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return infra.database_url.rsplit("/", 1)[0] + "/" + name
