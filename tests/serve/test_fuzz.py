"""Property-based fuzzing of the OpenAPI document against a real server (schemathesis).

Every generated request, valid or not, must get a response the document describes:
no 5xx, a documented status code and content type, a body matching its schema; valid
bodies must be accepted and invalid ones refused. The document bounds each numeric
feature by its schema range, so valid bodies hold values within it and invalid ones
probe it; `test_values_at_and_past_the_schema_ranges` probes the bounds on purpose,
under each TABML_OUT_OF_RANGE policy. Driven through hypothesis directly:
schemathesis' own pytest decorator does not run on pytest 9.

The V2 paths' `{name}` is the served model's name, not a drawn one: a drawn name only
ever gets 404, and the request body would never reach V2 decoding. The run's seed
(printed in its header, tests/conftest.py) replays what was generated:
`pytest --hypothesis-seed=N`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.serve.conftest import (
    ExportedModel,
    LiveServer,
    http,
    start_server,
    stop_server,
)

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
V2_INFER = "/v2/models/{name}/infer"
WRITES = ["/predict", V2_INFER]
# The document describes V2 requests by the protocol's schema, not this model's inputs:
# a body valid under it (no inputs, other tensor names, a shape that does not match its
# data) is still an invalid inference request for this model, answered with 400. V2
# inference on valid tensors is probed by test_values_at_and_past_the_schema_ranges.
V2_REFUSALS = frozenset({400})


@schemathesis.check
def valid_data_accepted(
    ctx: schemathesis.CheckContext, response: Any, case: schemathesis.Case
) -> bool | None:
    """Schema-valid bodies get 200: within the schema ranges the document gives, no
    value drives the model's probabilities past float32 (as 1e30 for a radius would)."""
    if case.meta is None or case.meta.generation.mode != GenerationMode.POSITIVE:
        return None
    refusals = ACCEPTED_REFUSALS | (V2_REFUSALS if case.operation.path == V2_INFER else set())
    assert response.status_code < 400 or response.status_code in refusals, response.text
    return True


@pytest.fixture(scope="module")
def api_schema(live_server: LiveServer) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{live_server.url}/openapi.json")


@pytest.fixture(scope="module")
def model_name(breast_cancer_model: ExportedModel) -> str:
    name: str = breast_cancer_model.metadata["model"]["name"]
    return name


def fuzz(
    api_schema: schemathesis.BaseSchema,
    method: str,
    path: str,
    mode: GenerationMode,
    examples: int,
    model_name: str,
) -> list[int]:
    """Fuzz one operation; the status codes the server answered, in order."""
    operation = api_schema[path][method]
    fixed = {"name": model_name} if "{name}" in path else None
    statuses: list[int] = []

    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed))
    @settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def check(case: schemathesis.Case) -> None:
        response = case.call_and_validate(
            excluded_checks=[positive_data_acceptance],
            additional_checks=[valid_data_accepted],
        )
        statuses.append(response.status_code)

    check()
    return statuses


def test_documented_paths_are_the_fuzzed_ones(api_schema: schemathesis.BaseSchema) -> None:
    assert sorted(api_schema.raw_schema["paths"]) == sorted(READS + WRITES)


@pytest.mark.parametrize("path", READS)
def test_reads_conform(api_schema: schemathesis.BaseSchema, path: str, model_name: str) -> None:
    statuses = fuzz(api_schema, "GET", path, GenerationMode.POSITIVE, 10, model_name)
    if "{name}" in path:  # the served model, found
        assert set(statuses) == {200}, statuses


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("path", WRITES)
def test_writes_conform(
    api_schema: schemathesis.BaseSchema, path: str, mode: GenerationMode, model_name: str
) -> None:
    statuses = fuzz(api_schema, "POST", path, mode, 100, model_name)
    # Every body reached decoding: not one request was turned away for naming a model
    # this server does not serve.
    assert 404 not in statuses, statuses
    if mode == GenerationMode.POSITIVE:
        accepted = {200} | (V2_REFUSALS if path == V2_INFER else set())
        assert set(statuses) <= accepted, statuses
    else:
        assert statuses.count(200) < len(statuses), statuses


# --- the schema ranges, probed on purpose ------------------------------------------------

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def test_the_document_bounds_each_feature_by_its_schema_range(
    api_schema: schemathesis.BaseSchema, breast_cancer_model: ExportedModel
) -> None:
    """What makes the generated valid values respect the ranges and invalid ones probe them."""
    properties = api_schema.raw_schema["components"]["schemas"]["Row"]["properties"]
    ranges = {
        feature["name"]: [feature["min"], feature["max"]]
        for feature in breast_cancer_model.metadata["features"]
    }
    assert {name: [item["minimum"], item["maximum"]] for name, item in properties.items()} == ranges


@pytest.fixture(scope="module")
def counting_server(
    breast_cancer_model: ExportedModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    server = start_server(
        breast_cancer_model.directory,
        tmp_path_factory.mktemp("counting") / "server.log",
        TABML_OUT_OF_RANGE="count",
    )
    try:
        yield server
    finally:
        stop_server(server.process)


def _outside(low: float, high: float) -> st.SearchStrategy[float]:
    """Just past either bound, or anywhere beyond it within float32."""
    below, above = math.nextafter(low, -math.inf), math.nextafter(high, math.inf)
    return st.one_of(
        st.sampled_from([below, above]),
        st.floats(-_FLOAT32_MAX, below),
        st.floats(above, _FLOAT32_MAX),
    )


@st.composite
def _probing_rows(
    draw: st.DrawFn, ranges: dict[str, tuple[float, float]]
) -> tuple[list[dict[str, float]], set[tuple[int, str]]]:
    """One to three rows of values on, within or past their bounds, and which are past."""
    rows: list[dict[str, float]] = []
    past: set[tuple[int, str]] = set()
    for index in range(draw(st.integers(1, 3))):
        probed = draw(st.sets(st.sampled_from(sorted(ranges)), max_size=3))
        row = {}
        for name, (low, high) in ranges.items():
            if name in probed:
                row[name] = draw(_outside(low, high))
                past.add((index, name))
            else:
                row[name] = draw(st.one_of(st.sampled_from([low, high]), st.floats(low, high)))
        rows.append(row)
    return rows, past


def _out_of_range_counts(url: str) -> dict[str, float]:
    text = http("GET", f"{url}/metrics")[1].decode()
    return {
        name: float(count)
        for name, count in re.findall(
            r'^tabml_out_of_range_values_total\{feature="([^"]+)"\} (\S+)$', text, re.MULTILINE
        )
    }


@pytest.mark.parametrize("policy", ["reject", "count"])
def test_values_at_and_past_the_schema_ranges(
    policy: str,
    live_server: LiveServer,
    counting_server: LiveServer,
    breast_cancer_model: ExportedModel,
) -> None:
    """/predict and V2 inference take a value on its bound and refuse one just past it
    (under "reject", naming each), or accept it (under "count"); /metrics counts every
    value past its bound either way."""
    url = (live_server if policy == "reject" else counting_server).url
    features = breast_cancer_model.metadata["features"]
    ranges = {feature["name"]: (feature["min"], feature["max"]) for feature in features}
    position = {name: index for index, name in enumerate(ranges)}

    @given(probe=_probing_rows(ranges))
    @settings(
        max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def check(probe: tuple[list[dict[str, float]], set[tuple[int, str]]]) -> None:
        rows, past = probe
        before = _out_of_range_counts(url)
        single = len(rows) == 1
        body = json.dumps(rows[0] if single else rows).encode()
        status, reply = http("POST", f"{url}/predict", body)
        v2 = {
            "inputs": [
                {
                    "name": name,
                    "shape": [len(rows)],
                    "datatype": "FP64",
                    "data": [r[name] for r in rows],
                }
                for name in ranges
            ]
        }
        v2_status, v2_reply = http(
            "POST", f"{url}/v2/models/tabml-classifier/infer", json.dumps(v2).encode()
        )
        if not past or policy == "count":
            for code, text in ((status, reply), (v2_status, v2_reply)):
                # Accepted values far past their bounds may overflow the probabilities.
                assert code == 200 or (
                    past
                    and all(
                        "probabilities are not finite" in detail["rule"]
                        for detail in json.loads(text)["details"]
                    )
                ), text
        else:
            assert (status, v2_status) == (422, 400), (reply, v2_reply)
            refused = {d["field"]: d["rule"] for d in json.loads(reply)["details"]}
            expected = {name if single else f"[{row}].{name}" for row, name in past}
            assert set(refused) == expected
            for row, name in past:
                low, high = ranges[name]
                assert refused[name if single else f"[{row}].{name}"].startswith(
                    f"must be within [{low}, {high}]"
                )
            v2_refused = {d["field"] for d in json.loads(v2_reply)["details"]}
            assert v2_refused == {f"inputs[{position[name]}].data[{row}]" for row, name in past}
        after = _out_of_range_counts(url)
        for name in ranges:
            expected_count = 2 * sum(1 for _, probed in past if probed == name)
            assert after[name] - before[name] == expected_count, name

    check()
