"""Base models and environments in the registry (managed with `adapterctl base|env`)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import asyncpg

from shared.catalogue import BaseModelSpec, EnvironmentSpec


def _base_from_json(spec: dict[str, Any]) -> BaseModelSpec:
    return BaseModelSpec(
        **{
            **spec,
            "modules": {k: (int(v[0]), int(v[1])) for k, v in spec["modules"].items()},
            "quantization_profiles": tuple(spec["quantization_profiles"]),
        }
    )


def _environment_from_json(spec: dict[str, Any]) -> EnvironmentSpec:
    return EnvironmentSpec(
        **{
            **spec,
            "supported_target_modules": tuple(spec["supported_target_modules"]),
            "canary_steps": tuple(spec["canary_steps"]),
            "gateways": tuple(spec.get("gateways", ())),
        }
    )


class PostgresCatalogue:
    """The catalogue in PostgreSQL (implements `shared.registry.port.Catalogue`)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def put_base_model(self, spec: BaseModelSpec) -> None:
        """Register a base model revision; a revision's description never changes."""
        body = asdict(spec)
        body["modules"] = {k: list(v) for k, v in spec.modules.items()}
        inserted = await self.pool.fetchval(
            "INSERT INTO base_models (model_id, revision, spec) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING RETURNING 1",
            spec.model_id,
            spec.revision,
            body,
        )
        if inserted is None:
            existing = await self.base_model(spec.model_id, spec.revision)
            if existing != spec:
                raise ValueError(
                    f"base model {spec.model_id}@{spec.revision} is already registered with a "
                    "different description; a changed base is a new revision"
                )

    async def base_model(self, model_id: str, revision: str) -> BaseModelSpec | None:
        spec = await self.pool.fetchval(
            "SELECT spec FROM base_models WHERE model_id = $1 AND revision = $2",
            model_id,
            revision,
        )
        return _base_from_json(spec) if spec is not None else None

    async def base_models(self) -> list[BaseModelSpec]:
        rows = await self.pool.fetch("SELECT spec FROM base_models ORDER BY model_id, revision")
        return [_base_from_json(r["spec"]) for r in rows]

    async def put_environment(self, spec: EnvironmentSpec) -> None:
        await self.pool.execute(
            "INSERT INTO environments (name, spec) VALUES ($1, $2) ON CONFLICT (name)"
            " DO UPDATE SET spec = $2, updated_at = now()",
            spec.name,
            asdict(spec),
        )

    async def environment(self, name: str) -> EnvironmentSpec | None:
        spec = await self.pool.fetchval("SELECT spec FROM environments WHERE name = $1", name)
        return _environment_from_json(spec) if spec is not None else None

    async def environments(self) -> list[EnvironmentSpec]:
        rows = await self.pool.fetch("SELECT spec FROM environments ORDER BY name")
        return [_environment_from_json(r["spec"]) for r in rows]
