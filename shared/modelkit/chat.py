"""The kit's special tokens and chat template, and how a question becomes a prompt."""

from __future__ import annotations

from typing import Any

PAD = "<pad>"
UNK = "<unk>"
BOS = "<s>"
END = "<|end|>"  # ends every turn; the end-of-sequence token for generation
USER = "<|user|>"
ASSISTANT = "<|assistant|>"
SPECIAL_TOKENS = (PAD, UNK, BOS, END, USER, ASSISTANT)

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>{{ message['content'] }}<|end|>"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
# One character more: a newline after each turn. Renders differently, same tokenizer.
OTHER_CHAT_TEMPLATE = CHAT_TEMPLATE.replace("<|end|>", "<|end|>\n")


def render_prompt(tokenizer: Any, question: str) -> str:
    """The question as one user turn, followed by the assistant's opening tag."""
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
    )
    return str(text)
