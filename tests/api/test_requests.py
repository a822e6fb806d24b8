"""Request ids on every response and log line; CORS only for the configured origins."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.requests import RequestIdFilter, current
from mmrag.settings import Settings
from tests.api.test_api import error_of, make_client

ORIGIN = "https://chat.example.com"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("requests"),
        profile="offline",
        api={"cors_origins": [ORIGIN]},
    )
    with make_client(settings) as test_client:
        yield test_client


def test_every_response_names_its_request(client: TestClient) -> None:
    fresh = client.get("/healthz").headers["x-request-id"]
    assert len(fresh) == 32 and fresh != client.get("/healthz").headers["x-request-id"]
    given = client.get("/v1/documents/nope", headers={"X-Request-ID": "trace-42"})
    error_of(given, 404)
    assert given.headers["x-request-id"] == "trace-42"
    odd = client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert odd.headers["x-request-id"] != "bad id\twith spaces"


def test_log_lines_carry_the_request_id() -> None:
    record = logging.LogRecord("mmrag.api", logging.INFO, __file__, 1, "hello", None, None)
    token = current.set("trace-7")
    try:
        RequestIdFilter().filter(record)
    finally:
        current.reset(token)
    assert record.request == " [trace-7]"  # type: ignore[attr-defined]
    RequestIdFilter().filter(record)
    assert record.request == ""  # type: ignore[attr-defined]


def test_cors_answers_the_configured_origin_only(client: TestClient) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    allowed = client.options("/v1/ask", headers={"Origin": ORIGIN, **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    refused = client.options("/v1/ask", headers={"Origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in refused.headers
    simple = client.get("/healthz", headers={"Origin": ORIGIN})
    assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()


def test_without_cors_origins_no_browser_origin_is_allowed(tmp_path: Path) -> None:
    with make_client(Settings(data_dir=tmp_path, profile="offline")) as plain:
        response = plain.get("/healthz", headers={"Origin": ORIGIN})
        assert "access-control-allow-origin" not in response.headers
