"""The OpenAI request bodies the reference server reads, checked as vLLM checks them: an
unknown field is accepted and ignored, and a known one this engine cannot honour is refused
by name (a 400), never silently dropped."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

# Parameters vLLM honours and this engine cannot, with the values that leave an answer as
# it would be without them; any other value is refused.
INERT: dict[str, tuple[Any, ...]] = {
    "logprobs": (None, False, 0),
    "top_logprobs": (None, 0),
    "prompt_logprobs": (None,),
    "logit_bias": (None, {}),
    "frequency_penalty": (None, 0),
    "presence_penalty": (None, 0),
    "repetition_penalty": (None, 1),
    "top_k": (None, 0, -1),
    "min_p": (None, 0),
    "min_tokens": (None, 0),
    "best_of": (None, 1),
    "use_beam_search": (None, False),
    "ignore_eos": (None, False),
    "stop_token_ids": (None, []),
    "include_stop_str_in_output": (None, False),
    "echo": (None, False),
    "suffix": (None, ""),
    "tools": (None, []),
    "tool_choice": (None, "none", "auto"),  # without tools (refused above) both are inert
    "response_format": (None, {"type": "text"}),
    "structured_outputs": (None,),
}


class ParameterRefused(ValueError):
    """A request parameter the server will not take, named as vLLM's validation names it."""

    def __init__(self, message: str, *, parameter: str) -> None:
        super().__init__(message)
        self.parameter = parameter

    def __str__(self) -> str:
        return f"{super().__str__()} (parameter={self.parameter})"


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool | None = False
    continuous_usage_stats: bool | None = False


class GenerationRequest(BaseModel):
    """What chat and text completions share."""

    model_config = ConfigDict(extra="allow")
    model: str | None = None
    max_tokens: int | None = None
    n: int = 1
    stop: str | list[str] | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None

    @model_validator(mode="before")
    @classmethod
    def _refuse_what_cannot_be_honoured(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for name, inert in INERT.items():
            if name in data and data[name] not in inert:
                raise ParameterRefused(
                    f"`{name}` is not supported by this server (got {data[name]!r})",
                    parameter=name,
                )
        if data.get("stream_options") and not data.get("stream"):
            raise ParameterRefused(
                "Stream options can only be defined when `stream=True`.",
                parameter="stream_options",
            )
        return data

    @model_validator(mode="after")
    def _in_range(self) -> GenerationRequest:
        limit, name = self.requested_tokens()
        checks = [
            (self.n >= 1, "n", f"n must be at least 1, got {self.n}."),
            (limit is None or limit >= 1, name, f"{name} must be at least 1, got {limit}."),
            (
                self.temperature is None or self.temperature >= 0,
                "temperature",
                f"temperature must be non-negative, got {self.temperature}.",
            ),
            (
                self.top_p is None or 0 < self.top_p <= 1,
                "top_p",
                f"top_p must be in (0, 1], got {self.top_p}.",
            ),
        ]
        for holds, parameter, message in checks:
            if not holds:
                raise ParameterRefused(message, parameter=parameter)
        if self.stream_options and self.stream_options.continuous_usage_stats:
            raise ParameterRefused(
                "`stream_options.continuous_usage_stats` is not supported by this server",
                parameter="stream_options",
            )
        return self

    def requested_tokens(self) -> tuple[int | None, str]:
        """The bound on new tokens the client gave, and the parameter that gave it."""
        return self.max_tokens, "max_tokens"

    def stops(self) -> tuple[str, ...]:
        listed = [self.stop] if isinstance(self.stop, str) else self.stop or []
        return tuple(s for s in listed if s)

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[ContentPart] | None = None

    def flat(self) -> dict[str, str]:
        """The message as the chat template takes it: text parts joined by newlines, as
        vLLM joins them for a text-only model."""
        if not isinstance(self.content, list):
            return {"role": self.role, "content": self.content or ""}
        for part in self.content:
            if part.type != "text":
                raise ParameterRefused(
                    f"content part type {part.type!r} is not supported: "
                    "this model reads text only (parts of type 'text')",
                    parameter="messages",
                )
            if part.text is None:
                raise ParameterRefused("a 'text' content part needs `text`", parameter="messages")
        return {"role": self.role, "content": "\n".join(p.text or "" for p in self.content)}


class ChatRequest(GenerationRequest):
    messages: list[Message]
    max_completion_tokens: int | None = None

    @model_validator(mode="after")
    def _text_only(self) -> ChatRequest:
        self.conversation()  # refuses a non-text part while the body is being read
        return self

    def conversation(self) -> list[dict[str, str]]:
        return [m.flat() for m in self.messages]

    def requested_tokens(self) -> tuple[int | None, str]:
        if self.max_completion_tokens is not None:
            return self.max_completion_tokens, "max_completion_tokens"
        return self.max_tokens, "max_tokens"


class CompletionRequest(GenerationRequest):
    prompt: str | list[str]
    max_tokens: int | None = 16  # vLLM's default for text completions

    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)


def bound_tokens(
    body: GenerationRequest, prompt_tokens: int, max_model_len: int | None, *, field: str
) -> int:
    """How many new tokens a prompt of `prompt_tokens` may get, as vLLM decides it: what the
    client asked for, else what is left of the model's context; refused past the context."""
    requested, parameter = body.requested_tokens()
    if max_model_len is None:
        return requested or 16
    if prompt_tokens >= max_model_len:
        raise ParameterRefused(
            f"Input length ({prompt_tokens}) exceeds model's maximum context length "
            f"({max_model_len}).",
            parameter=field,
        )
    if requested is not None and prompt_tokens + requested > max_model_len:
        raise ParameterRefused(
            f"This model's maximum context length is {max_model_len} tokens. However, you "
            f"requested {requested} output tokens and your prompt contains {prompt_tokens} "
            f"input tokens, for a total of {prompt_tokens + requested} tokens. Please reduce "
            "the length of the input prompt or the number of requested output tokens.",
            parameter=parameter,
        )
    return requested or max_model_len - prompt_tokens
