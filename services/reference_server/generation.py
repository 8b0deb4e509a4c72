"""A request's choices, generated one after another on the engine's thread and handed over
as text pieces while the tokens come: streamed and whole answers read the same pieces, so
they always agree."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace

from services.reference_server.decoding import TextAssembler
from services.reference_server.engine import Engine, Sampling


@dataclass(frozen=True, slots=True)
class Piece:
    """Text of choice `index`; the last piece of a choice says why it ended and how many
    tokens the choice took."""

    index: int
    text: str
    finish_reason: str | None = None
    stop_reason: str | None = None
    tokens: int = 0


@dataclass(frozen=True, slots=True)
class Plan:
    prompts: Sequence[str]
    n: int
    sampling: Sequence[Sampling]  # one per prompt: its bound on new tokens differs
    stops: Sequence[str]


async def generate_pieces(engine: Engine, lora: str | None, plan: Plan) -> AsyncIterator[Piece]:
    """Choice `p * n + i` is the `i`th answer to prompt `p`, as vLLM numbers them; a seed
    moves on by the choice's number, so choices differ and a request repeats exactly."""
    for p, (prompt, sampling) in enumerate(zip(plan.prompts, plan.sampling, strict=True)):
        for i in range(plan.n):
            index = p * plan.n + i
            seed = None if sampling.seed is None else sampling.seed + index
            drawn = replace(sampling, seed=seed)
            async for piece in _choice(engine, lora, prompt, drawn, plan.stops, index):
                yield piece


async def _choice(
    engine: Engine,
    lora: str | None,
    prompt: str,
    sampling: Sampling,
    stops: Sequence[str],
    index: int,
) -> AsyncIterator[Piece]:
    loop = asyncio.get_running_loop()
    tokens: asyncio.Queue[int | Exception | None] = asyncio.Queue()
    halt = threading.Event()

    def put(item: int | Exception | None) -> None:
        loop.call_soon_threadsafe(tokens.put_nowait, item)

    def work() -> None:
        try:
            engine.stream(lora, prompt, sampling, put, halt)
        except Exception as exc:  # handed to the request, which answers it
            put(exc)
        else:
            put(None)

    text = TextAssembler(engine.decode, stops)
    taken, last = 0, None
    loop.run_in_executor(None, work)
    try:
        while (item := await tokens.get()) is not None:
            if isinstance(item, Exception):
                raise item
            if text.done:
                continue  # made after a stop string, before the engine saw `halt`
            taken, last = taken + 1, item
            if piece := text.push(item):
                yield Piece(index, piece)
            if text.done:
                halt.set()
        rest = text.finish()
        ended = text.stop is not None or last == engine.eos_token_id
        reason = "stop" if ended else "length"
        yield Piece(index, rest, reason, text.stop, taken)
    finally:
        halt.set()  # a client gone mid-stream frees the engine at its next token
