"""`python -m services.reference_server --port P`: serve the base and LoRA revisions.

The base folder comes from REFERENCE_BASE_FOLDER (default: the model kit's tiny base).
"""

from __future__ import annotations

import argparse

import uvicorn

from services.reference_server.app import ServerState, create_app
from services.reference_server.engine import Engine
from services.reference_server.faults import Faults
from services.reference_server.settings import ServerSettings
from shared.settings import exit_on_bad_settings
from shared.shutdown import DEFAULT_GRACE_S


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.reference_server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    with exit_on_bad_settings("reference_server"):
        settings = ServerSettings.from_env()
    state = ServerState(
        settings=settings,
        engine=Engine(
            settings.base_folder,
            threads=settings.torch_threads,
            max_resident=settings.max_resident_loras,
        ),
        faults=Faults.from_json(settings.faults) if settings.faults_enabled else Faults(),
    )
    uvicorn.run(  # a generation still running at SIGTERM is cut after the services' grace
        create_app(state),
        host=args.host,
        port=args.port,
        log_level="warning",
        timeout_graceful_shutdown=int(DEFAULT_GRACE_S),
    )


main()
