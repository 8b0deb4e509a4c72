"""`make demo`: the whole release train, on this machine, with real adapters.

Kafka and PostgreSQL start (or are reused); the tiny model kit is built (a real
LLaMA-style base and PEFT LoRA adapters trained on the CPU); every service runs as its
own process beside two reference serving replicas. A first revision goes to active, a
second canaries under live traffic and activates by analysis, a third regresses and the
evaluator refuses it, an operator rolls back in one command, retention archives the
refused revision before deleting its weights, and the auditor verifies the log and every
signed decision. Re-running is safe: each run's adapter carries the run's id.

Test-only: `DEMO_PAUSE_AT=<point>` holds the demo at a named point until a signal arrives
or `var/demo/resume` appears: `ready` (every service up, nothing submitted) or `canary`
(the second revision canaries under live traffic; `tests/e2e/test_demo_interrupt.py`
sends its Ctrl-C there).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infra.demo_stack import DEMO, REPO, DemoStack, Progress, free_port, port_or_free
from shared.kafka.topics import admin_client, catalogue, provision

QUESTION = "what is the capital of france?"
# Training and loading the kit (imported later) print no progress bars over the demo's lines.
for _quiet in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS"):
    os.environ.setdefault(_quiet, "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


# The ports `make stack-up` asks for first (adapterctl's defaults), each taken only if free.
STACK_PORTS = {
    "replica1": 8001,
    "replica2": 8002,
    "gateway": 8080,
    "ingest": 8470,
    "approval": 8480,
    "activator": 8490,
    "archiver": 8491,
}


class Journey:
    def __init__(self, *, stack_ports: bool = False) -> None:
        self.s = DemoStack()
        self.stack_ports = stack_ports  # the usual ports where free; else any free port
        self.adapter = f"support-summarizer-{time.strftime('%H%M%S')}"
        self.tokens: dict[str, str] = {}
        self.replicas: list[str] = []
        self.approval = ""
        self.gateway = ""  # production's OpenAI-compatible front; clients call it by name
        self.client_key = ""
        self.scrape_file: Path | None = None  # what Prometheus scrapes for the demo

    def setup(self) -> None:
        s = self.s
        t = s.step("Starting Kafka (KRaft) and PostgreSQL with infra/up.sh")
        for leftover in s.stop_leftovers():
            print(f"    stopped {leftover}, left running by an earlier demo", flush=True)
        s.start_infra()
        provision(admin_client(s.admin_kafka()), catalogue())
        s.done(t)

        t = s.step("Building the tiny model kit: a real base and LoRA adapters, on the CPU")
        from shared.modelkit.adapters import train_adapter
        from shared.modelkit.cache import kit

        with Progress("training (about 30 s the first time, cached after)"):
            self.kit = kit()
            self.second = self.kit.root / "demo" / "good-seed-1"
            if not (self.second / "adapter_config.json").is_file():
                train_adapter(self.kit.base, self.second, kind="good", seed=1)
        s.done(t, f"-> {self.kit.root.relative_to(REPO)}")

        t = s.step("Registering the base model, staging and production, retention, principals")
        self.base = f"{self.kit.model_ids['main']}@{self.kit.revisions['main']}"
        s.adapterctl(
            "base",
            "register",
            str(self.kit.base),
            "--id",
            self.kit.model_ids["main"],
            "--revision",
            self.kit.revisions["main"],
            "--tokenizer-revision",
            "tok-1",
        )
        s.adapterctl("env", "set", "staging", "--base", self.base, "--canary-steps", "100")
        self.gateway = f"http://127.0.0.1:{self.port('gateway')}"
        s.adapterctl(
            "env",
            "set",
            "production",
            "--base",
            self.base,
            "--required-approvals",
            "2",
            "--separate-approver-and-operator",
            "--canary-steps",
            "20,50,100",
            "--gateway",
            self.gateway,
        )
        principals = (
            ("trainer-alice", "trainer"),
            ("carol", "approver"),
            ("dave", "approver"),
            ("olive", "operator"),
            ("ada", "admin"),
        )
        for name, role in principals:
            # A re-run issues fresh tokens: the old ones were shown once and are gone.
            s.adapterctl("principal", "revoke", name, "--role", role, show=False, ok=(0, 1, 2))
            out = s.adapterctl("principal", "add", name, "--role", role, "--json", show=False)
            self.tokens[name] = json.loads(out)["token"]
            print(f"    principal {name} ({role}): token issued, kept by the demo")
        s.done(t)

    def start_services(self) -> None:
        s = self.s
        t = s.step("Starting every service as its own process, two serving replicas and a gateway")
        for i in (1, 2):
            port = self.port(f"replica{i}")
            s.start(
                f"replica{i}",
                "services.reference_server",
                "--port",
                str(port),
                REFERENCE_BASE_FOLDER=str(self.kit.base),
                REFERENCE_BASE_ID=self.kit.model_ids["main"],
                REFERENCE_BASE_REVISION=self.kit.revisions["main"],
            )
            self.replicas.append(f"http://127.0.0.1:{port}")
        approval_port, activator_port = self.port("approval"), self.port("activator")
        archiver_port, ingest_port = self.port("archiver"), self.port("ingest")
        self.approval = f"http://127.0.0.1:{approval_port}"
        # Where adapterctl submits, and reads the activator's and the archiver's answers.
        s.env["INGEST_URL"] = f"http://127.0.0.1:{ingest_port}"
        s.env["ACTIVATOR_URL"] = f"http://127.0.0.1:{activator_port}"
        s.env["ARCHIVER_URL"] = f"http://127.0.0.1:{archiver_port}"
        suites = REPO / "infra" / "suites"
        s.start("ingest", "services.ingest", INGEST_HTTP_PORT=str(ingest_port))
        s.start("validator", "services.validator")
        s.start(
            "gpu_evaluator",
            "services.gpu_evaluator",
            EVALUATOR_SUITES_ROOT=str(suites),
            EVALUATOR_LOAD_PROFILES_ROOT=str(suites / "load"),
            EVALUATOR_BASE_MODELS=f"{self.base}={self.kit.base}",
        )
        s.start(
            "approval",
            "services.approval",
            APPROVAL_HTTP_PORT=str(approval_port),
            APPROVAL_SIGNING_KEY=str(DEMO / "signing.key"),
        )
        gateway_keys = self.gateway_keys()
        s.start(  # canary analysis reads what Prometheus scraped from the gateway
            "activator",
            "services.activator",
            ACTIVATOR_ANALYSIS_INTERVAL_S="1",
            ACTIVATOR_HTTP_PORT=str(activator_port),
            ACTIVATOR_METRICS_SOURCE="prometheus",
            ACTIVATOR_PROMETHEUS_URL=s.env["PROMETHEUS_URL"],
            ACTIVATOR_GATEWAY_KEYS_DIR=str(gateway_keys),
        )
        s.start(
            "gateway",
            "services.gateway",
            GATEWAY_ENVIRONMENT="production",
            GATEWAY_REPLICAS=",".join(self.replicas),
            GATEWAY_BASE_MODEL=self.kit.model_ids["main"],
            GATEWAY_CLIENT_KEYS_FILE=str(gateway_keys / "clients"),
            GATEWAY_ADMIN_KEY_FILE=str(gateway_keys / "production.key"),
            GATEWAY_ROUTING_URL=f"{s.env['ACTIVATOR_URL']}/routing/production",
            GATEWAY_ROUTING_POLL_S="1",
            GATEWAY_PORT=self.gateway.rsplit(":", 1)[1],
        )
        self.scrape(activator_web=s.web["activator"])
        s.start(
            "archiver",
            "services.archiver",
            ARCHIVER_SWEEP_INTERVAL_S="3",
            ARCHIVER_HTTP_PORT=str(archiver_port),
        )
        with Progress("waiting for every service to report ready"):
            for url in self.replicas:
                s.wait_http(f"{url}/health")
            s.wait_http(f"{self.gateway}/healthz")
            s.wait_http(f"{self.approval}/healthz")
            s.wait_http(f"{s.env['INGEST_URL']}/healthz")
            for url in s.web.values():
                s.wait_http(f"{url}/health/ready")
        s.done(t, f"({len(s.processes)} processes, all ready; logs in var/demo/logs)")
        self.configure()

    def gateway_keys(self) -> Path:
        """The gateway's keys, fresh each run: the admin key the activator pushes routing
        with (as `<environment>.key`), and the clients' keys, kept as their sha256 only."""
        folder = DEMO / "gateway"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(mode=0o700, parents=True)
        self.client_key = "sk-demo-" + secrets.token_hex(16)
        digest = "sha256:" + hashlib.sha256(self.client_key.encode()).hexdigest()
        for name, text in (("production.key", secrets.token_hex(32)), ("clients", digest)):
            descriptor = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as out:
                out.write(text + "\n")
        return folder

    def scrape(self, activator_web: str) -> None:
        """Name the gateway, the replicas and the activator to the Prometheus infra/up.sh
        started (a file_sd file), labelled with the environment they serve."""

        def group(urls: list[str], job: str) -> dict[str, Any]:
            hosts = [url.removeprefix("http://") for url in urls]
            return {"targets": hosts, "labels": {"environment": "production", "job": job}}

        groups = [
            group([self.gateway], "gateway"),
            group(self.replicas, "replica"),
            group([activator_web], "activator"),
        ]
        folder = Path(self.s.env["PROMETHEUS_TARGETS_DIR"])
        folder.mkdir(parents=True, exist_ok=True)
        self.scrape_file = folder / "demo.json"
        self.scrape_file.write_text(json.dumps(groups, indent=2) + "\n")

    def port(self, name: str) -> int:
        return port_or_free(STACK_PORTS[name]) if self.stack_ports else free_port()

    def configure(self) -> None:
        """The settings the activator and the archiver own, set through their APIs by an
        operator and an admin proven by their tokens (the services act as the token's
        principal, never a typed name)."""
        s = self.s
        t = s.step("Replicas, canary analysis and retention, set as proven principals")
        as_olive = {"ADAPTERCTL_TOKEN": self.tokens["olive"]}
        s.adapterctl("env", "replicas", "production", *self.replicas, env=as_olive, show=False)
        s.adapterctl(
            "env",
            "analysis",
            "production",
            "--step-interval-s",
            "2",
            "--min-samples",
            "8",
            "--min-p95-delta-ms",
            "2000",
            env=as_olive,
            show=False,
        )
        for env in ("staging", "production"):
            s.adapterctl(
                "retention",
                "set",
                "--environment",
                env,
                "--keep-superseded",
                "1",
                "--min-age-days",
                "0",
                env={"ADAPTERCTL_TOKEN": self.tokens["ada"]},
            )
        s.done(t)
        s.pause_point("ready")  # tests only: every service up, nothing submitted yet

    def submit(self, folder: Path, label: str) -> str:
        s = self.s
        t = s.step(f"A training cluster submits {label}")
        staged = s.stage(folder, f"{self.adapter}-{label.split()[0]}")
        s.adapterctl(
            "submit",
            str(staged),
            "--adapter",
            self.adapter,
            "--base",
            self.base,
            "--base-folder",
            str(self.kit.base),
            "--tokenizer-revision",
            "tok-1",
            "--environment",
            "staging",
            "--environment",
            "production",
            show=False,
            env={"ADAPTERCTL_TOKEN": self.tokens["trainer-alice"]},  # the submitter is proven
        )
        events = s.wait_for(
            self.adapter,
            lambda evs: (
                _newest_registered(evs) is not None and _settled(evs, _newest_registered(evs))
            ),
            "evaluation verdict",
        )
        revision = _newest_registered(events)
        assert revision is not None
        kinds = [
            f"{type(e).__name__}{'/' + e.envelope.environment if e.envelope.environment else ''}"
            for e in events
            if e.envelope.revision == revision
        ]
        s.done(t, f"-> {revision[:19]}...: {' -> '.join(kinds)}")
        return revision

    def approve(self, revision: str, environment: str, approvers: list[str]) -> None:
        for name in approvers:
            headers = {"Authorization": f"Bearer {self.tokens[name]}"}
            base = f"{self.approval}/api/v1/environments/{environment}/revisions/{self.adapter}"
            deadline = time.monotonic() + 120
            while True:  # the approval read model follows the log a moment behind
                evidence = httpx.get(f"{base}/{revision}", headers=headers, timeout=30)
                if evidence.status_code == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            evidence.raise_for_status()
            body: dict[str, Any] = evidence.json()
            decision = httpx.post(
                f"{base}/{revision}/decisions",
                headers=headers,
                timeout=60,
                json={
                    "decision": "approve",
                    "comment": f"{name}: suite and load look right",
                    "manifest_digest": body["manifest_digest"],
                    "report_digest": body["report_digest"],
                },
            )
            decision.raise_for_status()
            print(f"    {name} approved in {environment}: {decision.json()['summary']}")

    def stop(self) -> None:
        """Unregister the replicas (they stop with the demo: an activator that outlives them
        must not probe dead URLs every tick), then stop every service."""
        s = self.s
        if self.replicas and "activator" in s.processes and s.processes["activator"].poll() is None:
            try:
                s.adapterctl(
                    "env",
                    "replicas",
                    "production",
                    "--clear",
                    env={"ADAPTERCTL_TOKEN": self.tokens["olive"]},
                    show=False,
                )
                print("    replicas unregistered from production", flush=True)
            except SystemExit as exc:  # cleanup goes on: the services must still stop
                print(f"    could not unregister the replicas: {exc}", flush=True)
            self.replicas = []
        if self.scrape_file is not None:
            self.scrape_file.unlink(missing_ok=True)
            self.scrape_file = None
        s.stop()

    def answers(self) -> str:
        """What a client asking the gateway for the adapter by name is answered."""
        return self.s.ask(self.gateway, self.adapter, QUESTION, self.client_key)


def _newest_registered(events: list[Any]) -> str | None:
    registered = [e for e in events if type(e).__name__ == "RevisionRegistered"]
    return registered[-1].envelope.revision if registered else None


def _settled(events: list[Any], revision: str | None) -> bool:
    verdicts = {"RevisionEvaluated", "RevisionEvaluationFailed"}
    mine = [e for e in events if e.envelope.revision == revision]
    return any(type(e).__name__ == "RevisionRejected" for e in mine) or (
        sum(type(e).__name__ in verdicts for e in mine) >= 2
    )


def main() -> int:
    journey = Journey()
    s = journey.s
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        journey.setup()
        journey.start_services()
        kit = journey.kit

        first = journey.submit(kit.good, "first (well trained)")
        t = s.step("Approvers decide on the evidence; the first revision goes to active")
        journey.approve(first, "staging", ["carol"])
        journey.approve(first, "production", ["carol", "dave"])
        s.wait_event(journey.adapter, first, "RevisionActivated", "production")
        s.done(t, f"-> the gateway answers {QUESTION!r} with {journey.answers()!r}")

        second = journey.submit(journey.second, "second (retrained, seed 1)")
        t = s.step(
            "The second revision canaries under live traffic through the gateway, and activates "
            "by analysis of what Prometheus scraped"
        )
        journey.approve(second, "staging", ["carol"])
        with s.traffic(
            [journey.gateway], journey.adapter, QUESTION, journey.client_key
        ) as statuses:
            journey.approve(second, "production", ["carol", "dave"])
            s.pause_point("canary")  # tests only: the canary under live traffic, mid-journey
            s.wait_event(journey.adapter, second, "RevisionActivated", "production")
        steps = [
            f"{type(e).__name__}({getattr(e, 'traffic_percent', '')})"
            for e in s.events(journey.adapter)
            if e.envelope.revision == second and e.envelope.environment == "production"
        ]
        s.done(
            t,
            f"-> {' -> '.join(steps)}; {len(statuses)} requests, "
            f"{sum(c != 200 for c in statuses)} errors",
        )

        third = journey.submit(kit.shuffled, "third (trained on corrupted labels)")
        t = s.step("The evaluator refused the third revision: it regressed against the second")
        s.adapterctl("history", journey.adapter, show=False)
        s.done(t, f"({third[:19]}... never reaches an approver)")

        t = s.step("An operator rolls production back in one command")
        s.adapterctl(
            "rollback",
            journey.adapter,
            "--environment",
            "production",
            "--reason",
            "support tickets regressed",
            env={"ADAPTERCTL_TOKEN": journey.tokens["olive"]},  # the operator's own token
        )
        s.wait_event(journey.adapter, first, "RevisionActivated", "production", count=2)
        s.done(t, f"-> the gateway answers with the first revision again: {journey.answers()!r}")

        t = s.step("Retention archives the refused revision, then deletes its weights")
        s.wait_event(journey.adapter, third, "WeightsDeleted")
        s.adapterctl("archive", "show", third, "--adapter", journey.adapter)
        s.done(t)

        t = s.step("The auditor verifies the log and every signed decision, from the first event")
        s.adapterctl("audit", "verify", "--public-key", str(DEMO / "signing.key.pub"))
        s.adapterctl("history", journey.adapter)
        s.done(t)

        t = s.step("An outside auditor verifies an export offline, with a second verifier")
        bundle = DEMO / "audit-kit" / journey.adapter
        shutil.rmtree(bundle, ignore_errors=True)
        log_key, approval_key = str(DEMO / "log.key.pub"), str(DEMO / "signing.key.pub")
        s.adapterctl(
            "audit",
            "export",
            "--out",
            str(bundle),
            "--log-key",
            log_key,
            "--public-key",
            approval_key,
        )
        # Written from docs/log-format.md alone, in Java: it shares no code with adapterctl.
        s.logcheck(
            "verify", "--bundle", str(bundle), "--log-key", log_key, "--approval-key", approval_key
        )
        s.done(t, f"(bundle: {bundle.relative_to(REPO)})")

        t = s.step("What each service's /metrics counted (adapters_events_total by outcome)")
        for name, outcomes in s.counters().items():
            shown = ", ".join(f"{k} {v:.0f}" for k, v in sorted(outcomes.items())) or "none"
            print(f"    metrics {name:<14} {shown}")
        s.done(t)
    except KeyboardInterrupt:
        # Services run in their own sessions: the Ctrl-C reached only this process.
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut cleanup
        print("\ninterrupted: stopping every service (up to 30 s)", flush=True)
        journey.stop()
        if s.started_infra:
            print("stopping Kafka and PostgreSQL, which this demo started", flush=True)
            s.stop_infra()
        else:
            print("Kafka and PostgreSQL were running before the demo: left running", flush=True)
        print("stopped; nothing of the demo is left running", flush=True)
        return 130
    finally:
        journey.stop()
    print(
        f"\nSummary for {journey.adapter}:\n"
        "  first revision: validated, evaluated, approved (1 in staging, 2 in production), active\n"
        "  second: canaried 20% -> 50% under traffic through the gateway, activated by\n"
        "          analysis of the gateway's metrics as Prometheus scraped them\n"
        "  third: refused by the evaluator (regressed against the serving revision), archived\n"
        "         to cold storage, weights deleted\n"
        "  production rolled back to the first revision in one command\n"
        "  the audit log and every signed decision verified, by adapterctl and by the\n"
        "  independent Java verifier over an exported auditor's bundle\n"
        "Explore: .venv/bin/adapterctl audit replay | history ADAPTER | audit at ...\n"
        "Kafka and PostgreSQL are still running. Stop them with: make infra-down"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
