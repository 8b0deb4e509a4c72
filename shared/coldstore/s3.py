"""Cold storage in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW), written once per key.

`put` is a conditional write (`If-None-Match: *`), so two writers racing on one key cannot
replace each other's object; the body carries its SHA-256 so the server rejects a
corrupted upload. For a bucket that even an administrator cannot rewrite, enable S3 Object
Lock with a default retention on the bucket; every object written here then inherits it.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from shared.coldstore.ports import ArchiveConflict, ColdStorageError, checked_key

_ALREADY_THERE = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
_MISSING = {"NoSuchKey", "404", "NotFound"}


class S3ColdStorage:
    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    @classmethod
    def from_url(
        cls, url: str, *, endpoint_url: str | None = None, region: str | None = None
    ) -> S3ColdStorage:
        """`s3://bucket/prefix`; credentials come from boto3's usual chain (AWS_* vars, ...)."""
        bucket, prefix = split_s3_uri(url)
        client = boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region or None,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}),
        )
        return cls(client, bucket, prefix)

    def uri_for(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{checked_key(key)}"

    def put(self, key: str, data: bytes) -> str:
        object_key = self.prefix + checked_key(key)
        uri = f"s3://{self.bucket}/{object_key}"
        checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=object_key,
                Body=data,
                IfNoneMatch="*",
                ChecksumSHA256=checksum,
                ContentType="application/json",
            )
        except ClientError as exc:
            if _code(exc) not in _ALREADY_THERE:
                raise ColdStorageError(f"cannot write {uri}: {exc}") from exc
            if self._get(self.bucket, object_key, uri) != data:
                raise ArchiveConflict(
                    f"{uri} already holds a different archive; refusing to replace it"
                ) from None
        except BotoCoreError as exc:
            raise ColdStorageError(f"cannot write {uri}: {exc}") from exc
        return uri

    def read(self, uri: str) -> bytes:
        bucket, object_key = split_s3_uri(uri)
        return self._get(bucket, object_key, uri)

    def _get(self, bucket: str, object_key: str, uri: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=bucket, Key=object_key)
            body: bytes = response["Body"].read()
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise ColdStorageError(f"no archive at {uri}") from exc
            raise ColdStorageError(f"cannot read {uri}: {exc}") from exc
        except BotoCoreError as exc:
            raise ColdStorageError(f"cannot read {uri}: {exc}") from exc
        return body


def split_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, key or prefix) of `s3://bucket/key`."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ColdStorageError(f"{uri!r} is not an s3://bucket/... URI")
    return parsed.netloc, parsed.path.lstrip("/")


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
