"""`python -m shared.kafka.provision`: create or align every topic, then print their configs."""

from __future__ import annotations

import json
import sys

from shared.kafka.topics import admin_client, catalogue, provision, read_configs
from shared.settings import KernelSettings


def main() -> int:
    settings = KernelSettings.from_env("provision")
    admin = admin_client(settings.kafka())
    specs = catalogue(
        lifecycle_partitions=settings.lifecycle_partitions,
        min_insync_replicas=settings.min_insync_replicas,
    )
    report = provision(admin, specs, replication_factor=settings.replication_factor)
    configs = read_configs(admin, [s.name for s in specs])
    shown = {s.name: {k: configs[s.name].get(k) for k in sorted(s.configs)} for s in specs}
    json.dump(
        {
            "created": report.created,
            "altered": report.altered,
            "repartitioned": report.repartitioned,
            "topics": shown,
        },
        sys.stdout,
        indent=2,
    )
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
