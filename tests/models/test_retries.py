"""Requests to model servers are retried when the server is unreachable or busy."""

from __future__ import annotations

import httpx
import pytest

from mmrag.models.retries import RetryingTransport


def flaky(failures: list[httpx.Response | Exception]) -> tuple[httpx.Client, list[int]]:
    calls: list[int] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if failures:
            failure = failures.pop(0)
            if isinstance(failure, Exception):
                raise failure
            return failure
        return httpx.Response(200, json={"ok": True})

    transport = RetryingTransport(httpx.MockTransport(handle), retries=3, base_s=0.001)
    return httpx.Client(transport=transport, base_url="http://vlm.test"), calls


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(503),
        httpx.Response(429, headers={"retry-after": "0"}),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
    ],
    ids=["503", "429", "connect", "timeout"],
)
def test_transient_failures_are_retried(failure: httpx.Response | Exception) -> None:
    client, calls = flaky([failure, failure])
    assert client.get("/models").json() == {"ok": True} and len(calls) == 3


def test_a_server_still_busy_after_the_retries_answers_the_caller() -> None:
    client, calls = flaky([httpx.Response(503) for _ in range(5)])
    assert client.get("/models").status_code == 503 and len(calls) == 4


def test_an_unreachable_server_fails_after_the_retries() -> None:
    client, calls = flaky([httpx.ConnectError("refused") for _ in range(5)])
    with pytest.raises(httpx.ConnectError):
        client.get("/models")
    assert len(calls) == 4


def test_a_client_error_is_not_retried() -> None:
    client, calls = flaky([httpx.Response(400)])
    assert client.get("/models").status_code == 400 and len(calls) == 1
