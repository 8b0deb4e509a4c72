"""The serving contract: the base, tokenizer, chat template and quantization a revision was
trained for, and the one comparison of two contracts.

A revision served anywhere its contract does not hold gives outputs nobody evaluated. The
validator compares the manifest with each target environment, the activator with the
environment and every replica; both ask `mismatches()`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from enum import StrEnum

from shared.catalogue import EnvironmentSpec
from shared.manifest import Manifest


class Term(StrEnum):
    """One term of the contract; each value is the field's name in manifests and catalogues."""

    BASE_MODEL_ID = "base_model_id"
    BASE_MODEL_REVISION = "base_model_revision"
    TOKENIZER_HASH = "tokenizer_hash"
    CHAT_TEMPLATE_HASH = "chat_template_hash"
    QUANTIZATION_PROFILE = "quantization_profile"


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One term on which what was found differs from what is wanted."""

    term: Term
    wanted: str
    found: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ServingContract:
    base_model_id: str
    base_model_revision: str
    tokenizer_hash: str
    chat_template_hash: str
    quantization_profile: str = ""  # "" where a replica does not say

    @classmethod
    def of_manifest(cls, manifest: Manifest) -> ServingContract:
        """What the revision was trained for."""
        return cls(
            base_model_id=manifest.base_model_id,
            base_model_revision=manifest.base_model_revision,
            tokenizer_hash=manifest.tokenizer_hash,
            chat_template_hash=manifest.chat_template_hash,
            quantization_profile=manifest.quantization_profile,
        )

    @classmethod
    def of_environment(cls, spec: EnvironmentSpec) -> ServingContract:
        """What the environment serves, as the catalogue records it."""
        return cls(
            base_model_id=spec.base_model_id,
            base_model_revision=spec.base_model_revision,
            tokenizer_hash=spec.tokenizer_hash,
            chat_template_hash=spec.chat_template_hash,
            quantization_profile=spec.quantization_profile,
        )

    def digest(self) -> str:
        """`sha256:` over the contract's canonical JSON: what a decision signs it was made for."""
        text = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()

    @property
    def base(self) -> str:
        """The base model pinned to its revision, as `id@revision`."""
        return f"{self.base_model_id}@{self.base_model_revision}"

    def term(self, term: Term) -> str:
        value: str = getattr(self, term.value)
        return value

    def mismatches(
        self, found: ServingContract, *, blank_is_unknown: bool = False
    ) -> list[Mismatch]:
        """Each term, in `Term`'s order, where `found` differs from this (wanted) contract.

        With `blank_is_unknown`, a term either side leaves blank is not a difference: a
        replica that cannot say its quantization has not contradicted it.
        """
        differences = []
        for term in Term:
            wanted, have = self.term(term), found.term(term)
            if blank_is_unknown and not (wanted and have):
                continue
            if wanted != have:
                differences.append(Mismatch(term, wanted, have))
        return differences
