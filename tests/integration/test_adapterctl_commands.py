"""Every `adapterctl` subcommand, run as the installed console script: its `--help` exits 0
and shows an example, a bad option is a usage error (2), and a real invocation against a
private stack (its own database and topics, ingest and validator running) answers with an
exit status that means something (0 done, 1 refused / failed / empty) and `--json` that
parses. The activator and the archiver run too: `env replicas|analysis` and `retention`
are commands they carry out and answer, read back through their HTTP APIs; rollout
commands are issued by the activator as the token's principal, and forged ones (through
Kafka, with a typed name, or a revoked token) move nothing."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import KafkaException

from adapterctl.main import build_parser
from shared.codec import Codec
from shared.events import (
    Actor,
    CommandHeader,
    RevisionRejected,
    RevisionValidated,
    RollbackRevision,
)
from shared.kafka import acl
from shared.kafka.auth import KafkaEndpoint
from shared.kafka.producer import make_producer, publish
from shared.kafka.topics import dlq_of
from shared.settings import KernelSettings
from tests.conftest import REPO, Infra
from tests.corpus.adapters import tiny_base_spec, write_adapter, write_base_model
from tests.eventually import eventually
from tests.stack import Stack, answering

ADAPTERCTL = Path(sys.executable).parent / "adapterctl"
BASE_ID, BASE_REVISION = "tiny-llama", "sha256:" + "b" * 64
BASE = f"{BASE_ID}@{BASE_REVISION}"
ENV = "staging"
RECIPE = {"seed": 7, "dataset_ids": ["tickets-q3"], "hyperparameters": {"r": "8"}}
SCOPE = {
    "corpora": ["support-tickets"],
    "time_window_start": "2026-07-01",
    "time_window_end": "2026-09-30",
    "filtering_rules": ["pii-scrubbed"],
}

# Every leaf command of the parser; test_every_subcommand_is_covered keeps this honest.
COMMANDS = [
    "audit verify",
    "audit replay",
    "audit at",
    "audit export",
    "history",
    "submit",
    "base register",
    "base list",
    "env set",
    "env list",
    "env replicas",
    "env analysis",
    "principal add",
    "principal list",
    "principal revoke",
    "retention set",
    "retention show",
    "retention hold",
    "retention release",
    "archive show",
    "archive verify",
    "promote",
    "expand",
    "rollback",
    "abort",
    "rollout status",
    "rollout list",
]


def _leaves(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> Iterator[str]:
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subparsers:
        yield " ".join(prefix)
        return
    for name, child in subparsers[0].choices.items():
        yield from _leaves(child, (*prefix, name))


def test_every_subcommand_is_covered() -> None:
    parser = build_parser(KernelSettings.from_env("adapterctl", {}))
    assert sorted(_leaves(parser)) == sorted(COMMANDS)


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ADAPTERCTL), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_help_exits_0_and_shows_an_example(command: str) -> None:
    result = _run(*command.split(), "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: adapterctl {command}")
    assert "examples:" in result.stdout, f"`adapterctl {command} --help` shows no example"
    # The example is for this command (or its group's sibling it pairs with).
    assert f"adapterctl {command.split()[0]}" in result.stdout.split("examples:", 1)[1]


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unknown_option_is_a_usage_error(command: str) -> None:
    result = _run(*command.split(), "--no-such-option")
    assert result.returncode == 2
    # argparse names the missing required arguments, or else the unknown option.
    assert result.stderr.startswith("usage: adapterctl") and "error:" in result.stderr
    assert result.stdout == ""


def test_no_command_is_a_usage_error_and_top_level_help_lists_examples() -> None:
    assert _run().returncode == 2
    top = _run("--help")
    assert top.returncode == 0 and "examples:" in top.stdout and "exit status:" in top.stdout


# --- real invocations against a private stack -----------------------------------------------


class Ctl:
    """The stack's adapterctl with the exit status checked, and JSON parsed on demand;
    `env` overrides the stack's variables."""

    def __init__(self, stack: Stack, **env: str) -> None:
        self.stack = stack
        self.overrides = env

    def __call__(self, *args: str, rc: int = 0) -> subprocess.CompletedProcess[str]:
        # adapterctl connects to Kafka as the role its subcommand needs (submit: a trainer).
        env = self.stack.env(acl.cli_principal(args[0] if args else ""), **self.overrides)
        if args and args[0] == "submit" and "ADAPTERCTL_TOKEN" not in self.overrides:
            self.stack.wait_ingest()
            env["ADAPTERCTL_TOKEN"] = self.stack.trainer_token  # only a trainer submits
        result = _run(*args, env=env)
        assert result.returncode == rc, (
            f"adapterctl {' '.join(args)}: exit {result.returncode}, wanted {rc}\n"
            f"{result.stdout}{result.stderr}"
        )
        return result

    def json(self, *args: str, rc: int = 0) -> Any:
        return json.loads(self(*args, "--json", rc=rc).stdout)


@pytest.fixture(scope="module")
async def stack(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    stack = Stack(infra, tmp_path_factory.mktemp("ctl"))
    await stack.create()
    write_base_model(stack.root / "base")
    stack.start("ingest")
    stack.start("validator")
    stack.start("activator", ACTIVATOR_ROUTING_DIR="")  # its API on the stack's port
    stack.start("archiver", COLD_STORAGE_URL=str(stack.root / "cold"))
    for service in ("activator", "archiver"):
        url = stack.env()[f"{service.upper()}_URL"] + "/healthz"
        eventually(partial(answering, url), timeout=120, message=f"{service} never answered")
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def ctl(stack: Stack) -> Ctl:
    return Ctl(stack)


@pytest.fixture(scope="module")
def catalogue(ctl: Ctl, stack: Stack) -> None:
    """`base register` and `env set`: what every later command needs."""
    base = ctl.json(
        "base",
        "register",
        str(stack.root / "base"),
        "--id",
        BASE_ID,
        "--revision",
        BASE_REVISION,
        "--tokenizer-revision",
        "tok-1",
    )
    assert (base["model_id"], base["revision"]) == (BASE_ID, BASE_REVISION)
    env = ctl.json("env", "set", ENV, "--base", BASE, "--max-lora-rank", "16")
    assert env["name"] == ENV and env["max_lora_rank"] == 16


@pytest.fixture(scope="module")
def revision(ctl: Ctl, stack: Stack, catalogue: None) -> tuple[str, str]:
    """`submit` of a good adapter folder, followed until the validator has spoken."""
    adapter = f"ctl-{stack.token}"
    folder = stack.incoming / adapter
    write_adapter(folder, tiny_base_spec())
    (folder / "recipe.json").write_text(json.dumps(RECIPE))
    (folder / "data_scope.json").write_text(json.dumps(SCOPE))
    submitted = ctl.json(
        "submit",
        str(folder),
        "--adapter",
        adapter,
        "--base",
        BASE,
        "--tokenizer-revision",
        "tok-1",
        "--base-folder",
        str(stack.root / "base"),
        "--environment",
        ENV,
    )
    assert submitted["event"]["adapter"] == adapter and submitted["offset"] >= 0
    assert submitted["submitter"] == "trainer-alice"  # the token's principal
    events = stack.wait_for(
        lambda evs: any(isinstance(e, RevisionValidated | RevisionRejected) for e in evs),
        adapter=adapter,
    )
    outcome = next(e for e in events if isinstance(e, RevisionValidated | RevisionRejected))
    assert isinstance(outcome, RevisionValidated), outcome
    return adapter, outcome.envelope.revision


def test_base_and_env_catalogues(ctl: Ctl, catalogue: None) -> None:
    assert [b["model_id"] for b in ctl.json("base", "list")] == [BASE_ID]
    assert [e["name"] for e in ctl.json("env", "list")] == [ENV]
    # An unregistered base is refused before anything is written.
    missing = ctl("env", "set", "production", "--base", "tiny-llama@sha256:none", rc=2)
    assert "not registered" in missing.stderr
    assert ctl("env", "set", "production", "--base", "no-revision", rc=2).stderr
    assert [e["name"] for e in ctl.json("env", "list")] == [ENV]
    assert ctl("base", "register", str(ctl.stack.root / "nowhere"), "--id", "x",
               "--tokenizer-revision", "t", rc=2).stderr  # fmt: skip


def test_submit_refuses_a_folder_it_cannot_describe(ctl: Ctl, catalogue: None) -> None:
    empty = ctl.stack.incoming / "empty"
    empty.mkdir(exist_ok=True)
    result = ctl("submit", str(empty), "--adapter", "empty", "--base", BASE,
                 "--tokenizer-revision", "tok-1", rc=2)  # fmt: skip
    assert "adapterctl: error:" in result.stderr
    assert ctl("submit", str(empty), "--adapter", "x", "--base", BASE_ID,
               "--tokenizer-revision", "tok-1", rc=2).stderr  # fmt: skip


def test_env_replicas_and_analysis(ctl: Ctl, catalogue: None) -> None:
    assert ctl.json("env", "replicas", ENV) == []
    assert "has no replicas" in ctl("env", "replicas", ENV).stdout
    urls = ["http://127.0.0.1:1/", "http://127.0.0.1:2"]
    assert ctl.json("env", "replicas", ENV, *urls) == ["http://127.0.0.1:1", "http://127.0.0.1:2"]
    # The list is set, not appended to: the URLs not named stop serving the environment.
    assert ctl.json("env", "replicas", ENV, "http://127.0.0.1:3") == ["http://127.0.0.1:3"]
    assert ctl("env", "replicas", ENV).stdout.split() == ["http://127.0.0.1:3"]
    assert ctl.json("env", "replicas", ENV, "--clear") == []
    # The activator refuses what it cannot use, and says why (exit 1).
    assert "not an http" in ctl("env", "replicas", ENV, "ftp://x", rc=1).stderr
    assert "no environment" in ctl("env", "replicas", "nowhere", "http://x", rc=1).stderr
    assert ctl.json("env", "replicas", ENV) == []
    assert ctl.json("env", "analysis", ENV) == {}
    settings = ctl.json("env", "analysis", ENV, "--min-samples", "200")
    assert settings == {"min_samples": 200}
    settings = ctl.json("env", "analysis", ENV, "--max-error-rate", "0.05")
    assert settings == {"min_samples": 200, "max_error_rate": 0.05}
    assert ctl("env", "analysis", ENV, "--min-samples", "many", rc=2).stderr


def test_env_changes_are_refused_without_a_proven_operator_whatever_the_caller_claims(
    ctl: Ctl, catalogue: None
) -> None:
    """An insider who reaches the activator but holds no operator's token: a missing, forged
    or revoked token, or one of another role, changes nothing, whatever name is typed."""
    url = ctl.stack.env()["ACTIVATOR_URL"] + f"/environments/{ENV}/replicas"
    rogue = {"urls": ["http://10.6.6.6:8000"]}
    assert httpx.put(url, json=rogue, timeout=10).status_code == 401
    forged = {"Authorization": "Bearer apt_forged"}
    assert httpx.put(url, json=rogue, headers=forged, timeout=10).status_code == 401
    trainer = ctl.json("principal", "add", f"tia-{ctl.stack.token}", "--role", "trainer")["token"]
    as_trainer = {"Authorization": f"Bearer {trainer}"}
    refused = httpx.put(url, json=rogue, headers=as_trainer, timeout=10)
    assert refused.status_code == 403 and "not admin or operator" in refused.json()["detail"]
    no_token = Ctl(ctl.stack, ADAPTERCTL_TOKEN="")
    assert "needs a principal's token" in no_token("env", "replicas", ENV, "http://x", rc=1).stderr
    assert ctl.json("env", "replicas", ENV) == [], "nothing was changed"


def test_principal_add_list_revoke(ctl: Ctl) -> None:
    added = ctl.json("principal", "add", "carol", "--role", "approver")
    assert added["name"] == "carol" and added["role"] == "approver" and len(added["token"]) > 20
    plain = ctl("principal", "add", "dave", "--role", "operator")
    assert plain.stdout.strip() and "shown this once" in plain.stderr
    listed = {(p["name"], p["role"]) for p in ctl.json("principal", "list")}
    assert {("carol", "approver"), ("dave", "operator")} <= listed
    assert ctl.json("principal", "revoke", "carol", "--role", "approver") == ["approver"]
    revoked = [p for p in ctl.json("principal", "list") if p["name"] == "carol"]
    assert revoked and all(p["revoked_at"] for p in revoked)
    # Revoking what is not held is refused (exit 1, the reason on stderr).
    assert "holds no active" in ctl("principal", "revoke", "carol", rc=1).stderr
    assert ctl("principal", "add", "erin", "--role", "emperor", rc=2).stderr


def test_submit_history_and_audit(ctl: Ctl, revision: tuple[str, str]) -> None:
    adapter, rev = revision
    timeline = ctl.json("history", adapter)
    names = [e["event"] for e in timeline["events"]]
    assert names[:2] == ["RevisionRegistered", "RevisionValidated"], timeline
    assert rev[:19] in ctl("history", adapter).stdout
    assert ctl("history", "no-such-adapter", rc=1).stderr

    verified = ctl.json("audit", "verify")
    assert verified["ok"] is True and adapter in verified["adapters"]
    assert "OK" in ctl("audit", "verify").stdout

    replayed = ctl.json("audit", "replay")
    assert json.dumps(replayed).count(rev) >= 1

    # Nothing is active anywhere yet: the answer is an empty list, and an empty answer is
    # exit 1 (as the top-level help says); an adapter the log does not know is 1 too.
    now = datetime.now(UTC).isoformat()
    at = json.loads(ctl("audit", "at", "--time", now, "--environment", ENV, "--json", rc=1).stdout)
    assert at["verified"] is True and at["adapters"] == []
    ctl("audit", "at", "--time", now, "--environment", ENV, "--adapter", adapter, rc=1)
    unknown = ctl("audit", "at", "--time", now, "--environment", ENV, "--adapter", "nobody", rc=1)
    assert "has no events" in unknown.stderr
    # A time without a timezone is a usage error.
    assert ctl("audit", "at", "--time", "2026-01-01T00:00", "--environment", ENV, rc=2).stderr


def test_audit_commands_name_a_missing_topic(ctl: Ctl) -> None:
    result = ctl("audit", "verify", "--topic", f"missing-{ctl.stack.token}", "--timeout", "5",
                 rc=2)  # fmt: skip
    assert "adapterctl: error:" in result.stderr


def test_retention_set_show_hold_release(ctl: Ctl, revision: tuple[str, str]) -> None:
    adapter, rev = revision
    policy = ctl.json("retention", "set", "--environment", ENV, "--keep-superseded", "3",
                      "--min-age-days", "30")  # fmt: skip
    assert policy["keep_superseded"] == 3 and policy["min_age_days"] == 30
    ctl("retention", "set", "--environment", ENV, "--adapter", adapter, "--keep-superseded", "5",
        "--min-age-days", "90")  # fmt: skip
    shown = ctl.json("retention", "show", "--environment", ENV)
    assert {(p["adapter"], p["keep_superseded"]) for p in shown["policies"]} == {
        ("", 3),  # the environment's default
        (adapter, 5),
    }

    placed = ctl("retention", "hold", rev, "--adapter", adapter, "--reason", "case 4711")
    assert "legal hold placed" in placed.stdout
    holds = ctl.json("retention", "show")["holds"]
    assert [(h["revision"], h["reason"]) for h in holds] == [(rev, "case 4711")]
    # A second hold, a hold on an unknown revision, a release of nothing: refused (exit 1).
    assert "already under" in ctl("retention", "hold", rev, "--adapter", adapter, "--reason",
                                  "again", rc=1).stderr  # fmt: skip
    assert ctl("retention", "hold", "sha256:nope", "--adapter", adapter, "--reason", "x",
               rc=1).stderr  # fmt: skip
    ctl("retention", "release", rev, "--adapter", adapter, "--reason", "case closed")
    assert ctl.json("retention", "show")["holds"] == []
    assert "not under a legal hold" in ctl("retention", "release", rev, "--adapter", adapter,
                                           rc=1).stderr  # fmt: skip


def test_archive_show_and_verify_refuse_a_revision_not_archived(
    ctl: Ctl, revision: tuple[str, str]
) -> None:
    adapter, rev = revision
    shown = ctl("archive", "show", rev, "--adapter", adapter, rc=1)
    assert "is not archived" in shown.stderr and "validated" in shown.stderr
    assert ctl("archive", "show", rev, "--adapter", adapter, "--json", rc=1).stdout == ""
    weights = ctl.stack.incoming / adapter
    verified = ctl("archive", "verify", rev, "--adapter", adapter, "--weights", str(weights), rc=1)
    assert "is not archived" in verified.stderr
    unknown = ctl("archive", "show", "sha256:nope", "--adapter", adapter, rc=1)
    assert f"no revision of {adapter} starts with 'sha256:nope'" in unknown.stderr
    assert rev.removeprefix("sha256:")[:16] in unknown.stderr  # what exists is listed
    prefixed = ctl("archive", "show", rev.removeprefix("sha256:")[:12], "--adapter", adapter, rc=1)
    assert "is not archived" in prefixed.stderr  # a prefix names the revision, as in promote


@pytest.fixture(scope="module")
def unheard(stack: Stack) -> Ctl:
    """adapterctl with an activator URL nothing answers on."""
    return Ctl(stack, ACTIVATOR_URL="http://127.0.0.1:1")


def test_operator_commands_without_an_activator(unheard: Ctl, revision: tuple[str, str]) -> None:
    ctl = unheard
    adapter, rev = revision
    # Only the activator issues commands: without it, nothing is sent, and the error says so.
    down = ctl("promote", adapter, rev[:15], "--environment", ENV, "--canary", "10",
               "--no-wait", rc=2)  # fmt: skip
    assert "cannot reach http://127.0.0.1:1" in down.stderr and "activator running" in down.stderr
    # expand / abort need a canary, promote a revision that exists: refused before asking.
    assert "has no canary" in ctl("expand", adapter, "--environment", ENV, "--percent", "50",
                                  rc=1).stderr  # fmt: skip
    assert "has no canary" in ctl("abort", adapter, "--environment", ENV, rc=1).stderr
    assert "no revision" in ctl("promote", adapter, "sha256:ffff", "--environment", ENV,
                                "--no-wait", rc=1).stderr  # fmt: skip
    assert ctl("promote", adapter, rev, "--environment", ENV, "--canary", "10", "--activate",
               rc=2).stderr  # fmt: skip
    assert not [r for r in ctl.stack.records(ctl.stack.commands_topic) if r.key == adapter.encode()]


def test_operator_commands_are_issued_by_the_activator_as_the_tokens_principal(
    ctl: Ctl, revision: tuple[str, str]
) -> None:
    adapter, rev = revision
    operator = f"olga-{ctl.stack.token}"
    as_operator = Ctl(ctl.stack, ADAPTERCTL_TOKEN=ctl.stack.token_of(operator, "operator"))
    # --no-wait: the activator put the command on the topic and answered with its id.
    sent = as_operator.json("promote", adapter, rev[:15], "--environment", ENV, "--canary", "10",
                            "--no-wait", "--reason", "test")  # fmt: skip
    assert len(sent["command_id"]) == 36
    issued = [r for r in ctl.stack.records(ctl.stack.commands_topic) if r.key == adapter.encode()]
    command = Codec.from_env().decode(issued[-1].value)
    assert command.header.command_id == sent["command_id"]
    assert (command.header.actor.principal, command.header.actor.role) == (operator, "operator")
    # The answer (refused: the revision is not approved) is recorded under its id.
    answer = eventually(
        lambda: (
            httpx.get(
                f"{ctl.stack.env()['ACTIVATOR_URL']}/outcomes/{sent['command_id']}", timeout=10
            )
            .json()
            .get("outcome")
        ),
        timeout=60,
        message="the activator never answered the command",
    )
    assert answer == "refused"


def test_a_forged_or_revoked_operator_moves_nothing(ctl: Ctl, revision: tuple[str, str]) -> None:
    """Issue #15's attacks on the commands: an insider with the operators' Kafka password
    (or none), a typed principal and role, a revoked operator's token."""
    adapter, _ = revision
    stack = ctl.stack
    header = CommandHeader(
        command_id=str(uuid.uuid4()), adapter=adapter, environment=ENV,
        actor=Actor(principal="root", role="admin"), issued_at=datetime.now(UTC),
        correlation_id=str(uuid.uuid4()), reason="forged",
    )  # fmt: skip
    forged = Codec.from_env().encode(RollbackRevision(header=header, to_revision=None))
    # 1. Broker network access alone, or the operators' Kafka principal: the topic refuses.
    anonymous = KafkaEndpoint(stack.infra.bootstrap_servers)
    for kafka in (anonymous, stack.infra.as_principal(acl.OPERATOR)):
        producer = make_producer(kafka, **{"message.timeout.ms": 2000})
        with pytest.raises((KafkaException, TimeoutError)):
            publish(producer, stack.commands_topic, key=b"k", value=forged, timeout_s=8)
    # 2. Even a writer past the ACLs (a super user) cannot make a typed name an admin: the
    #    activator checks the actor against the registry's principals and records the refusal.
    publish(make_producer(stack.infra.kafka), stack.commands_topic, key=adapter.encode(),
            value=forged)  # fmt: skip
    url = f"{stack.env()['ACTIVATOR_URL']}/outcomes/{header.command_id}"
    answer = eventually(
        lambda: (r := httpx.get(url, timeout=10)).status_code == 200 and r.json(),
        timeout=60,
        message="the activator never answered the forged command",
    )
    assert answer["outcome"] == "refused" and answer["principal"] == "root"
    assert "root is no active principal (unknown or revoked)" in answer["detail"]
    dead = eventually(
        lambda: [r for r in stack.records(dlq_of(stack.commands_topic))
                 if header.command_id.encode() in r.value or r.key == adapter.encode()],
        timeout=60,
        message="the forged command was not dead-lettered",
    )  # fmt: skip
    assert dead
    # 3. A revoked operator's token is refused at the door: 401, nothing issued.
    revoked = f"rita-{stack.token}"
    token = stack.token_of(revoked, "operator")
    ctl("principal", "revoke", revoked)
    as_revoked = Ctl(stack, ADAPTERCTL_TOKEN=token)
    refused = as_revoked("rollback", adapter, "--environment", ENV, rc=1)
    assert "refused the token (401)" in refused.stderr and "unknown or revoked" in refused.stderr


def test_rollout_status(ctl: Ctl, revision: tuple[str, str]) -> None:
    adapter, rev = revision
    status = ctl.json("rollout", "status", adapter)
    assert set(status) == {"pointers", "canaries", "outcomes"}
    assert status["canaries"] == []
    assert "Recent answers" in ctl("rollout", "status", adapter, "--environment", ENV).stdout
    # The activator answers a promotion of a revision not approved: refused, shown here.
    refused = ctl("promote", adapter, rev, "--environment", ENV, "--canary", "10", rc=1)
    assert "promote refused" in refused.stderr
    newest = ctl.json("rollout", "status", adapter)["outcomes"][0]  # newest first
    assert (newest["action"], newest["outcome"]) == ("promote", "refused")
    assert len(ctl.json("rollout", "status", adapter)["outcomes"]) == len(status["outcomes"]) + 1


def test_rollout_list(ctl: Ctl) -> None:
    listed = ctl.json("rollout", "list", "--environment", ENV)
    assert isinstance(listed, list)
    assert all(c["environment"] == ENV for c in listed)
    shown = ctl("rollout", "list").stdout
    assert shown.startswith("ADAPTER") or shown == "no canary in progress\n"


def test_a_registry_that_cannot_be_reached_is_exit_2(stack: Stack) -> None:
    env = stack.env(DATABASE_URL="postgresql://postgres@127.0.0.1:1/none")
    result = _run("env", "list", "--timeout", "2", env=env)
    assert result.returncode == 2 and "cannot reach the registry" in result.stderr
