"""Each subcommand's `--help`: its purpose line and its own examples.

A command group writes one epilog: prose, then an `examples:` block with a line (or a
`\\`-continued few) per example. `document` gives every leaf subcommand a description (the
purpose line its group lists) and an epilog holding the group's prose but only the examples
that run that subcommand, so `adapterctl retention hold --help` shows a hold, not a policy.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

EXAMPLES = "examples:"


def own_examples(epilog: str, command: str) -> str:
    """`epilog` with only the examples of `command` (e.g. `adapterctl retention hold`) kept;
    unchanged when it has no examples block or none of them runs `command`."""
    lines = epilog.splitlines()
    if EXAMPLES not in (line.strip() for line in lines):
        return epilog
    start = next(i for i, line in enumerate(lines) if line.strip() == EXAMPLES)
    end = start + 1  # the block ends at the first unindented line after it
    while end < len(lines) and (not lines[end].strip() or lines[end].startswith(" ")):
        end += 1
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    kept: list[str] = []
    keeping = False
    for line in lines[start + 1 : end]:
        stripped = line.strip()
        if line.startswith("  ") and not line.startswith("   "):  # an example's first line
            keeping = stripped == command or stripped.startswith(command + " ")
        if keeping and stripped:
            kept.append(line)
    if not kept:
        return epilog
    after = lines[end:]
    return "\n".join([*lines[:start], EXAMPLES, *kept, *([""] if after else []), *after]).rstrip()


def leaves(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser, str]]:
    """Every runnable subcommand: its words, its parser, the purpose its group lists."""
    for action in parser._actions:  # argparse keeps subparsers only here
        if isinstance(action, argparse._SubParsersAction):
            purposes = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, child in action.choices.items():
                words = (*path, name)
                if any(isinstance(a, argparse._SubParsersAction) for a in child._actions):
                    yield from leaves(child, words)
                else:
                    yield words, child, purposes.get(name, "")


def document(parser: argparse.ArgumentParser) -> None:
    """Give every leaf its purpose line and its own examples (see the module's text)."""
    for words, leaf, purpose in leaves(parser):
        if not (leaf.description or "").strip() and purpose:
            leaf.description = purpose[0].upper() + purpose[1:].rstrip(".") + "."
        if leaf.epilog:
            leaf.epilog = own_examples(leaf.epilog, " ".join(("adapterctl", *words)))
