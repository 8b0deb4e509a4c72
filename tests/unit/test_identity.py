"""Canonical names and the names refused because they could pass for someone else's."""

from __future__ import annotations

import pytest

from shared.identity import canonical, refuse_reason, skeleton

FULL_WIDTH_CAROL = "\uff43\uff41\uff52\uff4f\uff4c"  # NFKC: carol
CYRILLIC_A_CAROL = "c\u0430rol"
GREEK_OMICRON_CAROL = "car\u03bfl"
CYRILLIC_CAPITALS_CAROL = "\u0421\u0410R\u041eL"  # only the R is Latin


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
        (CYRILLIC_A_CAROL, "CYRILLIC (it reads as 'carol')"),
        (GREEK_OMICRON_CAROL, "GREEK (it reads as 'carol')"),
        (CYRILLIC_CAPITALS_CAROL, "CYRILLIC (it reads as 'carol')"),
        ("\u03bflga", "GREEK"),  # Greek omicron
        ("\u0441\u0430\u0440", "CYRILLIC"),  # one script, still not Latin
        ("c\u0251rol", "look like others (it reads as 'carol')"),  # Latin alpha
        ("d\u0131ana", "look like others (it reads as 'diana')"),  # dotless i
        ("carol\u200b", "use letters, digits"),  # a zero-width space
        ("caf\u00e9", "use letters, digits"),  # Latin, but not ASCII
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
        ("carol", FULL_WIDTH_CAROL, True),
        ("carol", CYRILLIC_A_CAROL, True),
        ("carol", GREEK_OMICRON_CAROL, True),
        ("carol", CYRILLIC_CAPITALS_CAROL, True),
        ("olga", "\u03bflga", True),
        ("bob", "\u0432\u043e\u0432", True),  # Cyrillic capitals BOB, case-folded
        ("carol", "karol", False),
        ("dave", "dove", False),
    ],
)
def test_look_alike_names_share_a_skeleton(one: str, other: str, alike: bool) -> None:
    assert (skeleton(one) == skeleton(other)) is alike
