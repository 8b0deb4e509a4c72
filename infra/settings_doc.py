"""`python -m infra.settings_doc [--write]`: the README's configuration table, generated from
every process's settings model; `--write` puts it between the README's settings markers.

It lives in infra/ because it names every service, and the kernel never imports one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from adapterctl.settings import CtlSettings
from services.activator.settings import ActivatorSettings
from services.approval.settings import ApprovalSettings
from services.archiver.settings import ArchiverSettings
from services.gateway.settings import GatewaySettings
from services.gpu_evaluator.settings import EvaluatorSettings
from services.ingest.settings import IngestSettings
from services.reference_server.settings import ServerSettings
from services.validator.settings import ValidatorSettings
from shared.settings import EnvModel, KernelSettings
from shared.settings_doc import settings_table, with_block

README = Path(__file__).resolve().parents[1] / "README.md"
COMMAND = "python -m infra.settings_doc --write"

PROCESSES: list[tuple[str, type[EnvModel]]] = [
    ("every service", KernelSettings),
    ("ingest", IngestSettings),
    ("validator", ValidatorSettings),
    ("gpu_evaluator", EvaluatorSettings),
    ("approval", ApprovalSettings),
    ("activator", ActivatorSettings),
    ("archiver", ArchiverSettings),
    ("reference_server", ServerSettings),
    ("gateway", GatewaySettings),
    ("adapterctl", CtlSettings),
]


def table() -> str:
    return settings_table(PROCESSES)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m infra.settings_doc", description=__doc__)
    parser.add_argument("--write", action="store_true", help="update README.md in place")
    if parser.parse_args().write:
        README.write_text(with_block(README.read_text(), table()))
    else:
        print(table())


if __name__ == "__main__":
    main()
