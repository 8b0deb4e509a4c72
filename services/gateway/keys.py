"""Who may call the gateway: clients' API keys, kept only as SHA-256 digests in a file the
gateway rereads when it changes, and the single bearer keys of the activator and replicas.

The key file holds one `sha256:<64 hex>` per line (blank lines and `#` comments allowed),
so the file never holds a usable key: `printf %s "$KEY" | sha256sum` makes a line.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from pathlib import Path

import structlog

log = structlog.get_logger("gateway.keys")

_LINE = re.compile(r"sha256:([0-9a-f]{64})")


class KeyFileError(ValueError):
    """A key file that cannot be used, and why."""


def digest_of(key: str) -> str:
    """The line a key file holds for `key`."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def parse_key_file(text: str) -> frozenset[bytes]:
    """The key digests a key file lists; raises `KeyFileError` naming the first bad line."""
    digests = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.fullmatch(line.lower())
        if match is None:
            raise KeyFileError(f"line {number}: expected sha256:<64 hex digits>")
        digests.add(bytes.fromhex(match.group(1)))
    return frozenset(digests)


def read_private(path: Path) -> str:
    """A secret file's text; refused when others may read it."""
    if path.stat().st_mode & 0o077:
        raise KeyFileError(f"{path} is readable by others: chmod 600 it")
    return path.read_text()


def bearer(authorization: str) -> str:
    """The token of an `Authorization: Bearer <token>` header, or ''."""
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


@dataclass
class ClientKeys:
    """The client key file, reread when its size, inode or modification time changes. A
    change that cannot be read leaves the keys read before in force (and is logged), so a
    typo never locks every client out; the first read must succeed."""

    path: Path
    _digests: frozenset[bytes] = frozenset()
    _seen: tuple[int, int, int] | None = field(default=None)

    def __post_init__(self) -> None:
        self._digests = parse_key_file(read_private(self.path))
        self._seen = self._stamp()

    def _stamp(self) -> tuple[int, int, int]:
        try:
            stat = self.path.stat()
        except OSError:
            return (0, 0, 0)  # gone: logged once, like any other unreadable change
        return stat.st_ino, stat.st_size, stat.st_mtime_ns

    def _refresh(self) -> None:
        stamp = self._stamp()
        if stamp == self._seen:
            return
        self._seen = stamp
        try:
            self._digests = parse_key_file(read_private(self.path))
        except (OSError, KeyFileError) as exc:
            log.error("client_keys_unreadable", path=str(self.path), reason=str(exc))
            return
        log.info("client_keys_reread", keys=len(self._digests))

    def admits(self, key: str) -> bool:
        self._refresh()
        if not key:
            return False
        given = hashlib.sha256(key.encode()).digest()
        return any(hmac.compare_digest(given, known) for known in self._digests)


def admits_bearer(expected: str | None, authorization: str) -> bool:
    """Whether the header carries exactly `expected`; nothing is admitted without one."""
    token = bearer(authorization)
    return bool(expected and token) and hmac.compare_digest(
        token.encode(), (expected or "").encode()
    )
