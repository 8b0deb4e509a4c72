"""`python -m services.archiver`: retention sweeps and archiving until SIGTERM."""

from services.archiver.main import run

run()
