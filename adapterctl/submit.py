"""`adapterctl submit`: what a training cluster runs when an adapter has finished training."""

from __future__ import annotations

import argparse
import getpass
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException

from adapterctl.output import emit, to_json
from adapterctl.source import CliError, Source
from shared.events import BaseModelRef
from shared.trainer_client import SubmissionError, describe_submission, submit

EPILOG = """\
examples:
  adapterctl submit ./out/run-42 --adapter support-summarizer \\
      --base tiny-llama@sha256:ab12... --tokenizer-revision tok-1 \\
      --environment staging --environment production

The folder holds adapter_config.json, adapter_model.safetensors, recipe.json (seed,
dataset_ids, hyperparameters) and data_scope.json (corpora, time window, filtering rules).
The artifact is read from the folder by ingest, which must be allowed to read it
(INGEST_ALLOWED_ROOTS)."""


def run_submit(args: argparse.Namespace, source: Source) -> int:
    model_id, _, revision = args.base.partition("@")
    if not revision:
        raise CliError(f"--base {args.base!r}: give MODEL@REVISION (see `adapterctl base list`)")
    try:
        event = describe_submission(
            Path(args.folder),
            adapter=args.adapter,
            base=BaseModelRef(model_id=model_id, revision=revision),
            submitter=args.submitter,
            tokenizer_revision=args.tokenizer_revision,
            tokenizer_folder=Path(args.base_folder) if args.base_folder else None,
            quantization_profile=args.quantization,
            target_environments=args.environment,
            description=args.description,
        )
        partition, offset = submit(source.kafka, event, topic=source.trained_topic)
    except SubmissionError as exc:
        raise CliError(str(exc)) from exc
    except (KafkaException, TimeoutError) as exc:
        raise CliError(
            f"could not publish to Kafka at {source.kafka.bootstrap_servers} ({exc}): check "
            "KAFKA_BOOTSTRAP_SERVERS"
        ) from exc
    if args.json:
        emit(to_json({"event": event, "partition": partition, "offset": offset}))
    else:
        emit(
            f"submitted {event.adapter} (event {event.event_id}) at partition {partition}, "
            f"offset {offset}\n  follow it with: adapterctl history {event.adapter}"
        )
    return 0


def register(groups: Any, common: argparse.ArgumentParser) -> None:
    parser = groups.add_parser(
        "submit",
        parents=[common],
        help="publish AdapterTrained for a trained adapter folder",
        description="Describe a trained adapter folder (recipe, data scope, tokenizer and "
        "template hashes) and publish AdapterTrained for ingest.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("folder", help="the trained adapter's folder")
    parser.add_argument("--adapter", required=True, help="the adapter's name")
    parser.add_argument("--base", required=True, metavar="MODEL@REVISION")
    parser.add_argument("--tokenizer-revision", required=True)
    parser.add_argument(
        "--base-folder",
        default=None,
        help="the base model folder, when the adapter ships no tokenizer",
    )
    parser.add_argument("--quantization", default="bf16")
    parser.add_argument(
        "--environment", action="append", default=[], help="a target environment (repeatable)"
    )
    parser.add_argument("--submitter", default=getpass.getuser())
    parser.add_argument("--description", default="")
    parser.set_defaults(run=run_submit)
