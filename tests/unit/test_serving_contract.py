"""The serving contract's one comparison, used by the validator and the activator."""

from __future__ import annotations

import dataclasses

import pytest

from shared.catalogue import EnvironmentSpec
from shared.contract import Mismatch, ServingContract, Term

WANTED = ServingContract(
    base_model_id="tiny-llama",
    base_model_revision="r1",
    tokenizer_hash="sha256:tok",
    chat_template_hash="sha256:tpl",
    quantization_profile="bf16",
)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, []),
        ({"base_model_id": "other"}, [Mismatch(Term.BASE_MODEL_ID, "tiny-llama", "other")]),
        ({"base_model_revision": "r2"}, [Mismatch(Term.BASE_MODEL_REVISION, "r1", "r2")]),
        ({"tokenizer_hash": "sha256:x"}, [Mismatch(Term.TOKENIZER_HASH, "sha256:tok", "sha256:x")]),
        ({"chat_template_hash": "none"}, [Mismatch(Term.CHAT_TEMPLATE_HASH, "sha256:tpl", "none")]),
        ({"quantization_profile": "int4"}, [Mismatch(Term.QUANTIZATION_PROFILE, "bf16", "int4")]),
        ({"quantization_profile": ""}, [Mismatch(Term.QUANTIZATION_PROFILE, "bf16", "")]),
        (
            {"base_model_revision": "r2", "quantization_profile": "fp8"},
            [
                Mismatch(Term.BASE_MODEL_REVISION, "r1", "r2"),
                Mismatch(Term.QUANTIZATION_PROFILE, "bf16", "fp8"),
            ],
        ),
    ],
)
def test_mismatches_names_every_term_that_differs_in_order(
    changes: dict[str, str], expected: list[Mismatch]
) -> None:
    assert WANTED.mismatches(dataclasses.replace(WANTED, **changes)) == expected


@pytest.mark.parametrize(
    ("wanted_changes", "found_changes", "expected"),
    [
        ({}, {"quantization_profile": ""}, []),  # a replica that cannot say
        ({"tokenizer_hash": ""}, {}, []),
        ({}, {"quantization_profile": "int4"}, [Term.QUANTIZATION_PROFILE]),
        ({}, {"base_model_revision": "r2", "tokenizer_hash": ""}, [Term.BASE_MODEL_REVISION]),
    ],
)
def test_a_blank_term_is_unknown_when_asked_so(
    wanted_changes: dict[str, str], found_changes: dict[str, str], expected: list[Term]
) -> None:
    wanted = dataclasses.replace(WANTED, **wanted_changes)
    found = dataclasses.replace(WANTED, **found_changes)
    assert [m.term for m in wanted.mismatches(found, blank_is_unknown=True)] == expected


def test_every_term_names_a_field_of_the_contract() -> None:
    names = [f.name for f in dataclasses.fields(ServingContract)]
    assert [term.value for term in Term] == names


def test_an_environment_and_the_manifest_trained_for_it_agree() -> None:
    spec = EnvironmentSpec(
        name="prod",
        base_model_id="tiny-llama",
        base_model_revision="r1",
        tokenizer_hash="sha256:tok",
        chat_template_hash="sha256:tpl",
        quantization_profile="bf16",
    )
    assert ServingContract.of_environment(spec) == WANTED
    assert WANTED.base == "tiny-llama@r1"
