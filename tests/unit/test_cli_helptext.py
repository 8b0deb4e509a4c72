"""Each subcommand's help: its own purpose line and examples, every flag explained."""

from __future__ import annotations

import argparse

import pytest

from adapterctl.helptext import leaves, own_examples
from adapterctl.main import build_parser
from adapterctl.settings import CtlSettings
from shared.settings import KernelSettings

GROUP = """\
Prose about the group.

examples:
  adapterctl retention set --environment production --keep-superseded 3
  adapterctl retention hold sha256:ab12... --adapter a \\
      --reason "case 4711"
  adapterctl retention release sha256:ab12... --adapter a
  adapterctl retention show

exit status: 0 done"""


@pytest.mark.parametrize(
    ("command", "kept", "dropped"),
    [
        ("adapterctl retention hold", ['--reason "case 4711"', "examples:"], ["release", "set "]),
        ("adapterctl retention show", ["retention show", "examples:"], ["hold"]),
        ("adapterctl retention set", ["keep-superseded 3"], ["show", "hold"]),
    ],
)
def test_a_subcommand_keeps_only_its_own_examples(
    command: str, kept: list[str], dropped: list[str]
) -> None:
    text = own_examples(GROUP, command)
    assert text.startswith("Prose about the group.") and text.endswith("exit status: 0 done")
    for part in kept:
        assert part in text
    for part in dropped:
        assert part not in text


@pytest.mark.parametrize(
    "epilog",
    [GROUP, "no examples here", "examples:\n  adapterctl other thing"],
)
def test_an_epilog_without_an_example_of_the_command_is_left_alone(epilog: str) -> None:
    if "retention set" in epilog:
        return
    assert own_examples(epilog, "adapterctl retention set") == epilog


def _parser() -> argparse.ArgumentParser:
    return build_parser(KernelSettings.from_env("adapterctl", {}), CtlSettings.from_env({}))


def _cases() -> list[tuple[str, argparse.ArgumentParser]]:
    return [(" ".join(words), leaf) for words, leaf, _ in leaves(_parser())]


@pytest.mark.parametrize(("command", "leaf"), _cases(), ids=[c for c, _ in _cases()])
def test_every_subcommand_has_a_purpose_an_example_and_explained_flags(
    command: str, leaf: argparse.ArgumentParser
) -> None:
    assert (leaf.description or "").strip(), "no purpose line"
    example = f"adapterctl {command}"
    assert any(
        line.strip() == example or line.strip().startswith(example + " ")
        for line in (leaf.epilog or "").splitlines()
    ), f"no example of {example} in its epilog"
    for action in leaf._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"{action.dest}: no help"
        said = action.required or action.default in (None, False, [], argparse.SUPPRESS)
        assert said or "default" in action.help, f"{action.dest}: its default is not said"
