"""`adapterctl archive show|verify`: an expired revision's record, read from cold storage."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from adapterctl.output import emit, fields, short, table, to_json, warn
from adapterctl.revisions import resolved
from adapterctl.source import CliError, Source, with_registry
from shared.codec import Codec
from shared.coldstore import ColdStorageError, ColdStorageSettings, read_archive
from shared.coldstore.record import parse_record, record_files, verify_record
from shared.coldstore.weights import check_weights
from shared.events import ManifestArchived
from shared.lifecycle import State
from shared.registry.port import RevisionRecord
from shared.registry.store import PostgresRegistry

EPILOG = """\
The record is found through the revision's ManifestArchived event in the registry and read
from cold storage (COLD_STORAGE_S3_ENDPOINT and the AWS_* variables for S3-compatible
stores). Its digest, manifest, file hashes and chain head are checked on every read.
exit status: 0 the record verifies (and, for verify, the weights match it), 1 it does
not, or the revision is not archived, 2 usage or connection error

examples:
  adapterctl archive show sha256:ab12... --adapter support-summarizer
  adapterctl archive verify sha256:ab12... --adapter support-summarizer --weights ./restored/"""


@dataclass(frozen=True, slots=True)
class Archive:
    uri: str
    digest: str
    body: dict[str, Any]
    problems: list[str]


def load_archive(source: Source, adapter: str, revision: str) -> Archive | None:
    """The revision's archive as read back from cold storage; None (after saying why) if none."""

    async def work(pool: asyncpg.Pool) -> tuple[RevisionRecord | None, list[Any]]:
        registry = PostgresRegistry(pool, Codec.from_env())
        record = await registry.revision(adapter, revision)
        return record, await registry.events(adapter, revision, types=(ManifestArchived,))

    record, found = with_registry(source, work)
    if record is None:
        warn(f"{adapter}@{revision} is not a registered revision")
        return None
    archived = found[-1] if found else None
    if not isinstance(archived, ManifestArchived):
        state = record.status.revision_track
        warn(
            f"{adapter}@{revision} is not archived: its revision track is "
            f"{state.value if state else 'unknown'}"
            + (" (the archiver is archiving it)" if state is State.EXPIRED else "")
        )
        return None
    try:
        data = read_archive(ColdStorageSettings.from_env(), archived.archive_uri)
    except ColdStorageError as exc:
        raise CliError(f"cannot read the archive of {adapter}@{revision}: {exc}") from exc
    problems = verify_record(
        data, digest=archived.archive_digest, adapter=adapter, revision=revision
    )
    try:
        body = parse_record(data)
    except ValueError:
        body = {}
    return Archive(archived.archive_uri, archived.archive_digest, body, problems)


def run_show(args: argparse.Namespace, source: Source) -> int:
    args.revision = resolved(source, args.adapter, args.revision)
    archive = load_archive(source, args.adapter, args.revision)
    if archive is None:
        return 1
    if args.json:
        emit(to_json({**_summary(archive), "record": archive.body}))
        return 1 if archive.problems else 0
    body = archive.body
    emit(f"{args.adapter}@{args.revision}")
    emit(fields(_overview(archive)))
    files = record_files(body) if body else ()
    emit(f"\nFiles ({len(files)}, {sum(f.size for f in files)} bytes):")
    emit(table(("PATH", "SIZE", "SHA256"), [(f.path, f.size, f.sha256) for f in files]))
    evaluations = body.get("evaluations", [])
    if evaluations:
        emit("\nEvaluations:")
        rows = [
            (e["environment"], e["outcome"], e["report_digest"], e["backend"], _metrics(e))
            for e in evaluations
        ]
        emit(table(("ENV", "OUTCOME", "REPORT", "BACKEND", "METRICS"), rows))
    decisions = body.get("decisions", [])
    if decisions:
        emit("\nDecisions:")
        rows = [
            (
                d["environment"],
                d["decision"],
                ", ".join(d["approvers"]) or d["actor"]["principal"],
                d["key_id"],
                short(d["signature"], 30),
            )
            for d in decisions
        ]
        emit(table(("ENV", "DECISION", "BY", "KEY", "SIGNATURE"), rows))
    for problem in archive.problems:
        warn(f"archive problem: {problem}")
    return 1 if archive.problems else 0


def _summary(archive: Archive) -> dict[str, Any]:
    return {
        "archive_uri": archive.uri,
        "archive_digest": archive.digest,
        "verified": not archive.problems,
        "problems": archive.problems,
    }


def _overview(archive: Archive) -> list[tuple[str, object]]:
    body = archive.body
    manifest, registered = body.get("manifest") or {}, body.get("registered") or {}
    expiry, head = body.get("expiry", {}), body.get("chain_head", {})
    verdict = "yes: digest, manifest, file hashes and chain head agree"
    return [
        ("archive", archive.uri),
        ("digest", archive.digest),
        ("verified", verdict if not archive.problems else "NO: " + "; ".join(archive.problems)),
        ("manifest", body.get("manifest_digest")),
        ("base model", registered.get("base_model")),
        ("submitter", manifest.get("submitter") or registered.get("submitter")),
        ("registered", f"{registered.get('occurred_at')} (seq {registered.get('seq')})"),
        ("expired", f"{expiry.get('occurred_at')} (seq {expiry.get('seq')})"),
        ("reason", expiry.get("reason")),
        ("chain head", f"seq {head.get('seq')}, hash {head.get('hash')}"),
    ]


def _metrics(evaluation: dict[str, Any]) -> str:
    return ", ".join(
        f"{m['name']}={m['value']}" + ("" if m["passed"] else " FAIL")
        for m in evaluation["metrics"]
    )


def run_verify(args: argparse.Namespace, source: Source) -> int:
    args.revision = resolved(source, args.adapter, args.revision)
    archive = load_archive(source, args.adapter, args.revision)
    if archive is None:
        return 1
    weights = Path(args.weights)
    if not weights.exists():
        raise CliError(f"--weights {weights}: no such file or folder")
    check = check_weights(record_files(archive.body), weights) if archive.body else None
    ok = not archive.problems and check is not None and check.ok
    if args.json:
        emit(to_json({**_summary(archive), "weights": str(weights), "check": check, "ok": ok}))
        return 0 if ok else 1
    for problem in archive.problems:
        emit(f"ARCHIVE PROBLEM  {problem}")
    if check is not None:
        for path in check.matched:
            emit(f"match     {path}")
        for line in check.mismatched:
            emit(f"MISMATCH  {line}")
        for path in check.missing:
            emit(f"MISSING   {path} (archived, not supplied)")
        for path in check.extra:
            emit(f"EXTRA     {path} (supplied, not archived)")
    verdict = "match the archived hashes" if ok else "do NOT match the archived hashes"
    emit(f"{'OK' if ok else 'FAILED'}  {weights} {verdict} of {args.adapter}@{args.revision}")
    return 0 if ok else 1


def register(groups: Any, common: argparse.ArgumentParser) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    group = groups.add_parser(
        "archive", help="read and check archived revisions", epilog=EPILOG, formatter_class=fmt
    )
    commands = group.add_subparsers(dest="command", metavar="COMMAND", required=True)
    show = commands.add_parser(
        "show",
        parents=[common],
        help="an archived revision's record: manifest, hashes, evidence, chain head",
        epilog=EPILOG,
        formatter_class=fmt,
    )
    show.add_argument("revision", metavar="REVISION", help="its digest or a unique prefix")
    show.add_argument("--adapter", required=True, help="the adapter the revision belongs to")
    show.set_defaults(run=run_show)
    verify = commands.add_parser(
        "verify",
        parents=[common],
        help="check re-supplied weights against an archived revision's hashes",
        epilog=EPILOG,
        formatter_class=fmt,
    )
    verify.add_argument("revision", metavar="REVISION", help="its digest or a unique prefix")
    verify.add_argument("--adapter", required=True, help="the adapter the revision belongs to")
    verify.add_argument(
        "--weights", required=True, metavar="PATH", help="the revision's folder, or one file"
    )
    verify.set_defaults(run=run_verify)
