"""Canonical principal names, and the names that could pass for someone else's.

Separation of duties compares names, so a name must have one spelling: `canonical` is
Unicode NFKC (full-width and compatibility letters become plain ones), then case folding,
then trimming. A principal's canonical name must be plain ASCII from a small alphabet
(letters, digits, `. _ @ + -`): a Cyrillic a (U+0430) in `carol` is a second script, refused
at creation, not a second person. `skeleton` maps a name to what it looks like, in the
manner of Unicode TR39's confusable skeletons (NFD, each look-alike replaced by its
prototype): cross-script look-alikes (Cyrillic and Greek letters that read as Latin ones)
and the ASCII look-alikes the alphabet allows (`caro1` and `carol`, `rnary` and `mary`).

No TR39 library: the explicit tables below are small and cover what matters here. Names
that reach the registry are ASCII, so only the ASCII table ever separates two principals;
the cross-script table serves the strings nobody vetted (a revision's submitter on old
events) and the reason a refused name is given. A script is read from each letter's
Unicode name (`LATIN SMALL LETTER A`, `CYRILLIC SMALL LETTER A`).

Pure: no I/O. `shared.registry.principals` applies it at creation; separation of duties
compares `canonical` names and persons, and the submitter also by `skeleton`.
"""

from __future__ import annotations

import re
import unicodedata

NAME = re.compile(r"^[a-z0-9][a-z0-9._@+-]{0,127}$")

# Cyrillic, Greek and non-ASCII Latin letters that read as an ASCII letter, after case
# folding (so a capital Cyrillic A is here as its small letter): after TR39's
# confusables.txt. Named, not typed, so the source shows no look-alike itself.
_PROTOTYPES = str.maketrans(
    {
        unicodedata.lookup(letter): prototype
        for letter, prototype in (
            ("CYRILLIC SMALL LETTER A", "a"),
            ("CYRILLIC SMALL LETTER VE", "b"),
            ("CYRILLIC SMALL LETTER ES", "c"),
            ("CYRILLIC SMALL LETTER KOMI DE", "d"),
            ("CYRILLIC SMALL LETTER IE", "e"),
            ("CYRILLIC SMALL LETTER SHHA", "h"),
            ("CYRILLIC SMALL LETTER EN", "h"),
            ("CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I", "i"),
            ("CYRILLIC SMALL LETTER JE", "j"),
            ("CYRILLIC SMALL LETTER KA", "k"),
            ("CYRILLIC SMALL LETTER PALOCHKA", "l"),
            ("CYRILLIC SMALL LETTER EM", "m"),
            ("CYRILLIC SMALL LETTER O", "o"),
            ("CYRILLIC SMALL LETTER ER", "p"),
            ("CYRILLIC SMALL LETTER QA", "q"),
            ("CYRILLIC SMALL LETTER DZE", "s"),
            ("CYRILLIC SMALL LETTER TE", "t"),
            ("CYRILLIC SMALL LETTER WE", "w"),
            ("CYRILLIC SMALL LETTER HA", "x"),
            ("CYRILLIC SMALL LETTER U", "y"),
            ("GREEK SMALL LETTER ALPHA", "a"),
            ("GREEK SMALL LETTER BETA", "b"),
            ("GREEK LUNATE SIGMA SYMBOL", "c"),
            ("GREEK SMALL LETTER EPSILON", "e"),
            ("GREEK SMALL LETTER ETA", "n"),
            ("GREEK SMALL LETTER IOTA", "i"),
            ("GREEK LETTER YOT", "j"),
            ("GREEK SMALL LETTER KAPPA", "k"),
            ("GREEK SMALL LETTER MU", "m"),
            ("GREEK SMALL LETTER NU", "v"),
            ("GREEK SMALL LETTER OMICRON", "o"),
            ("GREEK SMALL LETTER RHO", "p"),
            ("GREEK SMALL LETTER TAU", "t"),
            ("GREEK SMALL LETTER UPSILON", "u"),
            ("GREEK SMALL LETTER CHI", "x"),
            ("GREEK SMALL LETTER GAMMA", "y"),
            ("GREEK SMALL LETTER ZETA", "z"),
            ("LATIN SMALL LETTER ALPHA", "a"),
            ("LATIN SMALL LETTER SCRIPT G", "g"),
            ("LATIN SMALL LETTER DOTLESS I", "i"),
            ("LATIN SMALL LETTER IOTA", "i"),
            ("LATIN SMALL LETTER DOTLESS J", "j"),
        )
    }
)

# ASCII look-alikes (TR39 confusables within the allowed alphabet), longest first.
_CONFUSABLE = (("rn", "m"), ("vv", "w"), ("cl", "d"), ("0", "o"), ("1", "l"), ("i", "l"))


def canonical(name: str) -> str:
    """The one spelling of `name` that duties compare: NFKC, case-folded, trimmed."""
    return unicodedata.normalize("NFKC", name).casefold().strip()


def _prototype(name: str) -> str:
    """`name` canonical, with each cross-script look-alike letter made its ASCII letter."""
    return unicodedata.normalize("NFD", canonical(name)).translate(_PROTOTYPES)


def skeleton(name: str) -> str:
    """What `name` looks like: its canonical form with look-alike letters made one."""
    shown = _prototype(name)
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
    shown = _prototype(name)
    reads = f" (it reads as {shown!r})" if shown.isascii() else ""
    found = scripts(name) - {"LATIN"}
    if found:
        return (
            f"{name!r} mixes in letters of {', '.join(sorted(found))}{reads}: names are Latin "
            "letters, digits and . _ @ + - (a look-alike letter could pass for someone else)"
        )
    if shown != unicodedata.normalize("NFD", canonical(name)):
        return f"{name!r} has letters that look like others{reads}: use plain ASCII letters"
    if not NAME.fullmatch(canonical(name)):
        return f"{name!r}: use letters, digits and . _ @ + - only, starting with a letter or digit"
    return None
