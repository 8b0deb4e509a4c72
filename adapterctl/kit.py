"""`adapterctl audit export`: the auditor's kit, a bundle verifiable offline without us."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapterctl.evidence import parse_time
from adapterctl.output import emit, fields, to_json
from adapterctl.source import CliError, Source, checkpoint_documents
from shared import bundle
from shared.kafka.reader import LogRecord
from shared.schemas import DEFAULT_SCHEMAS_DIR
from shared.signing import SigningKeyError, key_id_of, load_public_key

EPILOG = """\
The bundle (docs/log-format.md §11) holds the topic's records from each partition's first
offset up to --until, the signed checkpoints issued by then, the public keys given, and
every Avro schema, with a digest of each file in bundle.json. Give the auditor the log key
over a channel they trust (or its key id to compare): the bundle's own copy of a key is
only a convenience.

Verify it offline, with either verifier:
  adapterctl audit verify --bundle DIR --log-key log.key.pub
  verifiers/java/logcheck verify --bundle DIR --log-key log.key.pub

examples:
  adapterctl audit export --out audit-2026-q4 --log-key var/registry/log.key.pub
  adapterctl audit export --out audit-nov --until 2026-12-01T00:00:00Z \\
      --log-key var/registry/log.key.pub --public-key var/approval/signing.key.pub"""


def register(commands: Any, common: argparse.ArgumentParser, checkpoints: str) -> None:
    parser = commands.add_parser(
        "export",
        parents=[common],
        help="write an auditor's bundle: records, checkpoints, keys and schemas",
        description="Export the lifecycle log up to a moment, with its checkpoints, keys and "
        "schemas, into a folder an outside auditor verifies offline.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="a new folder")
    parser.add_argument(
        "--until",
        type=parse_time,
        metavar="ISO-8601",
        help="the end of the window (default: now); a chain is only evidence from its first "
        "link, so every bundle starts at the log's beginning",
    )
    parser.add_argument(
        "--checkpoints",
        default=checkpoints,
        metavar="DIR",
        help="cold storage holding `checkpoints/<topic>/` (default: $LOG_CHECKPOINTS or "
        "%(default)s)",
    )
    parser.add_argument(
        "--log-key",
        action="append",
        default=[],
        metavar="FILE",
        help="a log public key to include (PEM; repeatable)",
    )
    parser.add_argument(
        "--public-key",
        action="append",
        default=[],
        metavar="FILE",
        help="an approval public key to include (PEM; repeatable)",
    )
    parser.set_defaults(run=run_export)


def run_export(args: argparse.Namespace, source: Source) -> int:
    if source.bundle is not None:
        raise CliError("--bundle: export reads the live log; copy a bundle with cp -r")
    now = datetime.now(UTC)
    until: datetime = args.until or now
    records: list[LogRecord] = bundle.within(
        source.read(source.kafka, source.topic, source.timeout_s),
        int(until.timestamp() * 1000),
    )
    documents = bundle.checkpoints_until(
        checkpoint_documents(args.checkpoints, source.topic), until
    )
    log_keys, approval_keys = (
        _keys(args.log_key, "--log-key"),
        _keys(args.public_key, "--public-key"),
    )
    try:
        index = bundle.write(
            args.out,
            topic=source.topic,
            records=records,
            checkpoints=documents,
            log_keys=[(f"{name}.pem", pem) for name, pem in log_keys],
            approval_keys=[(f"{name}.pem", pem) for name, pem in approval_keys],
            schemas=source.schemas or DEFAULT_SCHEMAS_DIR,
            until=until,
            exported_at=now,
        )
    except bundle.BundleError as exc:
        raise CliError(str(exc)) from exc
    log_names, approval_names = [n for n, _ in log_keys], [n for n, _ in approval_keys]
    summary = {
        "bundle": str(args.out),
        "topic": source.topic,
        "until": until,
        "records": len(records),
        "checkpoints": len(documents),
        "log_keys": log_names,
        "approval_keys": approval_names,
        "files": len(index["files"]),  # type: ignore[arg-type]
    }
    if args.json:
        emit(to_json(summary))
        return 0
    emit(f"exported {source.topic} up to {until.isoformat()} into {args.out}\n")
    emit(
        fields(
            [
                ("records", len(records)),
                ("checkpoints", len(documents)),
                ("log keys", ", ".join(log_names) or "(none: give the auditor yours)"),
                ("approval keys", ", ".join(approval_names) or "(none)"),
            ]
        )
    )
    key = f" --log-key {args.log_key[0]}" if args.log_key else " --log-key LOG_KEY.pub"
    emit(f"\nverify offline:\n  verifiers/java/logcheck verify --bundle {args.out}{key}")
    return 0


def _keys(files: list[str], option: str) -> list[tuple[str, bytes]]:
    """(key id as a file name, PEM) of each public key file, or a CliError naming it."""
    found = []
    for name in files:
        try:
            pem = Path(name).read_bytes()
            key = load_public_key(pem, name)
        except (OSError, SigningKeyError) as exc:
            raise CliError(f"{option} {name}: {exc}") from exc
        found.append((key_id_of(key).replace("sha256:", "sha256-"), pem))
    return found
