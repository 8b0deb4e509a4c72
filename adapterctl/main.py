"""`adapterctl`: the composition root of the command line; the only place it reads settings."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from adapterctl import (
    archive,
    audit,
    catalogue,
    history,
    principals,
    retention,
    rollout,
    submit,
)
from adapterctl.helptext import document
from adapterctl.settings import CtlSettings
from adapterctl.source import CliError, CliRefusal, Reader, Source, bundle_source, read_kafka
from shared.logs import configure_logging
from shared.settings import KernelSettings, SettingsError

DESCRIPTION = """\
Operate and audit the LoRA adapter promotion pipeline.

The audit commands read the lifecycle topic (an append-only, hash-chained log of every
state transition) straight from Kafka, from its beginning; they need no database."""

EPILOG = """\
examples:
  adapterctl audit verify                  prove the log is intact and every move legal
  adapterctl audit replay                  every revision's state, every environment's pointer
  adapterctl audit at --time 2025-03-14T09:00:00Z --environment production
  adapterctl history support-summarizer    one adapter's timeline

environment:
  KAFKA_BOOTSTRAP_SERVERS  the brokers (or --bootstrap)
  LIFECYCLE_TOPIC          the lifecycle topic (or --topic; default adapters.lifecycle.v1)
  INGEST_URL               ingest's HTTP API, for submit (or --ingest-url)
  ACTIVATOR_URL            the activator's HTTP API (or --activator-url)
  ARCHIVER_URL             the archiver's HTTP API (or --archiver-url)
  ADAPTERCTL_TOKEN         a principal's bearer token, for submit, promote|expand|
                           rollback|abort, env replicas|analysis and retention
                           set|hold|release (or --token)
  LOG_PUBLIC_KEYS          the log's public key(s), for audit verify (or --log-key)
  LOG_CHECKPOINTS          where the log's signed checkpoints are (or --checkpoints)

exit status: 0 ok, 1 the log has problems (or the answer is empty), 2 usage or connection error"""


def build_parser(
    settings: KernelSettings, ctl: CtlSettings | None = None
) -> argparse.ArgumentParser:
    """The whole command tree; each command group registers its own subcommands."""
    ctl = ctl or CtlSettings.from_env({})
    common = argparse.ArgumentParser(add_help=False)
    options = common.add_argument_group("log options")
    options.add_argument(
        "--bootstrap",
        default=settings.kafka_bootstrap_servers,
        metavar="HOST:PORT",
        help="Kafka bootstrap servers (default: $KAFKA_BOOTSTRAP_SERVERS or %(default)s)",
    )
    options.add_argument(
        "--topic",
        default=settings.lifecycle_topic,
        help="the lifecycle topic to read (default: $LIFECYCLE_TOPIC or %(default)s)",
    )
    options.add_argument(
        "--timeout",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="how long to wait for the broker (default: %(default)s)",
    )
    options.add_argument(
        "--bundle",
        type=Path,
        metavar="DIR",
        help="read the log from an auditor's bundle (`adapterctl audit export`) instead of "
        "Kafka: offline, with the bundle's checkpoints and schemas",
    )
    options.add_argument("--json", action="store_true", help="print JSON for machines")

    parser = argparse.ArgumentParser(
        prog="adapterctl",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    groups = parser.add_subparsers(dest="group", metavar="COMMAND", required=True)
    audit.register(groups, common, ctl)
    history.register(groups, common)
    submit.register(groups, common, ingest_url=ctl.ingest_url, token=ctl.token)
    catalogue.register(groups, common)
    principals.register(groups, common)
    retention.register(groups, common, archiver_url=ctl.archiver_url, token=ctl.token)
    archive.register(groups, common)
    rollout.register(
        groups,
        common,
        commands_topic=settings.commands_topic,
        activator_url=ctl.activator_url,
        token=ctl.token,
    )
    document(parser)  # every subcommand: its purpose line and only its own examples
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    reader: Reader = read_kafka,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run one command; tests pass `reader` (an in-memory log) and `env` for the real ones."""
    settings = KernelSettings.from_env("adapterctl", env)
    # Logs go to stderr and only when they matter: stdout is for answers scripts parse.
    configure_logging("adapterctl", fmt=settings.log_format, level="warning")
    parser = build_parser(settings, CtlSettings.from_env(env))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2): argparse has printed why
        return exc.code if isinstance(exc.code, int) else 2
    try:
        # The brokers from --bootstrap, as the principal KAFKA_SASL_USERNAME names.
        args.kafka = replace(settings.kafka(), bootstrap_servers=args.bootstrap)
    except (SettingsError, OSError) as exc:
        print(f"adapterctl: error: Kafka credentials: {exc}", file=sys.stderr)
        return 2
    try:
        source = (
            bundle_source(args.bundle, args.kafka, args.timeout)
            if getattr(args, "bundle", None)
            else Source(
                reader,
                args.kafka,
                args.topic,
                args.timeout,
                database_url=settings.database_url,
                trained_topic=settings.trained_topic,
            )
        )
        status: int = args.run(args, source)
    except CliRefusal as exc:
        print(f"adapterctl: refused: {exc}", file=sys.stderr)
        return 1
    except CliError as exc:
        print(f"adapterctl: error: {exc}", file=sys.stderr)
        return 2
    return status


if __name__ == "__main__":
    raise SystemExit(main())
