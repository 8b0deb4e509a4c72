"""A stock vLLM replica has no `/info`: its `GET /v1/models` base card must name the
environment's base at its revision, or the rollout stops before traffic moves."""

from __future__ import annotations

import dataclasses

import pytest

from services.activator.compat import base_problems
from services.activator.ports import BaseCard
from shared.catalogue import EnvironmentSpec

REVISION = "sha256:" + "ab" * 32
HEX = REVISION.removeprefix("sha256:")
SPEC = EnvironmentSpec(
    name="prod",
    base_model_id="meta-llama/Llama-3.1-8B",
    base_model_revision=REVISION,
    tokenizer_hash="sha256:" + "c" * 64,
    chat_template_hash="sha256:" + "d" * 64,
)
HUB = "/root/.cache/huggingface/hub/models--meta-llama--Llama-3.1-8B/snapshots"

# (the card, what it contradicts, what it leaves unproven): substrings, in order.
CASES = [
    ("served name and a folder per revision", BaseCard(SPEC.base_model_id, f"/m/x/{HEX}"), [], []),
    ("the hub cache's snapshot folder", BaseCard(f"{HUB}/{HEX}", f"{HUB}/{HEX}"), [], []),
    ("the digest with its prefix", BaseCard(f"/m/meta-llama/Llama-3.1-8B/{REVISION}",
                                            f"/m/meta-llama/Llama-3.1-8B/{REVISION}"), [], []),
    ("a hub id: no revision to see", BaseCard(SPEC.base_model_id, SPEC.base_model_id), [],
     ["does not name the base revision"]),
    ("another served name over our folder", BaseCard("qwen", f"/m/meta-llama/Llama-3.1-8B/{HEX}"),
     ["not the environment's base"], []),
    ("another model", BaseCard("qwen", f"/m/qwen/{HEX}"), ["not the environment's base"], []),
    ("a revision named by prefix only", BaseCard(SPEC.base_model_id, f"/m/{HEX[:12]}"), [],
     ["does not name the base revision"]),
    ("a mutable folder", BaseCard(SPEC.base_model_id, "/models/latest"), [],
     ["does not name the base revision", "--allow-unproven-replica-base"]),
    ("no base card at all", None, [], ["lists no base model"]),
]  # fmt: skip


@pytest.mark.parametrize(("card", "contradicts", "unproven"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_a_base_card_proves_the_base_or_says_what_it_does_not(
    card: BaseCard | None, contradicts: list[str], unproven: list[str]
) -> None:
    contradicted, left = base_problems(card, SPEC, "replica r1")

    assert len(contradicted) == min(len(contradicts), 1) and len(left) == min(len(unproven), 1)
    for wanted, found in ((contradicts, contradicted), (unproven, left)):
        assert all(w in " ".join(found) for w in wanted), found
        assert all(f.startswith("replica r1 ") for f in found)


@pytest.mark.parametrize(
    ("listed", "wanted", "problems"),
    [(8192, 8192, 0), (4096, 8192, 1), (None, 8192, 1), (4096, 0, 0)],
)
def test_a_context_length_set_on_the_environment_must_be_the_replicas(
    listed: int | None, wanted: int, problems: int
) -> None:
    card = BaseCard(SPEC.base_model_id, f"/m/{HEX}", max_model_len=listed)
    spec = dataclasses.replace(SPEC, max_model_len=wanted)

    contradicted, unproven = base_problems(card, spec, "replica r1")

    assert (len(contradicted), unproven) == (problems, [])
    if problems:
        assert f"a context of {listed} tokens, the environment's is {wanted}" in contradicted[0]
