"""The replica routes by the kernel's routing table (`shared.routing`), the same choice the
gateway makes; these names stay importable from here for older callers."""

from __future__ import annotations

from shared.routing import Route, RoutingTable, bucket, choose

__all__ = ["Route", "RoutingTable", "bucket", "choose"]
