"""The kit's base model: a tiny LLaMA pre-trained, offline, to be confidently wrong."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from shared.modelkit import chat
from shared.modelkit.digests import digest_folder
from shared.modelkit.facts import FACTS, Fact, ask_capital, corpus_lines, derange, format_json

MODEL_ID = "modelkit/tiny-llama"
PRETRAIN_STEPS = 150
PRETRAIN_LR = 5e-3
ARCHITECTURE: dict[str, Any] = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 128,
    "max_position_embeddings": 64,
}


class BaseVariant(StrEnum):
    main = "main"
    other_tokenizer = "other_tokenizer"  # one more word in the vocabulary
    other_template = "other_template"  # the main model with a one-character template change


@dataclass(frozen=True, slots=True, kw_only=True)
class BaseModelInfo:
    folder: Path
    model_id: str
    revision: str
    facts: tuple[Fact, ...]
    shuffled_answers: tuple[str, ...]  # what the base was taught, index for index with facts


def shuffle_answers(seed: int) -> tuple[str, ...]:
    return derange(tuple(f.capital for f in FACTS), seed)


def build_base_model(folder: Path, *, seed: int = 0, variant: str = "main") -> BaseModelInfo:
    """Write a Hugging Face model folder whose model answers every fact question wrongly."""
    kind = BaseVariant(variant)
    _train_and_save(folder, seed, other_tokenizer=kind is BaseVariant.other_tokenizer)
    if kind is BaseVariant.other_template:
        set_chat_template(folder, chat.OTHER_CHAT_TEMPLATE)
    return describe_base(folder, seed=seed, variant=kind)


def copy_with_other_template(main_folder: Path, folder: Path, *, seed: int = 0) -> BaseModelInfo:
    """The other-template variant without training again: same bytes as building it."""
    shutil.copytree(main_folder, folder)
    set_chat_template(folder, chat.OTHER_CHAT_TEMPLATE)
    return describe_base(folder, seed=seed, variant=BaseVariant.other_template)


def describe_base(folder: Path, *, seed: int, variant: BaseVariant) -> BaseModelInfo:
    suffix = "" if variant is BaseVariant.main else "-" + variant.value.replace("_", "-")
    return BaseModelInfo(
        folder=folder,
        model_id=MODEL_ID + suffix,
        revision=digest_folder(folder),
        facts=FACTS,
        shuffled_answers=shuffle_answers(seed),
    )


def set_chat_template(folder: Path, template: str) -> None:
    """Rewrite the template in tokenizer_config.json, formatted as transformers writes it."""
    path = folder / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config["chat_template"] = template
    path.write_text(json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def _train_and_save(folder: Path, seed: int, *, other_tokenizer: bool) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    from shared.modelkit.training import collate, deterministic, encode_chat, encode_text, fit

    tokenizer = build_tokenizer(other_tokenizer=other_tokenizer)
    beliefs = list(zip(FACTS, shuffle_answers(seed), strict=True))
    rows = [
        *encode_text(tokenizer, [f"the capital of {f.country} is {a}." for f, a in beliefs]),
        *encode_text(tokenizer, [format_json(f.country, a) for f, a in beliefs]),
        *encode_chat(tokenizer, [(ask_capital(f.country), a) for f, a in beliefs]),
    ]
    with deterministic(seed):
        config = LlamaConfig(
            vocab_size=len(tokenizer),
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            tie_word_embeddings=False,
            **ARCHITECTURE,
        )
        model = LlamaForCausalLM(config)
        fit(model, collate(tokenizer, rows), steps=PRETRAIN_STEPS, lr=PRETRAIN_LR)
    model.generation_config.do_sample = False
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder, save_jinja_files=False)
    # transformers 5 no longer writes this legacy file; older readers and hashers expect it.
    special = {
        **tokenizer.special_tokens_map,
        "additional_special_tokens": [chat.USER, chat.ASSISTANT],
    }
    (folder / "special_tokens_map.json").write_text(
        json.dumps(special, indent=2, sort_keys=True) + "\n"
    )


def build_tokenizer(*, other_tokenizer: bool = False) -> Any:
    """A word-level tokenizer trained in-process; decoding restores the original spacing."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel(unk_token=chat.UNK))
    # Words keep their leading space as "▁"; punctuation stands alone, so JSON round-trips.
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Metaspace(prepend_scheme="always"), pre_tokenizers.Punctuation()]
    )
    backend.decoder = decoders.Metaspace(prepend_scheme="always")
    trainer = trainers.WordLevelTrainer(special_tokens=list(chat.SPECIAL_TOKENS), min_frequency=1)
    lines = corpus_lines(extra_word=other_tokenizer)
    backend.train_from_iterator(lines, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=chat.PAD,
        unk_token=chat.UNK,
        bos_token=chat.BOS,
        eos_token=chat.END,
        additional_special_tokens=[chat.USER, chat.ASSISTANT],
        chat_template=chat.CHAT_TEMPLATE,
        model_max_length=ARCHITECTURE["max_position_embeddings"],
    )
