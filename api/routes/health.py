"""Liveness and readiness (no authentication), Prometheus metrics (an admin key)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import AdminScope, MetricsDep, ServicesDep
from mmrag.errors import MmragError

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(services: ServicesDep) -> JSONResponse:
    """The store answers and the models are loaded."""
    checks: dict[str, str] = {}
    try:
        services.store.count()
        checks["store"] = "ok"
    except MmragError as exc:
        checks["store"] = str(exc)
    loaded = all(services.is_loaded(part) for part in ("text_embedder", "answerer"))
    checks["models"] = "ok" if loaded else "loading"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics")
def metrics(registry: MetricsDep, scope: AdminScope) -> Response:
    """Prometheus metrics (every tenant's figures: an admin key when keys are set)."""
    return Response(generate_latest(registry.registry), media_type=CONTENT_TYPE_LATEST)
