"""`python -m services.validator`: validate registered revisions until SIGTERM."""

from services.validator.main import run

run()
