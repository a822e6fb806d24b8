"""The service listens while its models load: ready when they are, requests wait."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api import startup
from api.app import create_app
from mmrag.errors import ModelLoadError
from mmrag.services import Services
from mmrag.settings import Settings
from tests.api.test_api import error_of


def gated_load(monkeypatch: pytest.MonkeyPatch, gate: threading.Event) -> None:
    load = startup.Startup._load

    def slow(self: startup.Startup) -> None:
        gate.wait(60)
        load(self)

    monkeypatch.setattr(startup.Startup, "_load", slow)


def test_ready_once_the_models_load_and_requests_wait_for_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = threading.Event()
    gated_load(monkeypatch, gate)
    with TestClient(create_app(Settings(data_dir=tmp_path, profile="offline"))) as client:
        assert client.get("/healthz").status_code == 200
        loading = client.get("/readyz")
        assert loading.status_code == 503 and loading.json()["checks"]["models"] == "loading"
        assert client.get("/").status_code == 200  # the web page meanwhile
        answered: list[int] = []
        waiting = threading.Thread(
            target=lambda: answered.append(client.get("/v1/documents").status_code)
        )
        waiting.start()
        waiting.join(timeout=0.5)
        assert waiting.is_alive() and not answered  # it waits for the models
        gate.set()
        waiting.join(timeout=120)
        assert answered == [200]
        assert client.get("/readyz").json() == {
            "status": "ready",
            "checks": {"store": "ok", "models": "ok"},
        }


def test_a_request_waiting_too_long_is_told_to_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = threading.Event()
    gated_load(monkeypatch, gate)
    monkeypatch.setattr(startup, "WAIT_S", 0.1)
    with TestClient(create_app(Settings(data_dir=tmp_path, profile="offline"))) as client:
        response = client.get("/v1/documents")
        assert error_of(response, 503)["type"] == "loading"
        assert response.headers["retry-after"] == "5"
        gate.set()


def test_models_that_cannot_load_are_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Services) -> None:
        raise ModelLoadError(role="answerer", model="m", reason="weights missing", fix="fix it")

    monkeypatch.setattr(Services, "asker", property(broken))
    with TestClient(create_app(Settings(data_dir=tmp_path, profile="offline"))) as client:
        ready = client.get("/readyz")
        while ready.json()["checks"]["models"] == "loading":
            ready = client.get("/readyz")
        assert ready.status_code == 503 and "weights missing" in ready.json()["checks"]["models"]
        assert "weights missing" in error_of(client.get("/v1/documents"), 503)["message"]
