"""Cold storage for archive records: the port, its directory and S3 backends, and the settings
that choose one (a directory by default)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from pydantic import Field

from shared.coldstore.directory import DirectoryColdStorage, path_of
from shared.coldstore.ports import ArchiveConflict, ColdStorage, ColdStorageError
from shared.settings import EnvSettings

DEFAULT_URL = "var/cold"


class ColdStorageSettings(EnvSettings):
    """Where archive records go: a directory (path or file:// URL) or `s3://bucket/prefix`;
    S3 credentials come from boto3's own chain."""

    url: str = Field(
        default=DEFAULT_URL,
        validation_alias="COLD_STORAGE_URL",
        description="a directory (path or `file://` URL) or `s3://bucket/prefix`",
    )
    s3_endpoint: str = Field(
        default="",
        validation_alias="COLD_STORAGE_S3_ENDPOINT",
        description="an S3-compatible store's endpoint (MinIO, Ceph); empty: AWS",
    )
    s3_region: str = Field(
        default="", validation_alias="COLD_STORAGE_S3_REGION", description="the S3 region"
    )


def open_cold_storage(settings: ColdStorageSettings, url: str | None = None) -> ColdStorage:
    """The backend for `url` (default: the configured one); any archive URI names its backend."""
    url = url or settings.url
    scheme = urlparse(url).scheme
    if scheme == "s3":
        from shared.coldstore.s3 import S3ColdStorage  # boto3 only where S3 is used

        return S3ColdStorage.from_url(
            url, endpoint_url=settings.s3_endpoint, region=settings.s3_region
        )
    if scheme == "file":
        return DirectoryColdStorage(path_of(url))
    if scheme:
        raise ColdStorageError(f"cold storage {url!r}: use a directory, file:// or s3:// URL")
    return DirectoryColdStorage(Path(url))


def read_archive(settings: ColdStorageSettings, uri: str) -> bytes:
    """The bytes at an archive URI, from whichever backend the URI names."""
    if urlparse(uri).scheme == "file":
        return DirectoryColdStorage(path_of(uri).parent).read(uri)
    return open_cold_storage(settings, uri).read(uri)


__all__ = [
    "ArchiveConflict",
    "ColdStorage",
    "ColdStorageError",
    "ColdStorageSettings",
    "DirectoryColdStorage",
    "open_cold_storage",
    "read_archive",
]
