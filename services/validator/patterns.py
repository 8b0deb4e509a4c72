"""Regular expressions an adapter config may carry: only ones that Python's backtracking
engine matches against a module name in bounded time.

PEFT full-matches a string `target_modules` (and wraps each `rank_pattern` key) against
every base module name, and so does the validator. A nested quantifier (`(.*.*)*x`), a
repeated alternation (`(.|.)*x`), a backreference or a long run of unbounded quantifiers
makes a failing match try exponentially or vastly polynomially many paths: one config
could stall the validator for hours. Such a pattern is refused as invalid, never run.
"""

from __future__ import annotations

import re
import re._parser as sre  # the stdlib's own parser: the tree `re.compile` builds
from typing import Any

MAX_UNBOUNDED = 4  # unbounded quantifiers in one pattern; each multiplies the paths tried
LARGE = 64  # a bounded quantifier above this counts as unbounded
REPEATS = ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT")


def pattern_problem(pattern: str) -> str | None:
    """Why `pattern` is refused ("is not a valid regular expression", ...), or None."""
    try:
        tree = sre.parse(pattern)
    except (re.error, OverflowError, RecursionError):
        return "is not a valid regular expression"
    unbounded = [0]
    why = _refusal(tree.data, False, unbounded)
    if why is None and unbounded[0] > MAX_UNBOUNDED:
        why = f"has {unbounded[0]} unbounded quantifiers (at most {MAX_UNBOUNDED})"
    return None if why is None else f"could take too long to match: it {why}"


def _refusal(items: Any, repeated: bool, unbounded: list[int]) -> str | None:
    for op, av in items:
        kind, why = str(op), None
        if kind in REPEATS:
            _low, high, body = av
            if high > 1 and repeated:
                return "nests a quantifier inside another"
            if high == sre.MAXREPEAT or high > LARGE:
                unbounded[0] += 1
            why = _refusal(body, repeated or high > 1, unbounded)
        elif kind == "BRANCH":
            if repeated:
                return "repeats an alternation"
            why = next((w for b in av[1] if (w := _refusal(b, False, unbounded))), None)
        elif kind == "GROUPREF" or kind == "GROUPREF_EXISTS":
            return "uses a backreference"
        elif kind == "SUBPATTERN":
            why = _refusal(av[3], repeated, unbounded)
        elif kind in ("ASSERT", "ASSERT_NOT"):
            why = _refusal(av[1], repeated, unbounded)
        elif kind == "ATOMIC_GROUP":
            why = _refusal(av, repeated, unbounded)
        if why is not None:
            return why
    return None
