"""The approval's own tables: applied by its composition root at start, after the kernel's."""

from pathlib import Path

from shared.registry.migrate import Migrations

MIGRATIONS = Migrations("approval", Path(__file__).parent)
