"""The serving contract as the activator reports it: one line per term a place breaks.

A revision loads only where base, tokenizer, template and quantization are exactly those
its manifest was trained for; the comparison itself is `shared.contract`'s.
"""

from __future__ import annotations

from shared.contract import ServingContract


def contract_problems(wanted: ServingContract, found: ServingContract, where: str) -> list[str]:
    """One line per term where `found` (at `where`) differs from what the manifest wants;
    a term either side leaves blank is unknown, not a difference."""
    return [
        f"{where}: {m.term.value} is {m.found}, the manifest needs {m.wanted}"
        for m in wanted.mismatches(found, blank_is_unknown=True)
    ]
