"""`python -m services.activator`: roll approved revisions out until SIGTERM."""

from services.activator.main import run

run()
