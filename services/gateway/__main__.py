"""`python -m services.gateway`: the OpenAI-compatible gateway of one environment
(GATEWAY_* variables; see services/gateway/README.md)."""

from __future__ import annotations

from services.gateway.main import run

run()
