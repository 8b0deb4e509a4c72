"""Schemathesis against the approval service's own OpenAPI document, over its real HTTP
server: no operation answers a server error, and every answer (status, content type,
headers, body) is the one the document promises, for whatever the generator sends.

The same run from a shell, against a running service (the README's command):
    st run http://127.0.0.1:8480/openapi.json -H "Authorization: Bearer $TOKEN" --checks all
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.integration.test_approval_stack import (
    ApprovalStack,
    approval_fixture,  # noqa: F401 (gives this module its own stack)
)

schema = schemathesis.pytest.from_fixture("approval_schema")


@pytest.fixture(scope="module")
async def approval_schema(approval: ApprovalStack) -> schemathesis.BaseSchema:
    # A revision awaits a decision, so generated decisions can reach the deciding code too.
    seeded = await approval.seed(f"fuzzed-{approval.stack.token}")
    approval.wait_pending(seeded)
    return schemathesis.openapi.from_url(approval.base_url + "/openapi.json")


@schema.parametrize()
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_operation_answers_a_server_error_or_breaks_its_documented_schema(
    case: schemathesis.Case, approval: ApprovalStack
) -> None:
    headers = {"Authorization": f"Bearer {approval.token('bob', 'approver')}"}
    case.call_and_validate(base_url=approval.base_url, headers=headers)
