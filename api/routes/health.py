"""Liveness and readiness (no authentication), Prometheus metrics (an admin key, unless
``api.open_metrics``)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import MetricsAccess, MetricsDep, ServicesNowDep
from api.openapi import error_responses
from api.schemas import Readiness
from mmrag.errors import MmragError

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "a part is not ready (see checks)"}},
)
def readyz(services: ServicesNowDep, request: Request) -> JSONResponse:
    """The store answers and the models are loaded (``models``: ``loading`` meanwhile)."""
    checks: dict[str, str] = {}
    try:
        services.store.count()
        checks["store"] = "ok"
    except MmragError as exc:
        checks["store"] = str(exc)
    checks["models"] = request.app.state.startup.state
    ready = all(value == "ok" for value in checks.values())
    body = Readiness(status="ready" if ready else "not ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    dependencies=[MetricsAccess],
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        **error_responses(401, 403),
    },
)
def metrics(registry: MetricsDep) -> Response:
    """Prometheus metrics (every tenant's figures: an admin key when keys are set)."""
    return Response(generate_latest(registry.registry), media_type=CONTENT_TYPE_LATEST)
