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
from mmrag import __version__
from mmrag.queue import Consumer
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
        built.asker  # noqa: B018 - load the query models now, not on the first request
        consumer = _start_consumer(built, metrics) if built.queue.embedded else None
        metrics.watch_queue(built)
        app.state.services, app.state.metrics = built, metrics
        api = built.settings.api
        announce_service(built.settings, f"http://{api.host}:{api.port}")
        try:
            yield
        finally:
            withdraw_service(built.settings)
            if consumer is not None:
                consumer.stop()
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


def _start_consumer(services: Services, metrics: Metrics) -> Consumer:
    """Run ingest jobs in this process: it holds the embedded store, so any job still
    marked running was abandoned by a previous process and is recovered at once."""
    services.ingestor  # noqa: B018 - open the store and load the ingest models now
    runner = services.job_runner(metrics.jobs)
    consumer = services.queue.consumer(runner, workers=services.settings.queue.workers)
    consumer.start(jobs=services.jobs, owner_of_everything=True)
    return consumer
