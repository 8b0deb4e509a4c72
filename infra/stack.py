"""`make stack-up` / `make stack-down`: the demo's stack, left running for your own adapters.

    python infra/stack.py up       # Kafka, PostgreSQL, every service, two replicas, traffic
    python infra/stack.py status   # what runs, where, and the file with the credentials
    python infra/stack.py train OUT [--seed N] [--kind good|shuffled|noop]
    python infra/stack.py down     # unregister the replicas, stop every service

`up` does what `make demo` does before its first submission (the tiny model kit, the base
registered, staging and production, the five principals and their tokens, every service as
its own process on the usual ports where they are free) and then leaves it all running, with
simulated users (`infra/traffic.py`) sending requests to whatever production routes. It
writes `var/stack/env.sh` (mode 0600: it holds bearer tokens) for `source`. `train` trains a
PEFT LoRA folder on the stack's base, as a training cluster would. `down` leaves Kafka and
PostgreSQL running (`make infra-down` stops them). `make demo` stops a running stack first.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infra.demo import Journey
from infra.demo_stack import ADAPTERCTL, PIDS, REPO, VAR, DemoStack
from shared.kafka.acl import OPERATOR

STACK = VAR / "stack"
ENV_FILE = STACK / "env.sh"
TOKENIZER_REVISION = "tok-1"
# What the stack's principals are called in env.sh, and who holds each token.
TOKENS = {
    "TRAINER_TOKEN": "trainer-alice",
    "APPROVER_TOKEN": "carol",
    "SECOND_APPROVER_TOKEN": "dave",
    "OPERATOR_TOKEN": "olive",
    "ADMIN_TOKEN": "ada",
}
# The settings adapterctl reads, copied from the running stack into env.sh.
CLI_SETTINGS = (
    "KAFKA_BOOTSTRAP_SERVERS",
    "DATABASE_URL",
    "KAFKA_CREDENTIALS_DIR",
    "ARTIFACT_ROOT",
    "DECISION_PUBLIC_KEYS",
    "LOG_PUBLIC_KEYS",
    "LOG_CHECKPOINTS",
    "COLD_STORAGE_URL",
    "INGEST_URL",
    "ACTIVATOR_URL",
    "ARCHIVER_URL",
)


def env_lines(values: dict[str, str]) -> list[str]:
    """`export KEY=value` lines, each value shell-quoted."""
    return [f"export {key}={shlex.quote(value)}" for key, value in values.items()]


def read_env_file(path: Path) -> dict[str, str]:
    """What `env_lines` wrote, read back (no shell involved)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            key, _, quoted = line.removeprefix("export ").partition("=")
            parts = shlex.split(quoted)
            values[key] = parts[0] if parts else ""
    return values


def stack_values(journey: Journey) -> dict[str, str]:
    s = journey.s
    values = {key: s.env[key] for key in CLI_SETTINGS if key in s.env}
    values |= s.kafka_env(OPERATOR, relay=False)  # the operator's Kafka user reads the log
    values |= {
        "APPROVAL_URL": journey.approval,
        "GATEWAY_URL": journey.gateway,
        "GATEWAY_CLIENT_KEY": journey.client_key,
        "PROMETHEUS_URL": s.env["PROMETHEUS_URL"],
        "PROMETHEUS_SCRAPE_FILE": str(journey.scrape_file or ""),
        "BASE": journey.base,
        "BASE_FOLDER": str(journey.kit.base),
        "TOKENIZER_REVISION": TOKENIZER_REVISION,
        "DROP": s.env["INGEST_ALLOWED_ROOTS"],
    }
    values |= {variable: journey.tokens[name] for variable, name in TOKENS.items()}
    return values


def write_env_file(values: dict[str, str]) -> None:
    STACK.mkdir(parents=True, exist_ok=True)
    ENV_FILE.unlink(missing_ok=True)
    descriptor = os.open(ENV_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    header = [
        "# Written by `make stack-up`; `source` it. Mode 0600: it holds bearer tokens.",
        f'export PATH={shlex.quote(str(ADAPTERCTL.parent))}:"$PATH"',
    ]
    with os.fdopen(descriptor, "w") as out:
        out.write("\n".join([*header, *env_lines(values)]) + "\n")


def up() -> int:
    journey = Journey(stack_ports=True)
    try:
        journey.setup()
        journey.start_services()
        s = journey.s
        t = s.step("Simulated users: steady requests for whatever production routes")
        s.start(
            "traffic",
            "infra.traffic",
            ACTIVATOR_URL=s.env["ACTIVATOR_URL"],
            GATEWAY_URL=journey.gateway,
            GATEWAY_CLIENT_KEY=journey.client_key,
        )
        s.done(t, "(logs in var/demo/logs/traffic.log)")
        values = stack_values(journey)
        Path(values["DROP"]).mkdir(parents=True, exist_ok=True)
        write_env_file(values)
    except BaseException:
        journey.stop()
        raise
    print(summary(values))
    return 0


def summary(values: dict[str, str]) -> str:
    env = ENV_FILE.relative_to(REPO)
    return f"""
The stack is up and stays up.
  approval page   {values["APPROVAL_URL"]}/  (log in: $APPROVER_TOKEN, $SECOND_APPROVER_TOKEN)
  ingest          {values["INGEST_URL"]}    (submissions, as $TRAINER_TOKEN)
  activator       {values["ACTIVATOR_URL"]}    (rollouts, routing; commands as $OPERATOR_TOKEN)
  archiver        {values["ARCHIVER_URL"]}    (retention and holds, as $ADMIN_TOKEN)
  gateway         {values["GATEWAY_URL"]}    (production's OpenAI API: model=<adapter name>,
                  api_key=$GATEWAY_CLIENT_KEY; GET /v1/routing, /metrics)
  prometheus      {values["PROMETHEUS_URL"]}   (scrapes the gateway; canary analysis reads it)
  base model      $BASE = {values["BASE"]}
                  $BASE_FOLDER = {values["BASE_FOLDER"]}
  drop folder     $DROP = {values["DROP"]}   (ingest reads submissions only from here)
  suites          infra/suites/ (golden prompts), infra/suites/load/ (load profiles)
  environments    staging (1 approval, straight to active), production (2 approvals,
                  approver and operator separate, canary 20% -> 50% -> 100%)
  traffic         infra/traffic.py sends ~4 requests/s through the gateway, by adapter name
  logs            var/demo/logs/
Credentials and URLs: source {env}
Stop the services: make stack-down   (Kafka and PostgreSQL: make infra-down)
README, "Try your own adapter", walks a trained PEFT folder to a canaried revision."""


def down() -> int:
    if ENV_FILE.is_file():
        values = read_env_file(ENV_FILE)
        cleared = subprocess.run(
            [str(ADAPTERCTL), "env", "replicas", "production", "--clear"],
            env={**os.environ, **values, "ADAPTERCTL_TOKEN": values.get("OPERATOR_TOKEN", "")},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if cleared.returncode == 0:
            print("replicas unregistered from production")
        else:
            print(f"could not unregister the replicas:\n{cleared.stdout}{cleared.stderr}")
        if values.get("PROMETHEUS_SCRAPE_FILE"):  # Prometheus stops scraping the stack
            Path(values["PROMETHEUS_SCRAPE_FILE"]).unlink(missing_ok=True)
        ENV_FILE.unlink()
    stopped = DemoStack().stop_leftovers()
    print("\n".join(f"stopped {name}" for name in stopped) or "no service of the stack was running")
    print("Kafka and PostgreSQL are still running. Stop them with: make infra-down")
    return 0


def status() -> int:
    if not PIDS.is_file():
        print("the stack is not running (make stack-up)")
        return 1
    down_count = 0
    for line in PIDS.read_text().splitlines():
        pid, _, name = line.partition(" ")
        alive = Path(f"/proc/{pid}").exists()
        down_count += not alive
        print(f"{name:<14} pid {pid:<8} {'running' if alive else 'STOPPED'}")
    if ENV_FILE.is_file():
        print(f"credentials and URLs: source {ENV_FILE.relative_to(REPO)}")
    return 1 if down_count else 0


def train(out: Path, seed: int, kind: str) -> int:
    from shared.modelkit.adapters import train_adapter
    from shared.modelkit.cache import kit

    info = train_adapter(kit().base, out, kind=kind, seed=seed)
    print(f"trained a {kind} LoRA (seed {seed}) on the stack's base into {out}")
    print(f"  files: {', '.join(sorted(p.name for p in out.iterdir()))}")
    print(f"  revision (digest of its files): {info.revision}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="infra/stack.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start everything and leave it running")
    commands.add_parser("down", help="unregister the replicas and stop every service")
    commands.add_parser("status", help="which of the stack's processes run")
    training = commands.add_parser("train", help="train a PEFT LoRA folder on the stack's base")
    training.add_argument("out", type=Path, help="the folder to write (must not exist)")
    training.add_argument("--seed", type=int, default=7, help="default: %(default)s")
    training.add_argument(
        "--kind",
        default="good",
        choices=("good", "shuffled", "noop"),
        help="good: true facts; shuffled: corrupted labels, which the evaluator refuses; "
        "noop: changes nothing (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.command == "up":
        return up()
    if args.command == "down":
        return down()
    if args.command == "status":
        return status()
    if args.out.exists():
        parser.error(f"{args.out} exists: give a new folder")
    return train(args.out, args.seed, args.kind)


if __name__ == "__main__":
    raise SystemExit(main())
