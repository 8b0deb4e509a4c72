"""Tokens to answer text, one token at a time: stop strings cut it, and what is released
while tokens still come is always a prefix of the final text, so streamed pieces add up
to the whole answer."""

from __future__ import annotations

from collections.abc import Callable, Sequence


class TextAssembler:
    """The answer is the decoded tokens, cut before the first stop string and stripped of
    surrounding whitespace (as the replica has always answered). While tokens come, text
    that could still change is held back: a tail that may begin a stop string, trailing
    whitespace, and a character still incomplete."""

    def __init__(self, decode: Callable[[Sequence[int]], str], stops: Sequence[str]) -> None:
        self._decode = decode
        self._stops = tuple(s for s in stops if s)
        self._tokens: list[int] = []
        self._released = ""
        self.stop: str | None = None  # the stop string that ended the answer, if one did
        self.done = False

    @property
    def text(self) -> str:
        return self._released

    def push(self, token: int) -> str:
        """Take one generated token; the text it releases (maybe none)."""
        if self.done:
            raise ValueError("the answer is complete")
        self._tokens.append(token)
        raw = self._decode(self._tokens)
        found = [(raw.find(s), s) for s in self._stops if s in raw]
        if found:
            at, self.stop = min(found)
            self.done = True
            return self._release(raw[:at].strip())
        held = _partial_stop(raw, self._stops)
        settled = raw[: len(raw) - held].lstrip().rstrip()
        if settled.endswith("\ufffd"):  # a multi-byte character not yet whole
            settled = settled[:-1].rstrip()
        return self._release(settled)

    def finish(self) -> str:
        """No more tokens: the rest of the answer."""
        if self.done:
            return ""
        self.done = True
        return self._release(self._decode(self._tokens).strip())

    def _release(self, text: str) -> str:
        if not text.startswith(self._released):
            return ""  # the decoding of earlier tokens changed: never take back what was sent
        piece, self._released = text[len(self._released) :], text
        return piece


def _partial_stop(raw: str, stops: Sequence[str]) -> int:
    """The length of the longest tail of `raw` that begins some stop string."""
    return max(
        (n for s in stops for n in range(min(len(s) - 1, len(raw)), 0, -1) if raw.endswith(s[:n])),
        default=0,
    )
