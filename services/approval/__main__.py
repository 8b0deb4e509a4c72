"""`python -m services.approval`: the approval API and page, and its lifecycle read model."""

from services.approval.main import run

run()
