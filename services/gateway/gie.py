"""The applied routing as Gateway API Inference Extension resources, for Kubernetes users:
one `InferenceModel` (inference.networking.x-k8s.io/v1alpha2) per adapter whose
`targetModels` carry the revisions' lora names and weights, in a `v1` `List` that
`kubectl apply -f` takes as JSON or YAML.

GIE has no field for canary tenants: they stay with the gateway (`x-tenant`), and the
export names them in an annotation so nobody mistakes the weights for the whole routing.
"""

from __future__ import annotations

import json
import re
from typing import Any

from shared.routing import Route, RoutingTable

GROUP = "inference.networking.x-k8s.io"
API_VERSION = f"{GROUP}/v1alpha2"
ANNOTATION = "adapter-promotion"  # the annotations' prefix


def target_models(route: Route) -> list[dict[str, Any]]:
    """The route's revisions and weights: the active takes what the canary does not."""
    share = route.canary_percent if route.canary else 0
    named = ((route.active, 100 - share), (route.canary, share))
    return [{"name": name, "weight": weight} for name, weight in named if name]


def resource_name(adapter: str) -> str:
    """A DNS-1123 subdomain for the adapter (lowercase, `-` for anything else)."""
    name = re.sub(r"[^a-z0-9.-]+", "-", adapter.lower()).strip("-.")
    return name[:253] or "adapter"


def inference_models(
    table: RoutingTable, environment: str, *, pool: str, namespace: str | None = None
) -> dict[str, Any]:
    items = []
    for adapter, route in sorted(table.routes.items()):
        if not route.serves:
            continue
        metadata: dict[str, Any] = {
            "name": resource_name(adapter),
            "labels": {f"{ANNOTATION}/environment": resource_name(environment)},
            "annotations": {f"{ANNOTATION}/routing-generation": str(table.generation)},
        }
        if namespace:
            metadata["namespace"] = namespace
        if route.canary and route.canary_tenants:
            tenants = ",".join(sorted(route.canary_tenants))
            metadata["annotations"][f"{ANNOTATION}/canary-tenants"] = tenants
        spec = {
            "modelName": adapter,
            "criticality": "Standard",
            "poolRef": {"group": GROUP, "kind": "InferencePool", "name": pool},
            "targetModels": target_models(route),
        }
        items.append(
            {
                "apiVersion": API_VERSION,
                "kind": "InferenceModel",
                "metadata": metadata,
                "spec": spec,
            }
        )
    return {"apiVersion": "v1", "kind": "List", "items": items}


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


def to_yaml(value: Any, indent: int = 0) -> str:
    """Block-style YAML of JSON values; strings are double-quoted (JSON's quoting is
    YAML's), so no value is ever read back as another type."""
    pad = " " * indent
    if isinstance(value, dict) and value:
        lines = []
        for key, item in value.items():
            name = key if _PLAIN_KEY.fullmatch(key) else json.dumps(key)
            if isinstance(item, dict | list) and item:
                lines.append(f"{pad}{name}:\n{to_yaml(item, indent + 2)}")
            else:
                lines.append(f"{pad}{name}: {to_yaml(item).strip()}")
        return "\n".join(lines)
    if isinstance(value, list) and value:
        lines = []
        for item in value:
            text = to_yaml(item, indent + 2)
            lines.append(f"{pad}- {text.lstrip()}")
        return "\n".join(lines)
    return pad + json.dumps(value)
