"""Dependencies: the services built in the lifespan, and API-key authentication."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.metrics import Metrics
from api.uploads import IngestQueue
from mmrag.services import Services

_bearer = HTTPBearer(auto_error=False, description="an API key from api.api_keys")


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def get_queue(request: Request) -> IngestQueue:
    queue: IngestQueue = request.app.state.queue
    return queue


def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


def require_api_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Bearer authentication when api.api_keys is set; open otherwise."""
    keys = [key.get_secret_value() for key in request.app.state.services.settings.api.api_keys]
    if not keys:
        return
    given = credentials.credentials if credentials else ""
    if not any(secrets.compare_digest(given.encode(), key.encode()) for key in keys):
        message = "missing API key" if not given else "invalid API key"
        raise HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


ServicesDep = Annotated[Services, Depends(get_services)]
QueueDep = Annotated[IngestQueue, Depends(get_queue)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
