"""`python -m services.ingest`: consume adapters.trained.v1 until SIGTERM."""

from services.ingest.main import run

run()
