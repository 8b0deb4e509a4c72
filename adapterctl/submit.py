"""`adapterctl submit`: what a training cluster runs when an adapter has finished training."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import httpx

from adapterctl.commands import add_token_option, require_token
from adapterctl.output import emit, to_json
from adapterctl.source import CliError, CliRefusal, Source
from shared.events import BaseModelRef
from shared.trainer_client import (
    SubmissionError,
    SubmissionRefused,
    describe_submission,
    submit_to_ingest,
)

EPILOG = """\
examples:
  adapterctl submit ./out/run-42 --adapter support-summarizer \\
      --base tiny-llama@sha256:ab12... --tokenizer-revision tok-1 \\
      --environment staging --environment production

The folder holds adapter_config.json, adapter_model.safetensors, recipe.json (seed,
dataset_ids, hyperparameters) and data_scope.json (corpora, time window, filtering rules).
The artifact is read from the folder by ingest, which must be allowed to read it
(INGEST_ALLOWED_ROOTS). The submission goes to ingest's API (INGEST_URL) with a trainer's
bearer token (ADAPTERCTL_TOKEN, from `adapterctl principal add NAME --role trainer`): the
submitter on the revision is that token's principal, and nobody else's name can be typed."""


def run_submit(args: argparse.Namespace, source: Source) -> int:
    model_id, _, revision = args.base.partition("@")
    if not revision:
        raise CliError(f"--base {args.base!r}: give MODEL@REVISION (see `adapterctl base list`)")
    try:
        event = describe_submission(
            Path(args.folder),
            adapter=args.adapter,
            base=BaseModelRef(model_id=model_id, revision=revision),
            tokenizer_revision=args.tokenizer_revision,
            tokenizer_folder=Path(args.base_folder) if args.base_folder else None,
            quantization_profile=args.quantization,
            target_environments=args.environment,
            description=args.description,
        )
    except SubmissionError as exc:
        raise CliError(str(exc)) from exc
    require_token(args.token, "trainer")
    try:
        receipt = submit_to_ingest(args.ingest_url, args.token, event)
    except SubmissionRefused as exc:
        if exc.status in (401, 403):
            raise CliRefusal(f"ingest refused the submission ({exc.status}): {exc.detail}") from exc
        raise CliError(f"ingest answered {exc.status}: {exc.detail}") from exc
    except httpx.TransportError as exc:
        raise CliError(f"cannot reach ingest at {args.ingest_url} ({exc}): is it running?") from exc
    if args.json:
        emit(to_json({"event": event, "submitter": receipt.submitter,
                      "partition": receipt.partition, "offset": receipt.offset}))  # fmt: skip
    else:
        emit(
            f"submitted {event.adapter} (event {event.event_id}) as {receipt.submitter} at "
            f"partition {receipt.partition}, offset {receipt.offset}\n"
            f"  follow it with: adapterctl history {event.adapter}"
        )
    return 0


def register(groups: Any, common: argparse.ArgumentParser, *, ingest_url: str, token: str) -> None:
    parser = groups.add_parser(
        "submit",
        parents=[common],
        help="submit a trained adapter folder to ingest, as a trainer",
        description="Describe a trained adapter folder (recipe, data scope, tokenizer and "
        "template hashes) and hand the AdapterTrained to ingest's API as the trainer your "
        "token proves.",
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
    parser.add_argument(
        "--ingest-url",
        default=ingest_url,
        metavar="URL",
        help="ingest's HTTP API (default: $INGEST_URL or %(default)s)",
    )
    add_token_option(parser, token)
    parser.add_argument("--description", default="")
    parser.set_defaults(run=run_submit)
