"""Every command that takes a revision resolves a prefix the same way, and a refusal lists
what exists (the digests, or the registered adapters with a did-you-mean)."""

from __future__ import annotations

import pytest

from adapterctl.revisions import match_revision
from adapterctl.source import CliRefusal

A = "sha256:" + "ab12" * 16
B = "sha256:" + "ab34" * 16
C = "sha256:" + "cd56" * 16


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (A, A),  # the full id
        ("ab12", A),  # a prefix without sha256:
        ("sha256:ab3", B),  # with it
        ("cd", C),
    ],
)
def test_a_unique_prefix_names_one_revision(text: str, expected: str) -> None:
    assert match_revision("summarizer", text, [A, B, C], []) == expected


@pytest.mark.parametrize(
    ("text", "known", "adapters", "says"),
    [
        ("ab", [A, B, C], [], "2 revisions of summarizer start with 'ab' (ab12ab12ab12ab12, "),
        ("ef", [A, B, C], [], "no revision of summarizer starts with 'ef'; recently updated: "),
        ("ab", [], ["summariser", "translator"], "did you mean summariser?"),
        ("ab", [], [], "no adapter 'summarizer' is registered (registered: none yet)"),
    ],
)
def test_a_refusal_lists_what_exists(
    text: str, known: list[str], adapters: list[str], says: str
) -> None:
    with pytest.raises(CliRefusal) as refused:
        match_revision("summarizer", text, known, adapters)
    assert says in str(refused.value)
