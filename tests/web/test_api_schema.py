"""Property-based API test: schemathesis generates requests from ``/api/openapi.json`` and
sends them, with a valid token, to the app; no request may cause a server error (5xx).
Bounded to a few examples per operation (well under a minute)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings

from printsrv.config import Settings
from printsrv.db import unit_of_work
from printsrv.models import Office
from printsrv.web.models import TokenScope
from printsrv.web.services import create_token
from tests.web.conftest import World

MAX_EXAMPLES = 12


@pytest.fixture
def token(settings: Settings, world: World) -> str:
    with unit_of_work(settings) as s:
        office = s.get_one(Office, world.offices["reg_a"])
        return create_token(s, "schemathesis", TokenScope.CLIENT, office, actor="test")


def test_no_server_errors(app: Flask, token: str) -> None:
    import schemathesis

    @schemathesis.serializer("application/zip")
    def _zip(_ctx: Any, value: Any) -> bytes:  # generated "binary" strings, sent as they are
        if isinstance(value, bytes):
            return value
        return str(value).encode("utf-8", "surrogatepass")

    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/api/v1/records/{request_id}", "/api/v1/stats",
                                              "/api/v1/records/search", "/api/v1/batches"}
    headers = {"Authorization": f"Bearer {token}"}
    seen: dict[str, set[int]] = {}

    for operation in operations:

        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            response = case.call(headers=headers)
            label = f"{case.method} {case.path}"
            seen.setdefault(label, set()).add(response.status_code)
            assert response.status_code < 500, (label, case.as_curl_command(), response.text)

        check()
    assert len(seen) == len(operations), seen
    # the token worked: the stats and the search answer 200
    assert 200 in seen["GET /api/v1/stats"] and 200 in seen["POST /api/v1/records/search"], seen
    # generated binary bodies come out empty; a non-empty body that is no batch is a 4xx too
    for body in (b"PK\x03\x04not really a zip", b"\x00" * 1024, b"{}"):
        resp = app.test_client().post("/api/v1/batches", data=body, headers={
            **headers, "Content-Type": "application/zip"})
        assert 400 <= resp.status_code < 500, (body[:10], resp.status_code, resp.data[:300])
