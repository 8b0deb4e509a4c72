"""Canonical principal names, and the names that could pass for someone else's.

Separation of duties compares names, so a name must have one spelling: `canonical` is
Unicode NFKC (full-width and compatibility letters become plain ones), then case folding,
then trimming. A principal's canonical name must be plain ASCII from a small alphabet
(letters, digits, `. _ @ + -`): a Cyrillic a (U+0430) in `carol` is a second script, refused at
creation, not a second person. Within that alphabet some names still look alike (`caro1`
and `carol`, `rnary` and `mary`): `skeleton` maps each to a representative in the manner
of Unicode TR39's confusable skeletons (only the ASCII confusables this alphabet allows;
the full TR39 table is needed only for names this module already refuses), and a new
principal whose skeleton matches another person's principal is refused.

Pure: no I/O. `shared.registry.principals` applies it at creation; separation of duties
compares `canonical` names and persons.
"""

from __future__ import annotations

import re
import unicodedata

NAME = re.compile(r"^[a-z0-9][a-z0-9._@+-]{0,127}$")

# ASCII look-alikes (TR39 confusables within the allowed alphabet), longest first.
_CONFUSABLE = (("rn", "m"), ("vv", "w"), ("cl", "d"), ("0", "o"), ("1", "l"), ("i", "l"))


def canonical(name: str) -> str:
    """The one spelling of `name` that duties compare: NFKC, case-folded, trimmed."""
    return unicodedata.normalize("NFKC", name).casefold().strip()


def skeleton(name: str) -> str:
    """What `name` looks like: its canonical form with look-alike letters made one."""
    shown = canonical(name)
    for look_alike, representative in _CONFUSABLE:
        shown = shown.replace(look_alike, representative)
    return shown


def scripts(name: str) -> set[str]:
    """The scripts of `name`'s letters, by their Unicode names (LATIN, CYRILLIC, GREEK...)."""
    return {
        unicodedata.name(c, "UNKNOWN").split(" ")[0]
        for c in unicodedata.normalize("NFKC", name)
        if c.isalpha()
    }


def refuse_reason(name: str) -> str | None:
    """Why `name` cannot name a principal, or None when its canonical form can."""
    if not name.strip():
        return "a principal needs a name"
    if name != name.strip():
        return f"{name!r} has leading or trailing spaces"
    found = scripts(name) - {"LATIN"}
    if found:
        return (
            f"{name!r} mixes in letters of {', '.join(sorted(found))}: names are Latin "
            "letters, digits and . _ @ + - (a look-alike letter could pass for someone else)"
        )
    if not NAME.fullmatch(canonical(name)):
        return f"{name!r}: use letters, digits and . _ @ + - only, starting with a letter or digit"
    return None
