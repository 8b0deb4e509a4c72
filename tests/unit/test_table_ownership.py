"""Each table has one owner, the one whose migrations create it, and only the owner's code
names it in SQL. The kernel (`shared/registry/migrations/`) owns the registry, outbox,
inbox, catalogue and principals; each service owns what `services/<name>/migrations/`
creates. Others reach a service's state through its commands and its HTTP API.

The check reads every SQL-looking string literal (and f-string part) in the Python code
under shared/, services/, adapterctl/, infra/ and benchmarks/, and finds the tables it
names after FROM, JOIN, INTO, UPDATE or TABLE."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCANNED = ("shared", "services", "adapterctl", "infra", "benchmarks")
KERNEL = "kernel"

# Who may name another owner's table, and why. Keep each reason true, or remove the entry.
ALLOWED: dict[tuple[str, str], str] = {
    # The activator serves the registry's pointers: routing documents, canaries to analyse.
    # Read-only; it moves them through the registry port's commits.
    ("services/activator/store.py", "pointers"): "reads the registry's pointers (routing)",
    # A benchmark of the kernel's storage: the outbox payload size it writes.
    ("benchmarks/backlog.py", "outbox"): "measures the outbox payload size",
}


def _owners() -> dict[str, str]:
    """table -> owner, from the CREATE TABLE statements of every migration folder."""
    folders = {KERNEL: REPO / "shared" / "registry" / "migrations"}
    for folder in sorted((REPO / "services").glob("*/migrations")):
        folders[folder.parent.name] = folder
    owners: dict[str, str] = {}
    for owner, folder in folders.items():
        for sql in sorted(folder.glob("*.sql")):
            for table in re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)", sql.read_text()):
                assert table not in owners, f"{table} is created by {owners[table]} and {owner}"
                owners[table] = owner
    return owners


OWNERS = _owners()
_NAMED = re.compile(r"\b(?:FROM|JOIN|INTO|UPDATE|TABLE)\s+(?:IF (?:NOT )?EXISTS\s+)?(\w+)")


def tables_named(source: str) -> set[tuple[int, str]]:
    """(line, table) for each known table a string literal of `source` names in SQL."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            for table in _NAMED.findall(node.value):
                if table in OWNERS:
                    found.add((node.lineno, table))
    return found


def owner_of_file(rel: str) -> str | None:
    parts = rel.split("/")
    if parts[:2] == ["shared", "registry"]:
        return KERNEL
    if parts[0] == "services" and len(parts) > 2:
        return parts[1]
    return None


def _python_files() -> list[Path]:
    return sorted(p for root in SCANNED for p in (REPO / root).rglob("*.py"))


def test_every_table_is_named_only_by_its_owner() -> None:
    offenders = {}
    for path in _python_files():
        rel = path.relative_to(REPO).as_posix()
        for line, table in sorted(tables_named(path.read_text())):
            if OWNERS[table] != owner_of_file(rel) and (rel, table) not in ALLOWED:
                offenders[f"{rel}:{line}"] = f"{table} (owned by {OWNERS[table]})"
    assert offenders == {}, f"SQL naming another owner's table: {offenders}"


def test_every_service_table_belongs_to_a_service_that_applies_its_migrations() -> None:
    for owner in set(OWNERS.values()) - {KERNEL}:
        main = (REPO / "services" / owner / "main.py").read_text()
        assert "migrate_pool(" in main and "MIGRATIONS" in main, f"{owner} never migrates"


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ('q = "SELECT * FROM activator_outcomes WHERE cause_id = $1"', {(1, "activator_outcomes")}),
        ('q = "DELETE FROM legal_holds"', {(1, "legal_holds")}),
        ('q = f"SELECT * FROM pointers WHERE {where}"', {(1, "pointers")}),
        (
            'q = ("INSERT INTO retention_policies (a)"\n " VALUES ($1)")',
            {(1, "retention_policies")},
        ),
        ('doc = "the activator_outcomes table holds answers"', set()),
        ('doc = "read from pointers"', set()),
    ],
)
def test_the_check_finds_tables_in_sql_and_not_in_prose(
    code: str, expected: set[tuple[int, str]]
) -> None:
    assert tables_named(code) == expected


def test_the_kernel_keeps_only_its_own_tables() -> None:
    kernel = {t for t, owner in OWNERS.items() if owner == KERNEL}
    assert kernel == {
        "adapters",
        "log_checkpoints",
        "revisions",
        "pointers",
        "outbox",
        "inbox",
        "base_models",
        "environments",
        "principals",
    }


def test_every_allowance_names_a_file_that_exists_and_still_needs_it() -> None:
    for rel, table in ALLOWED:
        path = REPO / rel
        assert path.exists(), rel
        assert table in {t for _, t in tables_named(path.read_text())}, (
            f"{rel} no longer needs {table}"
        )


@pytest.mark.parametrize(
    ("rel", "table", "allowed"),
    [
        ("adapterctl/rollout.py", "activator_outcomes", False),  # what adapterctl once did
        ("services/archiver/store.py", "legal_holds", True),
        ("services/approval/readmodel.py", "legal_holds", False),
        ("shared/registry/store.py", "outbox", True),
        ("shared/registry/store.py", "activator_replicas", False),
    ],
)
def test_a_table_is_its_owners_alone(rel: str, table: str, allowed: bool) -> None:
    assert (OWNERS[table] == owner_of_file(rel)) is allowed
