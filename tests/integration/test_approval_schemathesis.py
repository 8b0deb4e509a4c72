"""Schemathesis against the approval service's own OpenAPI document, over its real HTTP
server: no operation answers a server error, and every answer (status, content type,
headers, body) is the one the document promises, for valid and invalid requests alike.

The same, with its stateful phase, from a shell against a running service:
    st run http://127.0.0.1:8480/openapi.json -H "Authorization: Bearer $TOKEN" --checks all
"""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.integration.test_approval_stack import (
    ApprovalStack,
    Seeded,
    approval_fixture,  # noqa: F401 (gives this module its own stack)
)


@pytest.fixture(scope="module")
async def awaiting(approval: ApprovalStack) -> Seeded:
    seeded = await approval.seed(f"fuzzed-{approval.stack.token}")
    approval.wait_pending(seeded)
    return seeded


@pytest.fixture(scope="module")
def served_schema(approval: ApprovalStack) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(approval.base_url + "/openapi.json")


@pytest.mark.parametrize(
    "mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
)
def test_no_operation_answers_a_server_error_or_breaks_its_documented_schema(
    served_schema: schemathesis.BaseSchema,
    approval: ApprovalStack,
    awaiting: Seeded,
    mode: schemathesis.GenerationMode,
) -> None:
    """Each operation twice where it names a revision: on generated paths (mostly unknown
    revisions) and on the one revision that awaits a decision, so generated bodies reach
    the deciding code (and its refusals) instead of stopping at 404."""
    headers = {"Authorization": f"Bearer {approval.token('bob', 'approver')}"}
    known = {
        "environment": awaiting.environment,
        "adapter": awaiting.adapter,
        "revision": awaiting.revision,
    }
    failures, tested = [], []
    runs = [
        (operation, paths)
        for operation in (r.ok() for r in served_schema.get_all_operations())
        for paths in ([None, known] if "{revision}" in operation.path else [None])
    ]
    for operation, paths in runs:
        strategy = operation.as_strategy(generation_mode=mode, path_parameters=paths)

        @given(case=strategy)
        @settings(
            max_examples=40,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=approval.base_url, headers=headers)

        try:
            check()
        except Exception as exc:  # every operation is tried; all failures are reported
            failures.append(
                f"{operation.label} ({'awaiting' if paths else 'any'} revision):\n{exc}"
            )
        tested.append(operation.label)
    assert len(tested) == 9, tested
    assert not failures, "\n\n".join(failures)


def test_the_document_documents_every_error_as_a_problem(approval: ApprovalStack) -> None:
    document = httpx.get(approval.base_url + "/openapi.json").json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            errors = {s: r for s, r in operation["responses"].items() if s.startswith("4")}
            assert "401" in errors and "403" in errors, f"{method} {path}"
            for status, response in errors.items():
                assert list(response["content"]) == ["application/problem+json"], (path, status)
            assert operation["security"] == [{"HTTPBearer": []}], f"{method} {path}"
