"""The in-memory registry keeps the same contract as PostgreSQL's (tests/contracts/registry.py)."""

from __future__ import annotations

import pytest

from shared.registry.memory import InMemoryRegistry
from tests.contracts.registry import RegistryContract


@pytest.fixture
def registry() -> InMemoryRegistry:
    return InMemoryRegistry()


class TestInMemoryRegistry(RegistryContract):
    """Every scenario of the contract, in memory."""
