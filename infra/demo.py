"""`make demo`: the local stack and real adapters' journey through it, step by step.

Kafka + PostgreSQL start (or are reused), the tiny model kit is built (a real LLaMA-style
base and PEFT LoRA adapters trained on the CPU), the base and two environments are
registered, every service runs as its own process, and a good and a broken adapter are
submitted the way a training cluster would. It ends with the audit: the log verified
from its first byte. Re-running it is safe: each run's adapters carry the run's id.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from shared.codec import Codec  # noqa: E402
from shared.kafka.reader import read_topic  # noqa: E402
from shared.kafka.topics import admin_client, catalogue, provision  # noqa: E402

VAR = REPO / "var"
DEMO = VAR / "demo"
SERVICES = ("ingest", "validator", "gpu_evaluator")
ADAPTERCTL = Path(sys.executable).parent / "adapterctl"


class Demo:
    def __init__(self) -> None:
        self.run_id = time.strftime("%H%M%S")
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.env: dict[str, str] = {}

    def step(self, title: str) -> float:
        print(f"\n==> {title}", flush=True)
        return time.monotonic()

    def done(self, started: float, note: str = "") -> None:
        print(f"    done in {time.monotonic() - started:.1f}s {note}".rstrip(), flush=True)

    def adapterctl(self, *args: str, show: bool = True) -> str:
        result = subprocess.run(
            [str(ADAPTERCTL), *args], env=self.env, capture_output=True, text=True, timeout=300
        )
        if result.returncode not in (0, 1):
            raise SystemExit(f"adapterctl {' '.join(args)} failed:\n{result.stderr}")
        if show:
            print("    " + result.stdout.strip().replace("\n", "\n    "))
        return result.stdout

    def start_infra(self) -> None:
        t = self.step("Starting Kafka (KRaft) and PostgreSQL with infra/up.sh")
        subprocess.run([str(REPO / "infra" / "up.sh")], check=True, cwd=REPO)
        for line in (VAR / "infra.env").read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                key, _, value = line.removeprefix("export ").partition("=")
                self.env[key.strip()] = value.strip().strip("'\"")
        DEMO.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            **self.env,
            "PYTHONPATH": str(REPO),
            "ARTIFACT_ROOT": str(VAR / "artifacts"),
            "INGEST_ALLOWED_ROOTS": str(VAR / "incoming"),
            "LOG_FORMAT": "json",
            "EVALUATOR_SUITES_ROOT": str(REPO / "infra" / "suites"),
            "EVALUATOR_LOAD_PROFILES_ROOT": str(REPO / "infra" / "suites" / "load"),
        }
        report = provision(admin_client(self.env["KAFKA_BOOTSTRAP_SERVERS"]), catalogue())
        self.done(t, f"(topics created: {len(report.created)})")

    def build_kit(self) -> Any:
        t = self.step("Building the tiny model kit (real base + LoRA adapters, CPU)")
        from shared.modelkit.cache import kit

        built = kit()
        self.done(t, f"-> {built.root.relative_to(REPO)}")
        return built

    def register_catalogue(self, built: Any) -> str:
        t = self.step("Registering the base model and the staging/production environments")
        revision = built.revisions["main"]
        base = f"{built.model_ids['main']}@{revision}"
        # Where this machine's evaluator finds the registered base's weights.
        self.env["EVALUATOR_BASE_MODELS"] = f"{base}={built.base}"
        self.adapterctl(
            "base",
            "register",
            str(built.base),
            "--id",
            built.model_ids["main"],
            "--revision",
            revision,
            "--tokenizer-revision",
            "tok-1",
        )
        self.adapterctl("env", "set", "staging", "--base", base, "--max-lora-rank", "16")
        self.adapterctl(
            "env",
            "set",
            "production",
            "--base",
            base,
            "--max-lora-rank",
            "16",
            "--required-approvals",
            "2",
            "--separate-approver-and-operator",
        )
        self.done(t)
        return base

    def start_services(self) -> None:
        t = self.step(f"Starting the services, each its own process: {', '.join(SERVICES)}")
        logs = DEMO / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for name in SERVICES:
            out = (logs / f"{name}.log").open("ab")
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", f"services.{name}"],
                cwd=REPO,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.done(t, f"(logs in {logs.relative_to(REPO)})")

    def stage(self, source: Path, name: str, edit: Callable[[Path], None] | None = None) -> Path:
        folder = VAR / "incoming" / name
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(source, folder)
        if edit:
            edit(folder)
        return folder

    def submit(self, folder: Path, adapter: str, base: str, base_folder: Path) -> None:
        self.adapterctl(
            "submit",
            str(folder),
            "--base-folder",
            str(base_folder),
            "--adapter",
            adapter,
            "--base",
            base,
            "--tokenizer-revision",
            "tok-1",
            "--environment",
            "staging",
            "--environment",
            "production",
            "--submitter",
            "trainer-alice",
        )

    def wait_for(
        self, adapter: str, wanted: set[str], timeout_s: float = 300, count: int = 1
    ) -> list[str]:
        codec = Codec.from_env()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            names = []
            for record in read_topic(self.env["KAFKA_BOOTSTRAP_SERVERS"], "adapters.lifecycle.v1"):
                event = codec.decode(record.value or b"")
                if event.envelope.adapter == adapter:  # type: ignore[attr-defined]
                    names.append(type(event).__name__)
            if sum(1 for n in names if n in wanted) >= count:
                return names
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise SystemExit(f"{name} stopped; see var/demo/logs/{name}.log")
            time.sleep(0.5)
        raise SystemExit(f"{adapter}: none of {wanted} within {timeout_s}s")

    def stop_services(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def break_rank(folder: Path) -> None:
    """A trainer's mistake: the config claims another rank than the tensors have."""
    config = json.loads((folder / "adapter_config.json").read_text())
    config["r"] = 4
    (folder / "adapter_config.json").write_text(json.dumps(config, indent=2))


def main() -> int:
    demo = Demo()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        demo.start_infra()
        built = demo.build_kit()
        base = demo.register_catalogue(built)
        demo.start_services()

        good = f"support-summarizer-{demo.run_id}"
        t = demo.step(f"A training cluster submits {good} (a well-trained adapter)")
        demo.submit(demo.stage(built.good, good), good, base, built.base)
        events = demo.wait_for(
            good, {"RevisionEvaluated", "RevisionEvaluationFailed", "RevisionRejected"}, count=2
        )
        demo.done(t, f"-> {' -> '.join(events)}")
        demo.adapterctl("history", good)

        regressed = f"support-regressed-{demo.run_id}"
        t = demo.step(f"A training cluster submits {regressed} (trained on corrupted labels)")
        demo.submit(demo.stage(built.shuffled, regressed), regressed, base, built.base)
        events = demo.wait_for(
            regressed, {"RevisionEvaluated", "RevisionEvaluationFailed", "RevisionRejected"}
        )
        demo.done(t, f"-> {' -> '.join(events)}")
        demo.adapterctl("history", regressed)

        broken = f"support-broken-{demo.run_id}"
        t = demo.step(f"A training cluster submits {broken} (its config lies about the rank)")
        demo.submit(demo.stage(built.good, broken, break_rank), broken, base, built.base)
        events = demo.wait_for(broken, {"RevisionRejected", "RevisionValidated"})
        demo.done(t, f"-> {' -> '.join(events)}")
        demo.adapterctl("history", broken)

        t = demo.step("The auditor verifies the whole lifecycle log from its first event")
        demo.adapterctl("audit", "verify")
        demo.done(t)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the services", flush=True)
        return 130
    finally:
        demo.stop_services()

    print(
        "\nSummary: the good adapter was registered, validated and evaluated against its "
        "golden suite\nunder load in staging and production; the regressed one failed the "
        "evaluator's gates;\nthe broken one was rejected with a finding that names the "
        "problem; the audit log verified.\n"
        "Explore: .venv/bin/adapterctl audit replay | history ADAPTER | audit at ...\n"
        "Kafka and PostgreSQL are still running. Stop them with: make infra-down"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
