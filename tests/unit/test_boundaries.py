"""Who may touch the database: a service's composition root (`main.py`) and its storage
adapters, and the kernel's registry. Handlers and decisions see ports only."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Storage adapters and composition roots, each with what it is.
MAY_TOUCH_THE_DATABASE = {
    "shared/registry/store.py": "the registry in PostgreSQL",
    "shared/registry/reads.py": "the registry's reads in PostgreSQL",
    "shared/registry/catalogue_store.py": "the catalogue in PostgreSQL",
    "shared/registry/principals.py": "principals in PostgreSQL",
    "shared/registry/relay.py": "the outbox relay",
    "shared/registry/migrate.py": "migrations",
    "shared/registry/__main__.py": "the relay's composition root",
    "shared/service.py": "every service's shared composition root",
    "shared/observability.py": "the PostgreSQL health probe",
    "services/activator/store.py": "the activator's tables",
    "services/approval/readmodel.py": "the approval read model's tables",
    "services/approval/projection.py": "the approval read model's writer",
    "services/approval/sessions.py": "the approval page's sessions",
    "services/archiver/store.py": "the archiver's retention tables",
}


def _python_files() -> list[Path]:
    roots = [REPO / "shared", REPO / "services", REPO / "adapterctl"]
    return sorted(p for root in roots if root.exists() for p in root.rglob("*.py"))


def _touches_the_database(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(
            a.name.split(".")[0] == "asyncpg" for a in node.names
        ):
            found.append(f"line {node.lineno}: import asyncpg")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "asyncpg":
            found.append(f"line {node.lineno}: from asyncpg import")
        elif isinstance(node, ast.Attribute) and node.attr in ("pool", "_pool"):
            found.append(f"line {node.lineno}: .{node.attr}")
    return found


def _allowed(rel: str) -> bool:
    if rel in MAY_TOUCH_THE_DATABASE:
        return True
    parts = rel.split("/")
    # A service's composition root or its own storage adapter; the command line is its own
    # composition root.
    return (parts[0] == "services" and parts[-1] in ("main.py", "store.py")) or (
        parts[0] == "adapterctl"
    )


def test_only_composition_roots_and_storage_adapters_touch_the_database() -> None:
    offenders = {}
    for path in _python_files():
        rel = path.relative_to(REPO).as_posix()
        found = _touches_the_database(ast.parse(path.read_text()))
        if found and not _allowed(rel):
            offenders[rel] = found
    assert offenders == {}, f"reach the database outside an adapter or a root: {offenders}"


def test_the_check_finds_a_handler_reaching_through_the_registrys_pool() -> None:
    code = "async def on_x(event, deps):\n    await deps.registry.pool.fetch('SELECT 1')\n"
    assert _touches_the_database(ast.parse(code)) == ["line 2: .pool"]
    assert not _allowed("services/validator/handlers.py")


def test_every_allowance_names_a_file_that_exists() -> None:
    missing = [rel for rel in MAY_TOUCH_THE_DATABASE if not (REPO / rel).exists()]
    assert missing == []
