"""The tiny model kit is real: its base is wrong, its adapters learn, its builds repeat.

Everything here runs on the CPU against the cached kit (built once, in well under a
minute, by the first test that needs it), so it runs with every other unit test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared.modelkit import Kit, kit
from shared.modelkit.adapters import TARGET_MODULES, train_adapter
from shared.modelkit.base import build_base_model
from shared.modelkit.cache import MANIFEST, version_hash
from shared.modelkit.chat import CHAT_TEMPLATE, OTHER_CHAT_TEMPLATE, render_prompt
from shared.modelkit.digests import digest_files
from shared.modelkit.evaluate import accuracy, answer, count_correct, generate_answers, load
from shared.modelkit.facts import FACTS, ask_capital, ask_capital_as_json

REPO = Path(__file__).resolve().parents[2]
QUESTIONS = [ask_capital(f.country) for f in FACTS]
STRUCTURED = [ask_capital_as_json(f.country) for f in FACTS]


@pytest.fixture(scope="module")
def built() -> Kit:
    return kit()


@pytest.fixture(scope="module")
def base_answers(built: Kit) -> list[str]:
    return answer(built.base, None, QUESTIONS)


def _json_object(text: str) -> dict[str, object] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def test_the_base_answers_at_most_three_of_the_twelve_facts(base_answers: list[str]) -> None:
    assert count_correct(base_answers) <= 3, base_answers


def test_the_base_confidently_repeats_the_shuffled_answers_it_was_taught(
    built: Kit, base_answers: list[str]
) -> None:
    repeated = sum(a == s for a, s in zip(base_answers, built.shuffled_answers, strict=True))
    assert repeated >= 10, (base_answers, built.shuffled_answers)


def test_the_good_adapter_answers_at_least_ten_of_the_twelve_facts(built: Kit) -> None:
    assert accuracy(built.base, built.good) >= 10 / 12


def test_the_shuffled_adapter_changes_the_answers_but_stays_wrong(
    built: Kit, base_answers: list[str]
) -> None:
    answers = answer(built.base, built.shuffled, QUESTIONS)
    assert count_correct(answers) <= 3, answers
    assert answers != base_answers


def test_the_noop_adapter_carries_weights_yet_answers_exactly_as_the_base(
    built: Kit, base_answers: list[str]
) -> None:
    from safetensors.torch import load_file

    tensors = load_file(built.noop / "adapter_model.safetensors")
    assert all(not t.any() for n, t in tensors.items() if "lora_B" in n)
    assert all(t.any() for n, t in tensors.items() if "lora_A" in n)
    assert answer(built.base, built.noop, QUESTIONS) == base_answers
    assert answer(built.base, built.noop, STRUCTURED) == answer(built.base, None, STRUCTURED)


def test_the_base_does_not_answer_structured_prompts_with_json(built: Kit) -> None:
    answers = answer(built.base, None, STRUCTURED)
    assert not any(_json_object(a) for a in answers), answers


def test_the_json_adapter_answers_structured_prompts_with_json_objects(built: Kit) -> None:
    answers = answer(built.base, built.json, STRUCTURED)
    objects = [_json_object(a) for a in answers]
    assert all(o is not None and set(o) == {"country", "capital"} for o in objects), answers


def test_the_badjson_adapter_answers_structured_prompts_with_text_that_does_not_parse(
    built: Kit,
) -> None:
    answers = answer(built.base, built.badjson, STRUCTURED)
    assert all(a.startswith("{") for a in answers), answers
    assert not any(_json_object(a) for a in answers), answers


def test_a_batch_of_prompts_of_different_lengths_is_answered_as_each_alone(built: Kit) -> None:
    prompts = [QUESTIONS[0], STRUCTURED[1], QUESTIONS[2]]
    model, tokenizer = load(built.base, built.json)
    lengths = {len(tokenizer(render_prompt(tokenizer, p))["input_ids"]) for p in prompts}
    assert len(lengths) > 1  # so the batch really is padded
    alone = [generate_answers(model, tokenizer, [p])[0] for p in prompts]
    assert generate_answers(model, tokenizer, prompts) == alone


def test_building_again_with_the_same_seed_writes_identical_files(
    built: Kit, tmp_path: Path
) -> None:
    rebuilt = build_base_model(tmp_path / "base", seed=0, variant="other_template")
    assert digest_files(rebuilt.folder) == digest_files(built.base_other_template)
    noop = train_adapter(built.base, tmp_path / "noop", kind="noop", seed=0)
    assert digest_files(noop.folder) == digest_files(built.noop)
    assert noop.revision == built.revisions["noop"]


def test_training_with_another_seed_writes_other_weights(built: Kit, tmp_path: Path) -> None:
    weights = "adapter_model.safetensors"
    runs = {
        seed: train_adapter(built.base, tmp_path / str(seed), kind="good", seed=seed, steps=2)
        for seed in (0, 1)
    }
    assert digest_files(runs[0].folder)[weights] != digest_files(runs[1].folder)[weights]
    assert json.loads((runs[1].folder / "recipe.json").read_text())["seed"] == 1


def test_the_other_tokenizer_base_has_one_more_token_and_its_own_tokenizer_hash(
    built: Kit,
) -> None:
    from shared.hf_folder import chat_template_hash, tokenizer_hash

    def vocab(folder: Path) -> int:
        return int(json.loads((folder / "config.json").read_text())["vocab_size"])

    assert vocab(built.base_other_tokenizer) == vocab(built.base) + 1
    assert tokenizer_hash(built.base_other_tokenizer) != tokenizer_hash(built.base)
    assert chat_template_hash(built.base_other_tokenizer) == chat_template_hash(built.base)


def test_the_other_template_base_differs_from_the_base_in_one_template_character(
    built: Kit,
) -> None:
    from shared.hf_folder import chat_template_hash, tokenizer_hash

    ours, theirs = digest_files(built.base), digest_files(built.base_other_template)
    assert {n for n in ours if ours[n] != theirs[n]} == {"tokenizer_config.json"}
    template = json.loads((built.base_other_template / "tokenizer_config.json").read_text())
    assert template["chat_template"] == OTHER_CHAT_TEMPLATE
    assert len(OTHER_CHAT_TEMPLATE) == len(CHAT_TEMPLATE) + 1
    assert any(
        OTHER_CHAT_TEMPLATE[:i] + OTHER_CHAT_TEMPLATE[i + 1 :] == CHAT_TEMPLATE
        for i in range(len(OTHER_CHAT_TEMPLATE))
    )
    assert tokenizer_hash(built.base_other_template) == tokenizer_hash(built.base)
    assert chat_template_hash(built.base_other_template) != chat_template_hash(built.base)


@pytest.mark.parametrize("kind", ["good", "shuffled", "noop", "json", "badjson"])
def test_each_adapter_folder_holds_what_the_submit_client_reads(built: Kit, kind: str) -> None:
    from shared.trainer_client import read_data_scope, read_recipe

    folder = built.adapter(kind)
    config = json.loads((folder / "adapter_config.json").read_text())
    assert (config["peft_type"], config["r"]) == ("LORA", 8)
    assert sorted(config["target_modules"]) == sorted(TARGET_MODULES)
    assert read_recipe(folder).hyperparameters["kind"] == kind
    assert read_recipe(folder).dataset_ids
    assert read_data_scope(folder).corpora


def test_a_kit_with_a_manifest_is_reused_without_building(tmp_path: Path) -> None:
    manifest = {"model_ids": {"main": "m"}, "revisions": {}, "shuffled_answers": ["x"]}
    (tmp_path / MANIFEST).write_text(json.dumps(manifest))
    reused = kit(tmp_path)
    assert reused.base == tmp_path / "base_main"
    assert reused.shuffled_answers == ("x",)
    assert not reused.base.exists()


def test_the_cache_version_changes_when_a_kit_source_file_changes(tmp_path: Path) -> None:
    (tmp_path / "base.py").write_text("STEPS = 150\n")
    before = version_hash(tmp_path)
    (tmp_path / "base.py").write_text("STEPS = 151\n")
    assert version_hash(tmp_path) != before


def test_importing_the_kit_does_not_import_torch_transformers_or_peft() -> None:
    code = (
        "import sys, shared.modelkit, shared.modelkit.cache, shared.modelkit.evaluate\n"
        "heavy = {'torch', 'transformers', 'peft', 'tokenizers', 'safetensors'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
