"""One private pipeline for the bad-input corpus's submissions and CLI entries: its own
database and topics, the tiny base registered, the staging environment set, ingest (with
the corpus's bounds) and the validator running as their own processes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import Infra
from tests.corpus.adapters import write_base_model
from tests.corpus.bad_inputs.submissions import ingest_env
from tests.stack import Stack

BASE_ID, BASE_REVISION = "tiny-llama", "sha256:" + "b" * 64
ENVIRONMENT = "staging"


@pytest.fixture(scope="package")
async def pipeline(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    stack = Stack(infra, tmp_path_factory.mktemp("bad-inputs"))
    await stack.create()
    write_base_model(stack.root / "base")
    stack.adapterctl("base", "register", str(stack.root / "base"), "--id", BASE_ID,
                     "--revision", BASE_REVISION, "--tokenizer-revision", "tok-1")  # fmt: skip
    stack.adapterctl("env", "set", ENVIRONMENT, "--base", f"{BASE_ID}@{BASE_REVISION}",
                     "--max-lora-rank", "16")  # fmt: skip
    stack.start("ingest", **ingest_env())
    stack.start("validator")
    yield stack
    stack.stop()
