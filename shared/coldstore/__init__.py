"""Cold storage for archive records: the port, its directory and S3 backends, and the settings
that choose one (a directory by default)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from shared.coldstore.directory import DirectoryColdStorage, path_of
from shared.coldstore.ports import ArchiveConflict, ColdStorage, ColdStorageError

DEFAULT_URL = "var/cold"


@dataclass(frozen=True, slots=True, kw_only=True)
class ColdStorageSettings:
    """`COLD_STORAGE_URL`: a directory (path or file:// URL) or `s3://bucket/prefix`.

    For S3-compatible stores, `COLD_STORAGE_S3_ENDPOINT` names the endpoint (MinIO, Ceph)
    and `COLD_STORAGE_S3_REGION` the region; credentials come from boto3's own chain.
    """

    url: str = DEFAULT_URL
    s3_endpoint: str = ""
    s3_region: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ColdStorageSettings:
        env = os.environ if env is None else env
        return cls(
            url=env.get("COLD_STORAGE_URL", DEFAULT_URL),
            s3_endpoint=env.get("COLD_STORAGE_S3_ENDPOINT", ""),
            s3_region=env.get("COLD_STORAGE_S3_REGION", ""),
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
