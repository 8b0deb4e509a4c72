"""The bad-input corpus itself (tests/corpus/bad_inputs/): big enough, every entry point
covered, ids unique, every entry in the documented shape with a recipe its interpreter
understands. The entries are fed to the real entry points in tests/integration/bad_inputs/.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from shared.codec import Codec, CodecError
from shared.events import AdapterTrained
from tests.corpus import bad_inputs
from tests.corpus.bad_cases import BY_NAME
from tests.corpus.bad_inputs import ENTRY_POINTS, CorpusError, Entry, load, load_all
from tests.corpus.bad_inputs.commands import prepare_command
from tests.corpus.bad_inputs.http_requests import build_request
from tests.corpus.bad_inputs.messages import message_value
from tests.corpus.bad_inputs.submissions import FOLDER_KEYS, with_fields
from tests.samples import sample

MIN_ENTRIES, MIN_PER_ENTRY_POINT = 40, 5


def test_the_corpus_has_at_least_40_entries_and_5_for_every_entry_point() -> None:
    per_point = Counter(e.entry_point for e in load_all())
    assert sum(per_point.values()) >= MIN_ENTRIES, per_point
    assert all(per_point[p] >= MIN_PER_ENTRY_POINT for p in ENTRY_POINTS), per_point


@pytest.mark.parametrize(
    "text",
    [
        "{id: x}",
        "- {id: x, why: y, input: {}}",
        "- {id: x, why: y, input: {}, expect: {status: 400}}",
        "- {id: x, why: ' ', input: {}, expect: {exit: 2, stderr: e}}",
    ],
)
def test_the_loader_refuses_a_file_not_in_the_documented_shape(
    text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cli.yaml").write_text(text)
    monkeypatch.setattr(bad_inputs, "HERE", tmp_path)
    bad_inputs.load.cache_clear()
    try:
        with pytest.raises(CorpusError):
            load("cli")
    finally:
        bad_inputs.load.cache_clear()


def test_ids_are_unique_across_the_whole_corpus() -> None:
    counts = Counter(e.id for e in load_all())
    assert [i for i, n in counts.items() if n > 1] == []


def test_every_why_is_one_line_and_no_two_entries_send_the_same_input() -> None:
    entries = load_all()
    assert all("\n" not in e.why.strip() for e in entries)
    inputs = Counter((e.entry_point, repr(sorted(e.input.items()))) for e in entries)
    assert [i for i, n in inputs.items() if n > 1] == []


@pytest.mark.parametrize("entry", load("avro_bytes"), ids=str)
def test_each_avro_recipe_builds_bytes_the_codec_refuses_with_the_expected_reason(
    entry: Entry,
) -> None:
    value = message_value(entry.input, Codec.default())
    if value is None:  # the dispatcher refuses a record without a value before decoding
        return
    with pytest.raises(CodecError) as caught:
        Codec.default().decode(value)
    assert entry.expect["dlq_reason"] in f"undecodable: {caught.value}"


@pytest.mark.parametrize("entry", load("adapter_files"), ids=str)
def test_each_adapter_files_recipe_is_known_and_agrees_with_the_case_it_reuses(
    entry: Entry,
) -> None:
    assert set(entry.input) <= FOLDER_KEYS
    if "bad_case" in entry.input:
        case = BY_NAME[entry.input["bad_case"]]
        assert entry.expect == {"finding": case.expected_code}
        assert set(case.stage_args) <= {"adapter", "edit"}, "not a folder-level case"


@pytest.mark.parametrize("entry", load("adapter_trained"), ids=str)
def test_each_adapter_trained_recipe_names_fields_of_the_event(entry: Entry) -> None:
    changed = with_fields(sample(AdapterTrained), entry.input, {"incoming": "/i", "folder": "/f"})
    assert changed != sample(AdapterTrained)


SEEDED = ("awaiting", "decided", "approved_once")
PARTS = ("", ".adapter", ".revision", ".manifest_digest", ".report_digest")
STAND_INS = {f"{name}{part}": f"<{name}{part}>" for name in SEEDED for part in PARTS}
PRINCIPAL = re.compile(r"^([a-z-]+/(trainer|approver|operator|auditor|admin)|revoked)$")


@pytest.mark.parametrize("entry", load("http"), ids=str)
def test_each_http_recipe_builds_a_request_from_known_placeholders(entry: Entry) -> None:
    used = set(re.findall(r"\{([\w./-]+)\}", repr(entry.input)))
    principals = {name for name in used if PRINCIPAL.match(name)}
    assert used - principals <= set(STAND_INS), used
    if "as" in entry.input:
        assert PRINCIPAL.match(entry.input["as"]), entry.input["as"]
    tokens = {name: f"<token of {name}>" for name in principals | {entry.input.get("as", "")}}
    request = build_request(entry.input, {**STAND_INS, **tokens})
    assert request.path.startswith(("/api/", "<"))
    assert 400 <= entry.expect["status"] < 500, "a corpus entry is refused, never a crash"


@pytest.mark.parametrize("entry", load("cli"), ids=str)
def test_each_cli_recipe_builds_a_command(entry: Entry, tmp_path: Path) -> None:
    command = prepare_command(entry.input, tmp_path / "scratch", {})
    assert entry.expect["exit"] in (1, 2) and all(isinstance(a, str) for a in command.args)
