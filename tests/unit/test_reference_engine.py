"""The reference replica's engine keeps a bounded number of adapters in the PEFT model and
swaps the others back in on use: an evicted adapter still answers as itself."""

from __future__ import annotations

import pytest

from services.reference_server.engine import Engine, LoadRefused
from shared.modelkit import Kit, kit
from shared.modelkit.facts import FACTS, ask_capital

QUESTIONS = [ask_capital(f.country) for f in FACTS[:6]]


@pytest.fixture(scope="module")
def built() -> Kit:
    return kit()


def test_an_adapter_swapped_out_answers_as_itself_when_asked_again(built: Kit) -> None:
    engine = Engine(built.base, max_resident=1)
    prompts = [engine.render_chat([{"role": "user", "content": q}]) for q in QUESTIONS]
    engine.load("good", str(built.good))
    good = engine.generate("good", prompts, max_new_tokens=4)
    engine.load("shuffled", str(built.shuffled))  # evicts "good" from the PEFT model
    shuffled = engine.generate("shuffled", prompts, max_new_tokens=4)

    assert set(engine.loaded()) == {"good", "shuffled"}
    assert good != shuffled  # the two really differ, so the next line can fail
    assert engine.generate("good", prompts, max_new_tokens=4) == good
    assert engine.generate("shuffled", prompts, max_new_tokens=4) == shuffled
    assert engine.generate(None, prompts, max_new_tokens=4) not in (good, shuffled)


def test_a_name_is_loaded_once_and_an_unloaded_one_is_gone_even_when_swapped_out(
    built: Kit,
) -> None:
    engine = Engine(built.base, max_resident=1)
    engine.load("good", str(built.good))
    engine.load("json", str(built.json))
    with pytest.raises(LoadRefused):
        engine.load("good", str(built.good))  # swapped out, still loaded under its name
    assert engine.unload("good") and not engine.unload("good")
    assert set(engine.loaded()) == {"json"}
    with pytest.raises(KeyError):
        engine.generate("good", ["hello"], max_new_tokens=2)
