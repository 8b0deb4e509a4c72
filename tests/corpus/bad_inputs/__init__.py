"""The bad-input corpus: malformed inputs for every entry point, kept as YAML data.

One file per entry point (`<entry point>.yaml`), each a list of entries:

    - id: unique-across-the-corpus
      why: one line saying what is wrong with this input
      input: {...}    # what to send; its keys are the entry point's recipe (below)
      expect: {...}   # what must come of it

| entry point     | fed to                                  | expect
|-----------------|-----------------------------------------|--------------------------------------
| avro_bytes      | a real consumer's dispatcher, over Kafka | dlq_reason (substring of dlq.reason)
| adapter_trained | ingest + validator, over Kafka           | finding (code) or dlq_reason
| adapter_files   | ingest + validator, over Kafka           | finding (code) or dlq_reason
| http            | the approval service over HTTP           | status, problem (the type's slug)
| cli             | the installed `adapterctl` script        | exit, stderr (substring)

The recipes are interpreted by `messages.py` (avro_bytes), `submissions.py`
(adapter_trained, adapter_files), `http_requests.py` (http) and `commands.py` (cli), whose
docstrings list the keys; `tests/integration/bad_inputs/` feeds the entries in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).parent
ENTRY_POINTS = ("avro_bytes", "adapter_trained", "adapter_files", "http", "cli")
# The outcome each entry point can be held to; an entry names one of these sets.
OUTCOMES: Mapping[str, tuple[frozenset[str], ...]] = {
    "avro_bytes": (frozenset({"dlq_reason"}),),
    "adapter_trained": (frozenset({"finding"}), frozenset({"dlq_reason"})),
    "adapter_files": (frozenset({"finding"}), frozenset({"dlq_reason"})),
    "http": (frozenset({"status", "problem"}), frozenset({"status", "problem", "detail"})),
    "cli": (frozenset({"exit", "stderr"}),),
}


class CorpusError(ValueError):
    """A corpus file that does not have the documented shape."""


@dataclass(frozen=True)
class Entry:
    entry_point: str
    id: str
    why: str
    input: Mapping[str, Any]
    expect: Mapping[str, Any]

    def __str__(self) -> str:
        return self.id


def _entry(entry_point: str, raw: object) -> Entry:
    if not isinstance(raw, dict) or set(raw) != {"id", "why", "input", "expect"}:
        raise CorpusError(f"{entry_point}: an entry has keys id, why, input, expect: {raw!r}")
    expect = raw["expect"]
    if not isinstance(expect, dict) or frozenset(expect) not in OUTCOMES[entry_point]:
        raise CorpusError(f"{entry_point}/{raw['id']}: expect {expect!r} is not an outcome")
    if not isinstance(raw["input"], dict) or not str(raw["why"]).strip():
        raise CorpusError(f"{entry_point}/{raw['id']}: input must be a mapping, why a sentence")
    return Entry(entry_point, str(raw["id"]), str(raw["why"]), raw["input"], expect)


@cache
def load(entry_point: str) -> tuple[Entry, ...]:
    """The entries of one entry point, in file order."""
    if entry_point not in ENTRY_POINTS:
        raise CorpusError(f"no entry point {entry_point!r}")
    raw = yaml.safe_load((HERE / f"{entry_point}.yaml").read_text())
    if not isinstance(raw, list):
        raise CorpusError(f"{entry_point}.yaml must hold a list of entries")
    return tuple(_entry(entry_point, item) for item in raw)


def load_all() -> tuple[Entry, ...]:
    return tuple(e for point in ENTRY_POINTS for e in load(point))
