"""What the HTTP layer works with, wired once by `main.build` and found on the app's state."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from services.approval.deciding import Decider
from services.approval.evidence import EvidenceSources
from services.approval.ports import ApprovalReads
from services.approval.sessions import Sessions
from shared.registry.port import Catalogue, Registry
from shared.registry.principals import Lookup
from shared.signing import Signer


@dataclass(frozen=True, slots=True)
class WebDeps:
    registry: Registry
    readmodel: ApprovalReads
    catalogue: Catalogue
    decider: Decider
    sources: EvidenceSources
    signer: Signer
    lookup: Lookup  # a bearer token's active principal
    lookup_hash: Lookup  # a token hash's active principal (what a session keeps)
    sessions: Sessions
    public_url: str = ""  # APPROVAL_PUBLIC_URL: Secure cookies and the forms' origin
    session_ttl_s: int = 8 * 3600


def web_deps(request: Request) -> WebDeps:
    deps: WebDeps = request.app.state.deps
    return deps
