"""The demo's machinery: the local stack's processes, adapterctl, HTTP calls, waiting on
the lifecycle log. `infra/demo.py` tells the story with it."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from infra import processes
from shared.codec import Codec
from shared.kafka.acl import RELAY, cli_principal, service_principal
from shared.kafka.auth import KafkaEndpoint, read_password, sasl_env
from shared.kafka.reader import read_topic

REPO = Path(__file__).resolve().parents[1]
VAR = REPO / "var"
DEMO = VAR / "demo"
ADAPTERCTL = Path(sys.executable).parent / "adapterctl"
LOGCHECK = REPO / "verifiers" / "java" / "logcheck"  # the second, independent verifier
LOGCHECK_BUILD = REPO / "verifiers" / "java" / "build.sh"
LIFECYCLE = "adapters.lifecycle.v1"
PIDS = DEMO / "processes.txt"  # the running demo's service pids: a re-run stops leftovers
# Test-only: `DEMO_PAUSE_AT=<point>` holds the demo at that named point (see `pause_point`)
# until a signal arrives or the file `DEMO_RESUME` appears, so a test can act while the
# journey is provably under way rather than race it.
PAUSE_AT = "DEMO_PAUSE_AT"
RESUME = DEMO / "resume"
SPINNER = "|/-\\"
OURS = (b"services.", b"infra.traffic")  # the modules a leftover pid may run to be stopped


class Progress:
    """A long step's heartbeat: on a terminal one line redrawn in place (what it waits for,
    the seconds so far); in a log (CI, a pipe) a line every `every_s` seconds instead."""

    def __init__(self, what: str, *, every_s: float = 15.0) -> None:
        self.what = what
        self.every_s = every_s
        self.started = time.monotonic()
        self.tty = sys.stdout.isatty()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Progress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._clear()

    def say(self, line: str) -> None:
        """A milestone inside the step, printed above the heartbeat."""
        with self._lock:
            self._clear()
            print(f"    {line} (+{time.monotonic() - self.started:.1f}s)", flush=True)

    def _clear(self) -> None:
        if self.tty:
            sys.stdout.write("\r\033[K")
            sys.stdout.flush()

    def _run(self) -> None:
        tick = 0
        while not self._stop.wait(0.2 if self.tty else self.every_s):
            elapsed = time.monotonic() - self.started
            with self._lock:
                if self.tty:
                    sys.stdout.write(f"\r    {SPINNER[tick % 4]} {self.what} ... {elapsed:.0f}s")
                    sys.stdout.flush()
                else:
                    print(f"    ... still {self.what} ({elapsed:.0f}s)", flush=True)
            tick += 1


SERVING = ("services.reference_server", "services.gateway")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_or_free(wanted: int) -> int:
    """`wanted` when nothing listens there, else any free port."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", wanted))
        except OSError:
            return free_port()
    return wanted


class DemoStack:
    def __init__(self) -> None:
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.env: dict[str, str] = {}
        self.web: dict[str, str] = {}  # service -> its health and metrics server
        self.started_infra = False
        self.shown: dict[str, int] = {}  # adapter -> how many of its events were printed
        self.codec = Codec.from_env()

    # -- steps ---------------------------------------------------------------------------
    def step(self, title: str) -> float:
        print(f"\n==> {title}", flush=True)
        return time.monotonic()

    def done(self, started: float, note: str = "") -> None:
        print(f"    done in {time.monotonic() - started:.1f}s {note}".rstrip(), flush=True)

    def pause_point(self, point: str) -> None:
        """Hold here when `DEMO_PAUSE_AT` names `point` (tests only): until a signal (Ctrl-C
        raises KeyboardInterrupt out of the sleep) or until `var/demo/resume` appears."""
        if os.environ.get(PAUSE_AT) != point:
            return
        RESUME.unlink(missing_ok=True)
        print(f"    paused at {point} ({PAUSE_AT}); resumes when {RESUME} appears", flush=True)
        while not RESUME.exists():
            self.check_alive()
            time.sleep(0.2)
        RESUME.unlink()

    # -- infrastructure and processes ----------------------------------------------------
    def start_infra(self) -> None:
        """infra/up.sh (idempotent); remembers whether Kafka and PostgreSQL already ran, so an
        interrupted demo stops only what it started."""
        status = subprocess.run(
            [str(REPO / "infra" / "status.sh")], cwd=REPO, capture_output=True, check=False
        )
        self.started_infra = status.returncode != 0
        subprocess.run([str(REPO / "infra" / "up.sh")], check=True, cwd=REPO)
        values = {}
        for line in (VAR / "infra.env").read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                key, _, value = line.removeprefix("export ").partition("=")
                values[key.strip()] = value.strip().strip("'\"")
        DEMO.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            **values,
            "PYTHONPATH": str(REPO),
            "ARTIFACT_ROOT": str(VAR / "artifacts"),
            "INGEST_ALLOWED_ROOTS": str(VAR / "incoming"),
            "LOG_FORMAT": "json",
            # Read models believe only decisions signed by the demo approval's key.
            "DECISION_PUBLIC_KEYS": str(DEMO / "signing.key.pub"),
            # The relays sign the log with the demo's key and checkpoint it every few
            # seconds into var/cold; `adapterctl audit verify` checks both.
            "LOG_SIGNING_KEY": str(DEMO / "log.key"),
            "LOG_PUBLIC_KEYS": str(DEMO / "log.key.pub"),
            "LOG_CHECKPOINT_INTERVAL_S": "5",
            "COLD_STORAGE_URL": str(VAR / "cold"),
            "LOG_CHECKPOINTS": str(VAR / "cold"),
        }

    def kafka_env(self, principal: str | None, *, relay: bool = True) -> dict[str, str]:
        """Kafka as `principal` (None: the admin of infra.env), and its relay as `relay`."""
        credentials = Path(self.env["KAFKA_CREDENTIALS_DIR"])
        if principal is None:
            return {}
        return sasl_env(credentials, principal) | (
            sasl_env(credentials, RELAY, prefix="RELAY_") if relay else {}
        )

    def start(self, name: str, module: str, *args: str, **env: str) -> None:
        # Serving processes (replicas, the gateway) have no Kafka side, so no web port.
        if module.startswith("services.") and module not in SERVING:
            port = free_port()  # health and Prometheus metrics, read at the end
            env = {f"{name.upper()}_WEB_PORT": str(port), **env}
            self.web[name] = f"http://127.0.0.1:{port}"
        # Its own session: a Ctrl-C reaches the demo alone, which then stops every service
        # in order (SIGTERM, then SIGKILL after 30 s) instead of each dying mid-write.
        self.processes[name] = processes.ServiceCommand(
            name,
            ("-m", module, *args),
            {**self.env, **self.kafka_env(service_principal(module)), **env},
            DEMO / "logs" / f"{name}.log",
            new_session=True,
        ).start()
        self._record_pids()

    def _record_pids(self) -> None:
        DEMO.mkdir(parents=True, exist_ok=True)
        lines = [f"{p.pid} {name}" for name, p in self.processes.items() if p.poll() is None]
        PIDS.write_text("".join(f"{line}\n" for line in lines))

    def stop_leftovers(self) -> list[str]:
        """Stop services an earlier demo left running (killed before it could clean up), so
        a re-run starts from the same place; each pid is checked to be a demo service."""
        if not PIDS.is_file():
            return []
        stopped = []
        for line in PIDS.read_text().splitlines():
            pid_text, _, name = line.partition(" ")
            pid = int(pid_text)
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"-m" in cmdline and any(arg.startswith(OURS) for arg in cmdline):
                os.kill(pid, signal.SIGTERM)
                stopped.append(f"{name} (pid {pid})")
        deadline = time.monotonic() + 30
        for line in PIDS.read_text().splitlines():
            pid = int(line.split(" ", 1)[0])
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.1)
        PIDS.unlink()
        return stopped

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise SystemExit(f"{name} stopped; see var/demo/logs/{name}.log")

    def wait_http(self, url: str, timeout_s: float = 180) -> None:
        try:
            processes.wait_http(url, timeout_s=timeout_s, check=self.check_alive)
        except TimeoutError as exc:
            raise SystemExit(str(exc)) from None

    def stop(self) -> None:
        processes.stop(self.processes.values())
        PIDS.unlink(missing_ok=True)

    def stop_infra(self) -> None:
        subprocess.run([str(REPO / "infra" / "down.sh")], cwd=REPO, check=False)

    def counters(self) -> dict[str, dict[str, float]]:
        """Each service's `adapters_events_total`, summed by outcome, from its /metrics."""
        totals: dict[str, dict[str, float]] = {}
        for name, url in self.web.items():
            text = httpx.get(f"{url}/metrics", timeout=10).text
            outcomes: dict[str, float] = {}
            for line in text.splitlines():
                if line.startswith("adapters_events_total{"):
                    labels, _, value = line.rpartition(" ")
                    outcome = labels.split('outcome="', 1)[1].split('"', 1)[0]
                    outcomes[outcome] = outcomes.get(outcome, 0.0) + float(value)
            totals[name] = outcomes
        return totals

    # -- the operator's and trainer's tools ----------------------------------------------
    def adapterctl(
        self,
        *args: str,
        show: bool = True,
        ok: tuple[int, ...] = (0,),
        env: Mapping[str, str] | None = None,
    ) -> str:
        result = subprocess.run(
            [str(ADAPTERCTL), *args],
            env={**self.env, **self.kafka_env(cli_principal(args[0]), relay=False), **(env or {})},
            capture_output=True,
            text=True,
            timeout=300,
            start_new_session=True,
        )
        if result.returncode not in ok:
            raise SystemExit(f"adapterctl {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
        if show and result.stdout.strip():
            print("    " + result.stdout.strip().replace("\n", "\n    "), flush=True)
        return result.stdout

    def logcheck(self, *args: str) -> str:
        """The independent Java verifier (`verifiers/java`), built first if it is not."""
        built = subprocess.run([str(LOGCHECK_BUILD)], capture_output=True, text=True, timeout=900)
        if built.returncode != 0:
            raise SystemExit(f"verifiers/java/build.sh failed:\n{built.stdout}{built.stderr}")
        result = subprocess.run([str(LOGCHECK), *args], capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            raise SystemExit(f"logcheck {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
        print("    " + result.stdout.strip().replace("\n", "\n    "), flush=True)
        return result.stdout

    def stage(self, source: Path, name: str) -> Path:
        folder = VAR / "incoming" / name
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(source, folder)
        return folder

    # -- the log ---------------------------------------------------------------------------
    def admin_kafka(self) -> KafkaEndpoint:
        """The brokers as the admin of infra.env (topics; the demo's own reads of the log)."""
        return KafkaEndpoint(
            self.env["KAFKA_BOOTSTRAP_SERVERS"],
            self.env["KAFKA_SASL_USERNAME"],
            read_password(Path(self.env["KAFKA_SASL_PASSWORD_FILE"])),
        )

    def events(self, adapter: str) -> list[Any]:
        decoded = [
            self.codec.decode(r.value or b"") for r in read_topic(self.admin_kafka(), LIFECYCLE)
        ]
        return [e for e in decoded if e.envelope.adapter == adapter]

    def wait_for(
        self, adapter: str, until: Callable[[list[Any]], bool], what: str, timeout_s: float = 300
    ) -> list[Any]:
        """Poll the lifecycle log until `until` holds, showing each new event as it lands."""
        deadline = time.monotonic() + timeout_s
        with Progress(f"waiting for {what}") as progress:
            while time.monotonic() < deadline:
                events = self.events(adapter)
                for event in events[self.shown.get(adapter, 0) :]:
                    progress.say(f"+ {describe(event)}")
                self.shown[adapter] = len(events)
                if until(events):
                    return events
                self.check_alive()
                time.sleep(0.5)
        raise SystemExit(f"{adapter}: no {what} within {timeout_s}s; see var/demo/logs/")

    def wait_event(
        self, adapter: str, revision: str, kind: str, environment: str = "", count: int = 1
    ) -> list[Any]:
        def seen(events: list[Any]) -> bool:
            hits = [
                e
                for e in events
                if type(e).__name__ == kind
                and e.envelope.revision == revision
                and (not environment or e.envelope.environment == environment)
            ]
            return len(hits) >= count

        return self.wait_for(adapter, seen, f"{kind} {environment}".strip())

    # -- serving -----------------------------------------------------------------------------
    def ask(self, url: str, adapter: str, question: str, key: str = "") -> str:
        """The answer to `question` from the adapter by name (`key`: a gateway's client key)."""
        response = httpx.post(
            f"{url}/v1/chat/completions",
            json={
                "model": adapter,
                "max_tokens": 4,
                "messages": [{"role": "user", "content": question}],
            },
            headers={"x-request-id": uuid.uuid4().hex, **bearer(key)},
            timeout=30,
        )
        response.raise_for_status()
        return str(response.json()["choices"][0]["message"]["content"]).strip()

    @contextmanager
    def traffic(
        self, urls: list[str], adapter: str, question: str, key: str = ""
    ) -> Iterator[list[int]]:
        """Steady requests for the adapter over every URL (replicas, or a gateway with its
        client `key`) while the block runs."""
        statuses: list[int] = []
        stop = threading.Event()

        def send() -> None:
            with httpx.Client(timeout=30) as client:
                while not stop.is_set():
                    for url in urls:
                        response = client.post(
                            f"{url}/v1/chat/completions",
                            json={
                                "model": adapter,
                                "max_tokens": 2,
                                "messages": [{"role": "user", "content": question}],
                            },
                            headers={"x-request-id": uuid.uuid4().hex, **bearer(key)},
                        )
                        statuses.append(response.status_code)
                    stop.wait(0.05)

        thread = threading.Thread(target=send, daemon=True)
        thread.start()
        try:
            yield statuses
        finally:
            stop.set()
            thread.join(timeout=30)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


def describe(event: Any) -> str:
    """`RevisionValidated sha256:1a2b3c4d… [staging]`: one lifecycle event on one line."""
    envelope = event.envelope
    where = f" [{envelope.environment}]" if envelope.environment else ""
    return f"{type(event).__name__} {envelope.revision[:15]}...{where}"
