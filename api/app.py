"""The HTTP service: ``create_app(settings)``.

Models load once, in the lifespan; routes are plain ``def`` functions, so FastAPI runs
them (and their model inference) in its thread pool, off the event loop.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from api.deps import require_api_key
from api.errors import install_error_handlers
from api.metrics import Metrics
from api.routes import documents, health, query
from api.uploads import IngestQueue
from mmrag import __version__
from mmrag.services import Services, build_services
from mmrag.settings import Settings

logger = logging.getLogger("mmrag.api")


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    """The app; ``services`` may be given ready-made (tests pass fakes)."""
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        built = services or build_services(settings)
        for note in built.profile.notes:
            logger.info(note)
        built.ingestor  # noqa: B018 - load every model now, not on the first request
        built.asker  # noqa: B018
        queue = IngestQueue(services=built, metrics=metrics)
        queue.start()
        app.state.services, app.state.queue, app.state.metrics = built, queue, metrics
        try:
            yield
        finally:
            queue.stop()
            built.close()

    app = FastAPI(
        title="mmrag",
        version=__version__,
        lifespan=lifespan,
        description="Multimodal RAG: search and ask over documents and images, with citations.",
    )
    install_error_handlers(app)
    app.middleware("http")(metrics.middleware)
    authenticated = [Depends(require_api_key)]
    app.include_router(query.router, dependencies=authenticated)
    app.include_router(documents.router, dependencies=authenticated)
    app.include_router(health.router)
    return app
