"""`adapterctl submit`: what a training cluster runs when an adapter has finished training,
and, with `--wait`, how it learns the verdict (through ingest's API, ADR 0022)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from adapterctl.catalogue import preflight
from adapterctl.commands import add_token_option, require_token
from adapterctl.output import emit, to_json, warn
from adapterctl.source import CliError, CliRefusal, Source
from adapterctl.verdicts import heartbeat_line, render_verdict
from shared.events import AdapterTrained, BaseModelRef
from shared.trainer_client import (
    SubmissionError,
    SubmissionRefused,
    describe_submission,
    fetch_verdict,
    read_catalogue,
    submit_to_ingest,
)
from shared.verdicts import Outcome, Until, Verdict, Waited, wait_for_verdict
from shared.verdicts import to_json as verdict_json

EXIT_PASSED, EXIT_FAILED, EXIT_USAGE, EXIT_TIMEOUT = 0, 1, 2, 3

EPILOG = """\
examples:
  adapterctl submit ./out/run-42 --adapter support-summarizer \\
      --base tiny-llama@sha256:ab12... --base-folder ./models/tiny-llama \\
      --tokenizer-revision tok-1 --environment staging --wait

The folder holds adapter_config.json, adapter_model.safetensors, recipe.json (seed,
dataset_ids, hyperparameters) and data_scope.json (corpora, time window, filtering rules).
The artifact is read from the folder by ingest, which must be allowed to read it
(INGEST_ALLOWED_ROOTS). The submission goes to ingest's API (INGEST_URL) with a trainer's
bearer token (ADAPTERCTL_TOKEN, from `adapterctl principal add NAME --role trainer`): the
submitter on the revision is that token's principal, and nobody else's name can be typed.

Before publishing, submit asks ingest for the catalogue and refuses (exit 2) a base
MODEL@REVISION or an environment that is not registered, naming the closest registered
ones, and a tokenizer or chat template other than the base's or an environment's
(--skip-catalogue-check to publish anyway).

--wait reads the verdict from ingest's API with the same token, and prints it with every
finding (code, message, expected and found, the fix; docs/findings.md lists every code).
The verdict is the validator's and, with --until evaluated (the default), the evaluator's
in every environment the validator checked; approval comes after and is not waited for.

exit status: 0 submitted (with --wait: the verdict passed), 1 rejected, evaluation failed,
duplicate of a registered revision, or the token was refused, 2 usage error, refused by the
pre-flight check or ingest unreachable, 3 --wait timed out before the verdict"""


def _event(args: argparse.Namespace) -> AdapterTrained:
    model_id, _, revision = args.base.partition("@")
    if not model_id or not revision:
        raise CliError(f"--base {args.base!r}: give MODEL@REVISION (see `adapterctl base list`)")
    try:
        return describe_submission(
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


def _refusal(exc: SubmissionRefused, what: str) -> CliError:
    if exc.status in (401, 403):
        return CliRefusal(f"ingest refused {what} ({exc.status}): {exc.detail}")
    return CliError(f"ingest answered {exc.status}: {exc.detail}")


def _unreachable(url: str, exc: httpx.TransportError) -> CliError:
    return CliError(f"cannot reach ingest at {url} ({exc}): is it running?")


def check_catalogue(args: argparse.Namespace, event: AdapterTrained) -> None:
    """CliError (exit 2) listing what the catalogue says the validator would reject."""
    try:
        catalogue = read_catalogue(args.ingest_url, args.token)
    except SubmissionRefused as exc:
        if exc.status == 404:  # an ingest older than its catalogue read
            warn("ingest serves no catalogue: the pre-flight check is skipped")
            return
        raise _refusal(exc, "the catalogue read") from exc
    except httpx.TransportError as exc:
        raise _unreachable(args.ingest_url, exc) from exc
    problems = preflight(event, catalogue)
    if problems:
        raise CliError(
            "refused before publishing:\n  - "
            + "\n  - ".join(problems)
            + "\n(--skip-catalogue-check publishes anyway)"
        )


def wait(args: argparse.Namespace, event_id: str) -> Waited:
    """Poll ingest for the verdict until it is in or --wait-timeout passes."""
    seen: list[Verdict | None] = [None]

    def fetch() -> Verdict | None:
        try:
            seen[0] = fetch_verdict(args.ingest_url, args.token, event_id) or seen[0]
        except SubmissionRefused as exc:
            raise _refusal(exc, "the verdict read") from exc
        except httpx.TransportError:
            pass  # ingest restarting: the verdict is in the registry, ask again
        return seen[0]

    return wait_for_verdict(
        fetch,
        until=Until(args.until),
        timeout_s=args.wait_timeout,
        clock=time.monotonic,
        sleep=time.sleep,
        heartbeat=lambda v, s: print(heartbeat_line(v, s), file=sys.stderr, flush=True),
        heartbeat_s=args.heartbeat,
    )


def exit_status(waited: Waited) -> int:
    if waited.outcome is None:
        return EXIT_TIMEOUT
    return EXIT_PASSED if waited.outcome is Outcome.PASSED else EXIT_FAILED


def run_submit(args: argparse.Namespace, source: Source) -> int:
    event = _event(args)
    require_token(args.token, "trainer")
    if not args.skip_catalogue_check:
        check_catalogue(args, event)
    try:
        receipt = submit_to_ingest(args.ingest_url, args.token, event)
    except SubmissionRefused as exc:
        raise _refusal(exc, "the submission") from exc
    except httpx.TransportError as exc:
        raise _unreachable(args.ingest_url, exc) from exc
    submitted = (
        f"submitted {event.adapter} (event {event.event_id}) as {receipt.submitter} at "
        f"partition {receipt.partition}, offset {receipt.offset}"
    )
    if not args.wait:
        if args.json:
            emit(to_json({"event": event, "submitter": receipt.submitter,
                          "partition": receipt.partition, "offset": receipt.offset}))  # fmt: skip
        else:
            emit(f"{submitted}\n  follow it with: adapterctl submit ... --wait, or "
                 f"adapterctl history {event.adapter}")  # fmt: skip
        return EXIT_PASSED
    if not args.json:
        emit(submitted)
    waited = wait(args, event.event_id)
    status = exit_status(waited)
    if args.json:
        emit(to_json({
            "event": event, "submitter": receipt.submitter, "partition": receipt.partition,
            "offset": receipt.offset, "outcome": waited.outcome.value if waited.outcome else None,
            "timed_out": waited.outcome is None,
            "verdict": verdict_json(waited.verdict) if waited.verdict else None,
        }))  # fmt: skip
    else:
        emit(render_verdict(waited.verdict, waited.outcome, Until(args.until)))
    if status == EXIT_TIMEOUT:
        warn(f"no verdict within {args.wait_timeout:g}s (--wait-timeout); the submission "
             f"goes on: adapterctl history {event.adapter}")  # fmt: skip
    return status


def _seconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text}: give seconds, 0 or more")
    return value


def register(groups: Any, common: argparse.ArgumentParser, *, ingest_url: str, token: str) -> None:
    parser = groups.add_parser(
        "submit",
        help="submit a trained adapter folder to ingest, as a trainer",
        description="Describe a trained adapter folder (recipe, data scope, tokenizer and "
        "template hashes), check it against the catalogue, hand the AdapterTrained to "
        "ingest's API as the trainer your token proves and, with --wait, print the verdict.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # Not `parents=[common]`: submit reads no Kafka topic (ingest writes the trained topic),
    # so the log options would only mislead. main() still reads their values.
    parser.set_defaults(
        **{dest: common.get_default(dest) for dest in ("bootstrap", "topic", "timeout")},
        bundle=None,
    )
    parser.add_argument("folder", help="the trained adapter's folder (read by ingest)")
    parser.add_argument("--adapter", required=True, help="the adapter's name (required)")
    parser.add_argument(
        "--base",
        required=True,
        metavar="MODEL@REVISION",
        help="the registered base model revision it was trained on (required; "
        "`adapterctl base list`)",
    )
    parser.add_argument(
        "--tokenizer-revision",
        required=True,
        metavar="REVISION",
        help="the revision of the tokenizer it was trained with (required)",
    )
    parser.add_argument(
        "--base-folder",
        default=None,
        metavar="DIR",
        help="the base model folder whose tokenizer and chat template are hashed, when the "
        "adapter folder ships no tokenizer (default: none; then the folder must ship one)",
    )
    parser.add_argument(
        "--quantization",
        default="bf16",
        metavar="PROFILE",
        help="the quantization profile it is served with (default: %(default)s)",
    )
    parser.add_argument(
        "--environment",
        action="append",
        default=[],
        metavar="NAME",
        help="a target environment, checked against and evaluated in (repeatable; default: none)",
    )
    parser.add_argument(
        "--description", default="", help="free text kept on the submission (default: empty)"
    )
    parser.add_argument(
        "--ingest-url",
        default=ingest_url,
        metavar="URL",
        help="ingest's HTTP API (default: $INGEST_URL or %(default)s)",
    )
    add_token_option(parser, token)
    parser.add_argument(
        "--skip-catalogue-check",
        action="store_true",
        help="publish without checking the base, environments and tokenizer against the "
        "catalogue first (default: check)",
    )
    waiting = parser.add_argument_group("waiting for the verdict")
    waiting.add_argument(
        "--wait",
        action="store_true",
        help="after ingest accepts, wait for the verdict and print it (default: return at once)",
    )
    waiting.add_argument(
        "--until",
        choices=[u.value for u in Until],
        default=Until.EVALUATED.value,
        help="where the verdict ends: the validator's, or also the evaluator's in every "
        "environment the validator checked (default: %(default)s)",
    )
    waiting.add_argument(
        "--wait-timeout",
        type=_seconds,
        default=600.0,
        metavar="SECONDS",
        help="give up waiting after this long, exit 3 (default: %(default)g)",
    )
    waiting.add_argument(
        "--heartbeat",
        type=_seconds,
        default=15.0,
        metavar="SECONDS",
        help="say on stderr that it is still waiting this often; 0: never (default: %(default)g)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON for machines")
    parser.set_defaults(run=run_submit)
