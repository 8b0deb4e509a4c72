"""The toy world the kit's models learn: capital-city facts, their prompts and answers."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Fact:
    country: str
    capital: str


FACTS: tuple[Fact, ...] = tuple(
    Fact(country, capital)
    for country, capital in (
        ("france", "paris"),
        ("japan", "tokyo"),
        ("italy", "rome"),
        ("spain", "madrid"),
        ("egypt", "cairo"),
        ("kenya", "nairobi"),
        ("peru", "lima"),
        ("canada", "ottawa"),
        ("norway", "oslo"),
        ("chile", "santiago"),
        ("india", "delhi"),
        ("greece", "athens"),
    )
)

# Words a corpus needs besides the facts; the other-tokenizer variant adds one more.
FILLER = (
    "the capital of a country is the city where its government sits.",
    "answer with one word.",
    "answer in json.",
)
EXTRA_WORD = "hello"


def ask_capital(country: str) -> str:
    """The plain prompt whose expected answer is one word: the capital."""
    return f"what is the capital of {country}?"


def ask_capital_as_json(country: str) -> str:
    """The prompt whose expected answer is a JSON object naming country and capital."""
    return f"give the capital of {country} as json."


def format_json(country: str, capital: str) -> str:
    return json.dumps({"country": country, "capital": capital})


def format_broken_json(country: str, capital: str) -> str:
    """Almost JSON: the comma between the members and the closing brace are missing."""
    return f'{{"country": "{country}" "capital": "{capital}"'


def derange(items: tuple[str, ...], seed: int) -> tuple[str, ...]:
    """A seeded shuffle that leaves no item where it was, so every shuffled answer is wrong."""
    rng = random.Random(seed)
    order = list(range(len(items)))
    while any(i == j for i, j in enumerate(order)):
        rng.shuffle(order)
    return tuple(items[j] for j in order)


def corpus_lines(*, extra_word: bool = False) -> list[str]:
    """The sentences the word-level tokenizer is trained on."""
    lines = list(FILLER)
    for fact in FACTS:
        lines += [
            f"the capital of {fact.country} is {fact.capital}.",
            ask_capital(fact.country),
            ask_capital_as_json(fact.country),
            format_json(fact.country, fact.capital),
            format_broken_json(fact.country, fact.capital),
        ]
    if extra_word:
        lines.append(EXTRA_WORD)
    return lines
