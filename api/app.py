"""The HTTP service: ``create_app(settings)``.

Models load once, in the lifespan; routes are plain ``def`` functions, so FastAPI runs
them (and their model inference) in its thread pool, off the event loop. On the
embedded footprint (no ``queue.url``) the service also runs the ingest jobs, since it
holds the embedded store; with a queue server, ``mmrag worker`` processes do.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api import openapi
from api.errors import install_error_handlers
from api.limits import CloseUnreadBody, ValidURLMiddleware
from api.metrics import Metrics
from api.requests import HEADER, RequestIdMiddleware
from api.routes import chat, documents, health, pages, query
from api.routes.web import install_web_page
from api.startup import Startup
from mmrag import __version__
from mmrag.services import Services, announce_service, build_services, withdraw_service
from mmrag.settings import Settings

logger = logging.getLogger("mmrag.api")


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    """The app; ``services`` may be given ready-made (tests pass fakes)."""
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        built = services or build_services(settings)
        for note in built.profile.notes:  # each a fall-back: say it where operators look
            logger.warning("profile: %s", note)
        startup = Startup(built, metrics.jobs)
        metrics.watch_queue(built)
        app.state.services, app.state.metrics, app.state.startup = built, metrics, startup
        startup.start()  # the models load while the service already answers
        api = built.settings.api
        announce_service(built.settings, f"http://{api.host}:{api.port}")
        try:
            yield
        finally:
            withdraw_service(built.settings)
            startup.stop()
            built.close()

    app = FastAPI(
        title="mmrag",
        version=__version__,
        lifespan=lifespan,
        description="Multimodal RAG: search and ask over documents and images, with citations.",
        # Served by api.openapi instead, behind a key when keys are set.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.openapi = partial(openapi.openapi_schema, app)  # type: ignore[method-assign]
    install_error_handlers(app)
    app.add_middleware(ValidURLMiddleware)
    app.middleware("http")(metrics.middleware)
    if settings.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", HEADER],
            expose_headers=[HEADER, "X-Page-Width", "X-Page-Height"],
            max_age=600,
        )
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(CloseUnreadBody)  # outermost: it sees every answer
    app.include_router(query.router)
    app.include_router(documents.router)
    app.include_router(pages.router)
    app.include_router(chat.router)
    app.include_router(health.router)
    app.include_router(openapi.router)
    openapi.install_docs_assets(app)
    install_web_page(app)
    return app
