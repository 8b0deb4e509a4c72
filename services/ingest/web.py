"""Ingest's HTTP API: where a training cluster submits, as the trainer its bearer token proves.

`POST /submissions` takes one `AdapterTrained`, Avro-encoded as on the topic (content type
`application/vnd.adapters.avro`), from a principal holding an active `trainer` token. The
submitter is the token's principal, never a field the sender fills in: a body naming
someone else is refused (403). Ingest puts the event on the trained topic, which only its
own Kafka principal may write, and answers 202 with where it landed; from there the event
is ingested like any other, and the submitter is checked once more against the registry
where it is handled.

A trainer reads what became of a submission with the same token (ADR 0022), so a training
cluster needs no Kafka principal and no database: `GET /submissions/{event_id}` answers
the revision's state and every check with its findings (403 for another trainer's
submission, 404 while ingest has not handled it), and `GET /catalogue` the registered base
models and environments a submission is checked against.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable

from aiohttp import web

from services.ingest.handlers import UUID, check_request
from services.ingest.ports import SubmissionReads
from shared.codec import Codec, CodecError
from shared.events import AdapterTrained
from shared.kafka.dispatch import PermanentError
from shared.registry.principals import Lookup, Role
from shared.trainer_client import AVRO
from shared.verdicts import to_json
from shared.web import authorized, json_response, refusal

MAX_BODY_BYTES = 1 << 20  # an AdapterTrained is a few KiB; its files never travel here
TRAINERS = (Role.TRAINER,)

# Puts the event on the trained topic, keyed by adapter; its (partition, offset).
Publish = Callable[[AdapterTrained], Awaitable[tuple[int, int]]]


def submission_of(body: bytes, codec: Codec) -> AdapterTrained:
    """The AdapterTrained in `body`, or 400 saying why not."""
    try:
        event = codec.decode(body)
    except CodecError as exc:
        raise refusal(web.HTTPBadRequest, f"undecodable submission: {exc}") from exc
    if not isinstance(event, AdapterTrained):
        raise refusal(web.HTTPBadRequest, f"expected AdapterTrained, got {type(event).__name__}")
    return event


def add_submit_api(app: web.Application, lookup: Lookup, publish: Publish, codec: Codec) -> None:
    async def submit(request: web.Request) -> web.Response:
        principal = await authorized(request, lookup, TRAINERS)
        if request.content_type != AVRO:
            raise refusal(web.HTTPUnsupportedMediaType, f"send the AdapterTrained as {AVRO}")
        event = submission_of(await request.read(), codec)
        if event.submitter and event.submitter != principal.name:
            raise refusal(
                web.HTTPForbidden,
                f"the submitter is the token's principal ({principal.name}), "
                f"not {event.submitter!r}: leave it empty",
            )
        event = dataclasses.replace(event, submitter=principal.name)
        try:
            check_request(event)
        except PermanentError as exc:
            raise refusal(web.HTTPBadRequest, str(exc)) from exc
        partition, offset = await publish(event)
        return json_response(
            {
                "event_id": event.event_id,
                "adapter": event.adapter,
                "submitter": principal.name,
                "partition": partition,
                "offset": offset,
            },
            status=202,
        )

    async def health(_: web.Request) -> web.Response:
        return json_response({"status": "ok"})

    app.router.add_post("/submissions", submit)
    app.router.add_get("/healthz", health)


def add_read_api(app: web.Application, lookup: Lookup, reads: SubmissionReads) -> None:
    async def submission(request: web.Request) -> web.Response:
        principal = await authorized(request, lookup, TRAINERS)
        event_id = request.match_info["event_id"]
        if not UUID.match(event_id):
            raise refusal(web.HTTPBadRequest, f"{event_id!r} is not a submission's event id")
        verdict = await reads.verdict(event_id)
        if verdict is None:
            raise refusal(
                web.HTTPNotFound,
                f"no submission {event_id} is ingested yet: it is still queued, or it was "
                "never accepted here (or was dead-lettered: see ingest's log)",
            )
        if verdict.submitter and verdict.submitter != principal.name:
            raise refusal(
                web.HTTPForbidden,
                f"submission {event_id} is {verdict.submitter}'s: a trainer reads only "
                "their own submissions",
            )
        return json_response(to_json(verdict))

    async def catalogue(request: web.Request) -> web.Response:
        await authorized(request, lookup, TRAINERS)
        bases = await reads.base_models()
        environments = await reads.environments()
        return json_response(
            {
                "base_models": [
                    {
                        "model_id": b.model_id,
                        "revision": b.revision,
                        "tokenizer_revision": b.tokenizer_revision,
                        "tokenizer_hash": b.tokenizer_hash,
                        "chat_template_hash": b.chat_template_hash,
                        "quantization_profiles": list(b.quantization_profiles),
                    }
                    for b in bases
                ],
                "environments": [
                    {
                        "name": e.name,
                        "base_model_id": e.base_model_id,
                        "base_model_revision": e.base_model_revision,
                        "tokenizer_hash": e.tokenizer_hash,
                        "chat_template_hash": e.chat_template_hash,
                        "quantization_profile": e.quantization_profile,
                        "max_lora_rank": e.max_lora_rank,
                    }
                    for e in environments
                ],
            }
        )

    app.router.add_get("/submissions/{event_id}", submission)
    app.router.add_get("/catalogue", catalogue)


def make_app(
    lookup: Lookup, publish: Publish, codec: Codec, reads: SubmissionReads | None = None
) -> web.Application:
    """The API; without `reads` (tests of the submit path alone), only POST /submissions."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    add_submit_api(app, lookup, publish, codec)
    if reads is not None:
        add_read_api(app, lookup, reads)
    return app
