"""Property-based fuzzing of the OpenAPI document against a real server (schemathesis).

Every generated request, valid or not, must get a response the document describes:
no 5xx, a documented status code and content type, a body matching its schema; valid
bodies must be accepted and invalid ones refused. Driven through hypothesis directly:
schemathesis' own pytest decorator does not run on pytest 9.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.serve.conftest import LiveServer

pytestmark = pytest.mark.slow

READS = [
    "/health",
    "/ready",
    "/metadata",
    "/metrics",
    "/model-card",
    "/v2",
    "/v2/health/live",
    "/v2/health/ready",
    "/v2/models/{name}",
    "/v2/models/{name}/ready",
]
# What schemathesis' own positive_data_acceptance check lets a valid request get.
ACCEPTED_REFUSALS = frozenset({401, 403, 404, 409, 429})
WRITES = ["/predict", "/v2/models/{name}/infer"]


@schemathesis.check
def valid_data_accepted_unless_output_overflows(
    ctx: schemathesis.CheckContext, response: Any, case: schemathesis.Case
) -> bool | None:
    """Schema-valid bodies get 200, except rows whose probabilities overflow float32.

    The schema cannot say "the model's output is finite": values within float32 but
    far outside the training range (1e30 for a radius) drive a linear model's logits
    to infinity. The server answers those with a 4xx naming the row, checked here.
    """
    if case.meta is None or case.meta.generation.mode != GenerationMode.POSITIVE:
        return None
    if response.status_code < 400 or response.status_code in ACCEPTED_REFUSALS:
        return True
    body = response.json()
    rules = [detail["rule"] for detail in body.get("details", [])]
    assert response.status_code in (400, 422), response.text
    assert rules and all("probabilities are not finite" in rule for rule in rules), rules
    return True


@pytest.fixture(scope="module")
def api_schema(live_server: LiveServer) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{live_server.url}/openapi.json")


def fuzz(
    api_schema: schemathesis.BaseSchema, method: str, path: str, mode: GenerationMode, examples: int
) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(
            excluded_checks=[positive_data_acceptance],
            additional_checks=[valid_data_accepted_unless_output_overflows],
        )

    check()


def test_documented_paths_are_the_fuzzed_ones(api_schema: schemathesis.BaseSchema) -> None:
    assert sorted(api_schema.raw_schema["paths"]) == sorted(READS + WRITES)


@pytest.mark.parametrize("path", READS)
def test_reads_conform(api_schema: schemathesis.BaseSchema, path: str) -> None:
    fuzz(api_schema, "GET", path, GenerationMode.POSITIVE, 10)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("path", WRITES)
def test_writes_conform(
    api_schema: schemathesis.BaseSchema, path: str, mode: GenerationMode
) -> None:
    fuzz(api_schema, "POST", path, mode, 100)
