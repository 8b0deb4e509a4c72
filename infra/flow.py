"""The flow map: every service's declared `FLOW`, assembled, and the README's services table
and diagram generated from it (`python -m infra.flow` prints both; a unit test compares)."""

from __future__ import annotations

import sys

from services.activator.handlers import FLOW as ACTIVATOR
from services.approval.handlers import FLOW as APPROVAL
from services.archiver.handlers import FLOW as ARCHIVER
from services.gpu_evaluator.handlers import FLOW as EVALUATOR
from services.ingest.handlers import FLOW as INGEST
from services.validator.handlers import FLOW as VALIDATOR
from shared.flow import ServiceFlow, Topic
from shared.settings import KernelSettings

FLOWS: tuple[ServiceFlow, ...] = (INGEST, VALIDATOR, EVALUATOR, APPROVAL, ACTIVATOR, ARCHIVER)

TABLE_BEGIN, TABLE_END = "<!-- flow-table:begin -->", "<!-- flow-table:end -->"
DIAGRAM_BEGIN, DIAGRAM_END = "<!-- flow-diagram:begin -->", "<!-- flow-diagram:end -->"


def _names(types: tuple[type, ...]) -> str:
    return ", ".join(f"`{t.__name__}`" for t in types) or "-"


def services_table(flows: tuple[ServiceFlow, ...] = FLOWS) -> str:
    topics = KernelSettings(service="docs")
    lines = [
        "| service | command | consumes | handles | commits | also driven by |",
        "|---|---|---|---|---|---|",
    ]
    for f in flows:
        consumed = ", ".join(f"`{t}`" for t in f.topics(topics))
        lines.append(
            f"| {f.service} | `{f.command}` | {consumed} | {_names(f.handles)} "
            f"| {_names(f.emits)} | {'; '.join(f.inputs) or '-'} |"
        )
    return "\n".join(lines)


def diagram(flows: tuple[ServiceFlow, ...] = FLOWS) -> str:
    topics = KernelSettings(service="docs")
    lines = [
        "```mermaid",
        "flowchart LR",
        "  T[training cluster<br/>adapterctl submit] -- trainer token --> IA[ingest API]",
        "  IA -- AdapterTrained, submitter proven --> trained",
        "  O[operator<br/>adapterctl promote / rollback] -- bearer token --> API[activator API]",
        "  API -- the token's principal --> commands",
        f"  trained[({Topic.TRAINED.name_in(topics)})]",
        f"  commands[({Topic.COMMANDS.name_in(topics)})]",
        f"  lifecycle[({Topic.LIFECYCLE.name_in(topics)}<br/>append-only audit log)]",
        "  R[(registry<br/>PostgreSQL + outbox)] -- outbox relay --> lifecycle",
    ]
    for f in flows:
        for topic in f.consumes:
            handled = [t.__name__ for t in f.handles if _topic_of(t) is topic]
            lines.append(f"  {topic.value} -- {' / '.join(handled)} --> {f.service}")
        lines.append(f"  {f.service} -- {' / '.join(t.__name__ for t in f.emits)} --> R")
    lines += [
        "  activator --> S[serving replicas]",
        "  archiver --> CS[(cold storage)]",
        "  lifecycle --> AU[auditor<br/>adapterctl audit verify]",
        "```",
    ]
    return "\n".join(lines)


def _topic_of(message_type: type) -> Topic:
    module = message_type.__module__
    if module.endswith("commands"):
        return Topic.COMMANDS
    if module.endswith("trained"):
        return Topic.TRAINED
    return Topic.LIFECYCLE


def replace_block(text: str, begin: str, end: str, body: str) -> str:
    head, found, rest = text.partition(begin)
    if not found or end not in rest:
        raise ValueError(f"markers {begin} ... {end} not found")
    return f"{head}{begin}\n{body}\n{end}{rest.partition(end)[2]}"


def main(argv: list[str]) -> int:
    """Print the table and diagram, or with `--write README.md` put them in place."""
    if argv[:1] == ["--write"] and len(argv) == 2:
        from pathlib import Path

        path = Path(argv[1])
        text = replace_block(path.read_text(), TABLE_BEGIN, TABLE_END, services_table())
        path.write_text(replace_block(text, DIAGRAM_BEGIN, DIAGRAM_END, diagram()))
        return 0
    print(services_table(), diagram(), sep="\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
