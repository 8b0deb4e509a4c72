"""The replica's answer text, token by token: what it releases while tokens come adds up to
the whole answer, cut before a stop string, with nothing sent that a later token takes back."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from services.reference_server.decoding import TextAssembler


def released(tokens: Sequence[str], stops: Sequence[str]) -> tuple[list[str], str | None]:
    """What the assembler hands out after each token (stopping when it is done), then at the
    end; tokens here are their own text."""
    assembler = TextAssembler(lambda ids: "".join(tokens[i] for i in ids), stops)
    pieces = []
    for index in range(len(tokens)):
        pieces.append(assembler.push(index))
        if assembler.done:
            break
    return [*pieces, assembler.finish()], assembler.stop


@pytest.mark.parametrize(
    ("tokens", "stops", "pieces", "stop"),
    [
        pytest.param(
            ["  he", "llo", " wor", "ld"], [], ["he", "llo", " wor", "ld", ""], None, id="plain"
        ),
        pytest.param(
            ["a", " ", " ", "b", " "], [], ["a", "", "", "  b", "", ""], None, id="spaces-held"
        ),
        pytest.param(
            ["hello", " w", "or", "ld"], ["wor"], ["hello", "", "", ""], "wor", id="stop-across"
        ),
        pytest.param(["ax", "b"], ["xyz"], ["a", "xb", ""], None, id="not-a-stop-after-all"),
        pytest.param(["STOP", "more"], ["STOP"], ["", ""], "STOP", id="stop-first"),
        pytest.param(["x", "ab", "c"], ["b", "abc"], ["x", "a", ""], "b", id="earliest-stop"),
    ],
)
def test_released_text_adds_up_to_the_answer_cut_before_its_stop(
    tokens: list[str], stops: list[str], pieces: list[str], stop: str | None
) -> None:
    assert released(tokens, stops) == (pieces, stop)


def test_a_finished_answer_takes_no_more_tokens() -> None:
    assembler = TextAssembler(lambda ids: "x" * len(ids), [])
    assembler.push(0)
    assembler.finish()

    with pytest.raises(ValueError):
        assembler.push(1)
    assert assembler.finish() == "" and assembler.text == "x"


def test_a_character_is_released_only_once_its_bytes_are_whole() -> None:
    parts = [b"caf", b"\xc3", b"\xa9"]  # é is two bytes, made by two tokens
    assembler = TextAssembler(
        lambda ids: b"".join(parts[i] for i in ids).decode(errors="replace"), []
    )

    assert [assembler.push(i) for i in range(3)] == ["caf", "", "\xe9"]
