"""Dependencies: the services built in the lifespan, and the caller's scope.

A bearer key maps to a tenant and a role (``api.keys``); without configured keys
every caller acts as ``ingest.tenant`` with every right. Routes take the scope they
need (`ReadScope`, `WriteScope`, `AdminScope`) and pass its tenant down. The API's
documentation takes any key (`DocsAccess`), metrics an admin key (`MetricsAccess`),
unless ``api.open_docs`` / ``api.open_metrics`` open them. A signed evidence URL
(`api.signing`) acts as a read key for the one GET it was signed for.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.metrics import Metrics
from api.signing import signed_tenant
from mmrag.services import Services
from mmrag.settings import ApiSettings
from mmrag.tenancy import Role, Scope

_bearer = HTTPBearer(auto_error=False, description="an API key from api.keys")


def get_services(request: Request) -> Services:
    """The services, once their models have loaded (a request waits for them)."""
    request.app.state.startup.wait()
    services: Services = request.app.state.services
    return services


def get_services_now(request: Request) -> Services:
    """The services, loaded or not (for readiness checks)."""
    services: Services = request.app.state.services
    return services


def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


def caller_scope(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Scope:
    """The scope of the key presented; 401 when keys are configured and it is not one."""
    settings = request.app.state.services.settings
    if not settings.api.keys:
        return Scope(tenant=settings.ingest.tenant, role=Role.ADMIN)
    given = (credentials.credentials if credentials else "").encode()
    for entry in settings.api.keys:
        if secrets.compare_digest(given, entry.key.get_secret_value().encode()):
            return Scope(tenant=entry.tenant, role=entry.role)
    if not given and (tenant := signed_tenant(request, settings.api)) is not None:
        return Scope(tenant=tenant, role=Role.READ)  # a signed evidence URL (api/signing.py)
    message = "invalid API key" if given else "missing API key"
    raise HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


def require(role: Role) -> Callable[..., Scope]:
    """A dependency giving the caller's scope, refusing a key whose role is too low."""

    def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Scope:
        scope = caller_scope(request, credentials)
        if not scope.role.allows(role):
            raise HTTPException(403, f"this key's role ({scope.role}) cannot do that ({role})")
        return scope

    return dependency


def require_unless(role: Role, opened: Callable[[ApiSettings], bool]) -> Callable[..., None]:
    """A dependency refusing a caller below ``role``, unless a setting opens the route."""
    check = require(role)

    def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> None:
        if not opened(request.app.state.services.settings.api):
            check(request, credentials)

    return dependency


ServicesDep = Annotated[Services, Depends(get_services)]
ServicesNowDep = Annotated[Services, Depends(get_services_now)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
ReadScope = Annotated[Scope, Depends(require(Role.READ))]
WriteScope = Annotated[Scope, Depends(require(Role.WRITE))]
AdminScope = Annotated[Scope, Depends(require(Role.ADMIN))]
DocsAccess = Depends(require_unless(Role.READ, lambda api: api.open_docs))
MetricsAccess = Depends(require_unless(Role.ADMIN, lambda api: api.open_metrics))
