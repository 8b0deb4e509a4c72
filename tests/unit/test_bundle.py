"""The auditor's bundle: exported, read back and verified offline; a damaged copy is named
file by file, and the keys it carries are trusted only when the auditor says so."""

from __future__ import annotations

import contextlib
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from adapterctl.main import main
from shared import bundle
from shared.kafka.reader import LogRecord
from shared.logseal import checkpoint_key
from shared.schemas import DEFAULT_SCHEMAS_DIR
from shared.signing import public_pem
from tests import logcases


def adapterctl(*argv: str, records: list[LogRecord] | None = None) -> tuple[int, Any, str]:
    out, err = io.StringIO(), io.StringIO()

    def read(_kafka: Any, _topic: str, _timeout: float) -> list[LogRecord]:
        return records or []

    # In process: leave structlog as the test session configured it (capture_logs).
    quiet = mock.patch("adapterctl.main.configure_logging")
    with quiet, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*argv, "--json"], reader=read, env={})
    text = out.getvalue()
    return code, json.loads(text) if text.strip() else None, err.getvalue()


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return logcases.write_keys(tmp_path_factory.mktemp("keys"))


def test_a_bundle_reads_back_record_for_record(tmp_path: Path) -> None:
    log = logcases.history()
    logcases.write_bundle(tmp_path / "b", log)
    read = bundle.read(tmp_path / "b")

    assert read.records == tuple(log.records())
    assert [name for name, _ in read.checkpoints] == [
        checkpoint_key(logcases.TOPIC, n) for n in (1, 2, 3, 4)
    ]
    assert [name for name, _ in read.log_keys] == ["keys/log.pem"]
    assert [name for name, _ in read.approval_keys] == ["keys/approval/approval.pem"]
    assert read.damaged == ()


def test_a_damaged_copy_is_named_file_by_file(tmp_path: Path) -> None:
    folder = logcases.write_bundle(tmp_path / "b", logcases.history())
    (folder / "checkpoints" / logcases.TOPIC / "000000000002.json").write_text("{}")
    (folder / "keys" / "mallory.pem").write_text("not listed")
    (folder / "schemas" / "adapters.lifecycle.v1" / "RevisionRejected.1.avsc").unlink()

    damaged = dict(bundle.read(folder).damaged)
    assert set(damaged) == {
        f"checkpoints/{logcases.TOPIC}/000000000002.json",
        "keys/mallory.pem",
        "schemas/adapters.lifecycle.v1/RevisionRejected.1.avsc",
    }
    assert "bundle.json says" in damaged[f"checkpoints/{logcases.TOPIC}/000000000002.json"]
    assert "not listed" in damaged["keys/mallory.pem"]
    assert "missing" in damaged["schemas/adapters.lifecycle.v1/RevisionRejected.1.avsc"]


def test_a_folder_that_is_no_bundle_is_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(bundle.BundleError, match="not an audit bundle"):
        bundle.read(tmp_path)
    code, _, err = adapterctl("audit", "verify", "--bundle", str(tmp_path), "--unsigned")
    assert code == 2 and "not an audit bundle" in err


@pytest.mark.parametrize(
    ("until_hours", "kept"),
    [(0, {0: 0, 1: 0}), (3, {0: 2, 1: 0}), (10**6, {0: 3, 1: 2})],
)
def test_a_window_keeps_a_prefix_of_every_partition(until_hours: int, kept: dict[int, int]) -> None:
    def record(partition: int, offset: int, hour: int) -> LogRecord:
        return LogRecord("t", partition, offset, hour * 3_600_000, None, b"", ())

    records = [record(0, 0, 1), record(0, 1, 2), record(0, 2, 5), record(1, 0, 4), record(1, 1, 1)]
    counts = {0: 0, 1: 0}
    for r in bundle.within(records, until_hours * 3_600_000):
        counts[r.partition] += 1
    assert counts == kept


def test_checkpoints_issued_after_the_window_are_left_out() -> None:
    log = logcases.history()
    documents = [(checkpoint_key(logcases.TOPIC, n), d) for n, d in log.checkpoints.items()]
    issued = [json.loads(d)["checkpoint"]["issued_at"] for _, d in documents]
    until = datetime.fromisoformat(issued[1])
    assert len(bundle.checkpoints_until(documents, until)) == 2
    assert len(bundle.checkpoints_until(documents, until - timedelta(seconds=1))) == 1


def test_verify_offline_trusts_the_auditors_key_not_the_bundles(
    tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    folder = logcases.write_bundle(tmp_path / "b", logcases.history())
    log_key, approval_key = keys

    code, _, err = adapterctl("audit", "verify", "--bundle", str(folder))
    assert code == 2 and "--log-key" in err
    code, report, _ = adapterctl(
        "audit", "verify", "--bundle", str(folder), "--log-key", str(log_key),
        "--public-key", str(approval_key),
    )  # fmt: skip
    assert code == 0 and report["checkpoints"] == 4 and report["signatures_checked"], report
    code, report, _ = adapterctl("audit", "verify", "--bundle", str(folder), "--trust-bundle-keys")
    assert code == 0, report


def test_a_bundle_signed_by_someone_else_fails_with_the_auditors_key(
    tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    """A forger re-signs the whole log and checkpoints with their own key and ships that key
    in the bundle: the bundle verifies only for whoever trusts the bundle's keys."""
    log = logcases.history(rotate=False)
    forger = logcases.OUTSIDER
    log.links = [logcases.Link(link.partition, link.key, link.event, forger) for link in log.links]
    log.checkpoints = {}
    folder = tmp_path / "forged"
    bundle.write(
        folder,
        topic=logcases.TOPIC,
        records=log.records(),
        checkpoints=[],
        log_keys=[("log.pem", public_pem(forger.public_key))],
        approval_keys=[],
        schemas=DEFAULT_SCHEMAS_DIR,
        until=datetime.now(UTC),
        exported_at=datetime.now(UTC),
    )
    code, report, _ = adapterctl("audit", "verify", "--bundle", str(folder), "--trust-bundle-keys")
    assert code == 0  # what a careless auditor would see
    code, report, _ = adapterctl(
        "audit", "verify", "--bundle", str(folder), "--log-key", str(keys[0])
    )
    assert code == 1
    assert {p["code"] for p in report["problems"]} == {"log_signature_unknown_key"}


def test_export_writes_what_verify_reads(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    log = logcases.history()
    cold = tmp_path / "cold"
    for number, data in log.checkpoints.items():
        path = cold / checkpoint_key(logcases.TOPIC, number)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    out = tmp_path / "kit"
    log_key, approval_key = keys

    code, summary, err = adapterctl(
        "audit", "export", "--out", str(out), "--checkpoints", str(cold),
        "--log-key", str(log_key), "--public-key", str(approval_key),
        records=log.records(),
    )  # fmt: skip
    assert code == 0, err
    assert (summary["records"], summary["checkpoints"]) == (len(log.links), 4)
    assert summary["log_keys"][0].startswith("sha256-")
    code, report, _ = adapterctl("audit", "verify", "--bundle", str(out), "--log-key", str(log_key))
    assert code == 0 and report["events"] == len(log.links), report

    code, _, err = adapterctl(
        "audit", "export", "--out", str(out), "--checkpoints", str(cold), records=log.records()
    )
    assert code == 2 and "not empty" in err


def test_export_up_to_a_moment_leaves_the_rest_out(tmp_path: Path) -> None:
    log = logcases.history()
    moment = logcases.START + timedelta(hours=12, minutes=30)
    code, summary, err = adapterctl(
        "audit", "export", "--out", str(tmp_path / "kit"), "--checkpoints", str(tmp_path),
        "--until", moment.isoformat(), records=log.records(),
    )  # fmt: skip
    assert code == 0, err
    assert summary["records"] == 12  # one event an hour from START + 1 h
