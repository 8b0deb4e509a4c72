"""Client keys are kept as digests in a private file the gateway rereads when it changes;
the admin and replica keys are single bearer keys."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from services.gateway.keys import (
    ClientKeys,
    KeyFileError,
    admits_bearer,
    bearer,
    digest_of,
    parse_key_file,
)

ALICE, BOB = digest_of("sk-alice"), digest_of("sk-bob")


def raw(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("", set()),
        (f"{ALICE}\n", {"sk-alice"}),
        (
            f"# clients\n\n  {ALICE}  \n{BOB.upper().replace('SHA256', 'sha256')}\n",
            {"sk-alice", "sk-bob"},
        ),
        (f"{ALICE}\n{ALICE}\n", {"sk-alice"}),
    ],
)
def test_a_key_file_lists_digests_comments_and_blank_lines_aside(text: str, keys: set[str]) -> None:
    assert parse_key_file(text) == {raw(k) for k in keys}


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("sk-alice\n", 1),  # a key itself, not its digest
        (f"{ALICE}\nsha256:abc\n", 2),
        (f"md5:{'0' * 32}\n", 1),
        (f"{ALICE} {BOB}\n", 1),
    ],
)
def test_a_bad_line_is_named(text: str, line: int) -> None:
    with pytest.raises(KeyFileError, match=f"line {line}:"):
        parse_key_file(text)


def key_file(path: Path, *lines: str, mode: int = 0o600) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines))
    path.chmod(mode)
    return path


def test_a_key_file_others_may_read_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="chmod 600"):
        ClientKeys(key_file(tmp_path / "keys", ALICE, mode=0o644))


def test_only_a_listed_key_is_admitted(tmp_path: Path) -> None:
    keys = ClientKeys(key_file(tmp_path / "keys", ALICE))

    assert keys.admits("sk-alice")
    assert not keys.admits("sk-bob") and not keys.admits("") and not keys.admits(ALICE)


def test_a_changed_file_is_reread_and_a_bad_change_leaves_the_keys_before(tmp_path: Path) -> None:
    path = key_file(tmp_path / "keys", ALICE)
    keys = ClientKeys(path)

    key_file(path, BOB)
    os.utime(path, ns=(1, 1))  # a new stamp even where the clock is coarse
    assert keys.admits("sk-bob") and not keys.admits("sk-alice")

    key_file(path, "not a digest")
    os.utime(path, ns=(2, 2))
    assert keys.admits("sk-bob")

    path.chmod(0o644)
    key_file(path, ALICE, mode=0o644)
    os.utime(path, ns=(3, 3))
    assert keys.admits("sk-bob") and not keys.admits("sk-alice")  # readable by others: not used


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer sk-1", "sk-1"),
        ("bearer  sk-1 ", "sk-1"),
        ("Basic sk-1", ""),
        ("", ""),
        ("sk-1", ""),
    ],
)
def test_the_bearer_token_is_read_from_the_authorization_header(header: str, token: str) -> None:
    assert bearer(header) == token


@pytest.mark.parametrize(
    ("expected", "header", "admitted"),
    [
        ("adm", "Bearer adm", True),
        ("adm", "Bearer adm2", False),
        ("adm", "", False),
        (None, "Bearer ", False),
        ("", "Bearer ", False),
        ("adm", "Bearer é", False),
    ],
)
def test_a_single_bearer_key_admits_exactly_itself(
    expected: str | None, header: str, admitted: bool
) -> None:
    assert admits_bearer(expected, header) is admitted
