"""The approval service's own settings, read from the environment in one place."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, PositiveInt, field_validator

from shared.settings import EnvSettings, Port


class ApprovalSettings(EnvSettings):
    """Where the HTTP server listens and where the signing key lives.

    The kernel's settings (Kafka, PostgreSQL, topics, artifact root, logs) come from
    `KernelSettings`; these are only what the approval service adds.
    """

    http_host: str = Field(
        default="127.0.0.1",
        validation_alias="APPROVAL_HTTP_HOST",
        description="where the API and the page listen",
    )
    http_port: Port = Field(
        default=8480,
        validation_alias="APPROVAL_HTTP_PORT",
        description="the API and the page's port",
    )
    signing_key: Path = Field(
        default=Path("var/approval/signing.key"),
        validation_alias="APPROVAL_SIGNING_KEY",
        description="Ed25519 private key (PEM, PKCS#8); created with mode 0600 on first start,"
        " refused if others can read it; the public key is written beside it as `.pub`",
    )
    public_url: str = Field(
        default="",
        validation_alias="APPROVAL_PUBLIC_URL",
        description="the URL approvers open (say https://approvals.example.com behind a TLS "
        "proxy): the session cookie is Secure when it is https, and state-changing forms must "
        "come from its origin; empty: the request's own host",
    )
    session_ttl_s: PositiveInt = Field(
        default=8 * 3600,
        validation_alias="APPROVAL_SESSION_TTL_S",
        description="how long a page session lasts after logging in (absolute, seconds)",
    )
    max_report_bytes: PositiveInt = Field(
        default=8 << 20,
        validation_alias="APPROVAL_MAX_REPORT_BYTES",
        description="bound on an evaluation report read for the page",
    )

    @field_validator("public_url")
    @classmethod
    def _an_origin(cls, url: str) -> str:
        # A value without a scheme or a host would name no origin and refuse every form.
        url = url.strip()
        parts = urlsplit(url)
        if url and (parts.scheme not in ("http", "https") or not parts.hostname):
            raise ValueError("expected an http(s) URL such as https://approvals.example.com")
        return url
