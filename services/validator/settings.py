"""The validator's own settings: none yet beyond the kernel's."""

from __future__ import annotations

from shared.settings import EnvSettings


class ValidatorSettings(EnvSettings):
    """The validator reads only the kernel's settings (`KernelSettings`: Kafka, PostgreSQL,
    topics, the artifact root it checks, logs); a variable of its own belongs here."""
