"""`python -m services.gpu_evaluator`: evaluate validated revisions until SIGTERM."""

from services.gpu_evaluator.main import run

run()
