"""Canonical names and the names refused because they could pass for someone else's."""

from __future__ import annotations

import pytest

from shared.identity import canonical, refuse_reason, skeleton

FULL_WIDTH_CAROL = "\uff43\uff41\uff52\uff4f\uff4c"  # NFKC: carol


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("carol", "carol"),
        ("Carol", "carol"),
        ("  carol\t", "carol"),
        (FULL_WIDTH_CAROL, "carol"),  # full-width compatibility letters
        ("CAROL@Example.Internal", "carol@example.internal"),
        ("Straße", "strasse"),  # case folding, not lower()
    ],
)
def test_canonical_is_nfkc_case_folded_and_trimmed(given: str, expected: str) -> None:
    assert canonical(given) == expected


@pytest.mark.parametrize(
    ("name", "refused"),
    [
        ("carol", None),
        ("Carol", None),  # stored as carol
        (FULL_WIDTH_CAROL, None),  # stored as carol
        ("op-carol.2@example.internal", None),
        ("", "needs a name"),
        ("   ", "needs a name"),
        ("carol ", "leading or trailing spaces"),
        ("c\u0430rol", "CYRILLIC"),  # Cyrillic a
        ("\u03bflga", "GREEK"),  # Greek omicron
        ("carol smith", "use letters, digits"),
        ("-carol", "use letters, digits"),
        ("carol;drop", "use letters, digits"),
    ],
)
def test_a_principal_name_is_refused_when_it_could_pass_for_another(
    name: str, refused: str | None
) -> None:
    reason = refuse_reason(name)
    assert reason is None if refused is None else refused in (reason or "")


@pytest.mark.parametrize(
    ("one", "other", "alike"),
    [
        ("carol", "caro1", True),
        ("mary", "rnary", True),
        ("bob", "b0b", True),
        ("will", "wiii", True),
        ("carol", "Carol", True),
        ("carol", "karol", False),
        ("dave", "dove", False),
    ],
)
def test_look_alike_names_share_a_skeleton(one: str, other: str, alike: bool) -> None:
    assert (skeleton(one) == skeleton(other)) is alike
