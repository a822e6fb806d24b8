"""The one place where settings become objects.

`build_services(settings)` resolves the run profile and returns a `Services`
object whose parts are built on first use: listing documents loads no model,
ingesting loads each model once.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any

from mmrag.asking import Asker
from mmrag.blobs import BlobStore, LocalBlobStore
from mmrag.catalog import Catalog
from mmrag.channels import Channel, Models, build_channels
from mmrag.documents import DocumentService, Submission
from mmrag.enrich import ImageEnricher
from mmrag.errors import ConfigError
from mmrag.jobs import JobBook
from mmrag.models.base import (
    Answerer,
    Captioner,
    ImageEmbedder,
    PageEmbedder,
    Reranker,
    TextEmbedder,
)
from mmrag.models.registry import (
    answerers,
    captioners,
    image_embedders,
    page_embedders,
    rerankers,
    text_embedders,
)
from mmrag.observe import IngestObserver
from mmrag.parsing.sandbox import start_sandbox
from mmrag.pipeline import Ingestor
from mmrag.pointing import PointBuilder
from mmrag.profiles import ResolvedProfile, resolve_profile
from mmrag.queue import JobQueue
from mmrag.renders import PageRenderer
from mmrag.retrieval import Retriever
from mmrag.settings import Settings
from mmrag.sparse import SparseEncoder
from mmrag.store import VectorStore, open_store
from mmrag.worker import JobMetrics, JobRunner, run_until_finished

logger = logging.getLogger(__name__)


class Services:
    """Everything a program needs, built lazily from one settings tree."""

    # Parts a caller may supply ready-made (tests pass fakes; an app may share a model).
    REPLACEABLE = frozenset(
        {
            "catalog",
            "store",
            "blobs",
            "text_embedder",
            "image_embedder",
            "page_embedder",
            "reranker",
            "captioner",
            "answerer",
            "channels",
        }
    )

    def __init__(self, profile: ResolvedProfile, **parts: object) -> None:
        self.profile = profile
        self.settings: Settings = profile.settings
        unknown = set(parts) - self.REPLACEABLE
        if unknown:
            raise TypeError(
                f"unknown parts {sorted(unknown)}; replaceable: {sorted(self.REPLACEABLE)}"
            )
        # A cached_property keeps its value in the instance dict: pre-filling it replaces it.
        self.__dict__.update(parts)

    @cached_property
    def catalog(self) -> Catalog:
        return Catalog.open(self.settings.catalog_url)

    @cached_property
    def jobs(self) -> JobBook:
        return JobBook(self.catalog.engine)

    @cached_property
    def blobs(self) -> BlobStore:
        return LocalBlobStore(self.settings.blob_root)

    @cached_property
    def queue(self) -> JobQueue:
        return JobQueue.open(self.settings)

    @cached_property
    def documents(self) -> DocumentService:
        return DocumentService(
            catalog=self.catalog,
            jobs=self.jobs,
            blobs=self.blobs,
            queue=self.queue,
            store=lambda: self.store,
        )

    @cached_property
    def renderer(self) -> PageRenderer:
        return PageRenderer(catalog=self.catalog, blobs=self.blobs, parsing=self.settings.parsing)

    def job_runner(self, metrics: JobMetrics | None = None) -> JobRunner:
        """Runs ingest jobs in this process, loading the models on the first job."""
        return JobRunner(
            jobs=self.jobs,
            ingestor=lambda: self.ingestor,
            settings=self.settings.queue,
            metrics=metrics,
        )

    @cached_property
    def store(self) -> VectorStore:
        return open_store(self.settings.store, embedded_root=self.settings.qdrant_path)

    @cached_property
    def text_embedder(self) -> TextEmbedder:
        embedder = text_embedders.create(self.settings.text_embedder.backend, self.settings)
        if embedder is None:
            raise ConfigError("text_embedder.backend cannot be disabled: text is always indexed")
        return embedder

    @cached_property
    def image_embedder(self) -> ImageEmbedder | None:
        return image_embedders.create(self.settings.image_embedder.backend, self.settings)

    @cached_property
    def page_embedder(self) -> PageEmbedder | None:
        return page_embedders.create(self.settings.page_embedder.backend, self.settings)

    @cached_property
    def reranker(self) -> Reranker | None:
        return rerankers.create(self.settings.reranker.backend, self.settings)

    @cached_property
    def channels(self) -> list[Channel]:
        """The registered channels whose models are on (loading those models)."""
        models = Models(
            text_embedder=self.text_embedder,
            sparse=self.sparse,
            image_embedder=self.image_embedder,
            page_embedder=self.page_embedder,
        )
        return build_channels(models, self.settings)

    @cached_property
    def captioner(self) -> Captioner | None:
        return captioners.create(self.settings.captioner.backend, self.settings)

    @cached_property
    def answerer(self) -> Answerer:
        answerer = answerers.create(self.settings.answerer.backend, self.settings)
        if answerer is None:
            raise ConfigError("answerer.backend cannot be disabled; use extractive for no model")
        return answerer

    @cached_property
    def retriever(self) -> Retriever:
        return Retriever(
            store=self.store,
            channels=self.channels,
            captioner=self.captioner,
            settings=self.settings.retrieval,
            reranker=self.reranker,
            rerank_candidates=self.settings.reranker.candidates,
            max_query_chars=self.settings.api.max_question_chars,
        )

    @cached_property
    def asker(self) -> Asker:
        return Asker(
            retriever=self.retriever,
            answerer=self.answerer,
            settings=self.settings.answerer,
            blobs=self.blobs,
        )

    @cached_property
    def sparse(self) -> SparseEncoder:
        return SparseEncoder(self.settings.sparse)

    @cached_property
    def ingestor(self) -> Ingestor:
        start_sandbox(self.settings.parsing)  # the parser server starts while models load
        captioner = self.captioner
        ocr_text = self.settings.captioner.ocr_text
        ocr_languages = self.settings.parsing.ocr_languages if ocr_text else None
        enricher = ImageEnricher(
            catalog=self.catalog, blobs=self.blobs, captioner=captioner, ocr_languages=ocr_languages
        )
        points = PointBuilder(channels=self.channels, text_embedder=self.text_embedder)
        return Ingestor(
            settings=self.settings,
            catalog=self.catalog,
            store=self.store,
            blobs=self.blobs,
            enricher=enricher,
            points=points,
        )

    def ingest_here(
        self,
        paths: Iterable[Path],
        *,
        tenant: str,
        force: bool = False,
        observer: IngestObserver | None = None,
        finished: Callable[[Submission], None] | None = None,
    ) -> list[Submission]:
        """Submit local files and run their jobs in this process, in order (the CLI when
        it owns the store, the eval harness, benchmarks). Each file ends indexed,
        unchanged or failed with its reason; one bad file never stops the others."""
        runner = self.job_runner()
        if self.queue.embedded:  # this process holds the data directory: no one else runs jobs
            self.jobs.requeue_expired(everything=True)
        results = []
        for submission in self.documents.submit_files(tenant, paths, force=force, dispatch=False):
            if submission.job is not None and not submission.job.state.terminal:
                job = run_until_finished(runner, submission.job.job_id, observer)
                record = self.catalog.get(tenant, submission.job.document_id)
                submission = replace(submission, job=job, record=record)
            if finished is not None:
                finished(submission)
            results.append(submission)
        return results

    def is_loaded(self, part: str) -> bool:
        """Whether a part (e.g. "answerer") has been built already."""
        return part in self.__dict__

    def close(self) -> None:
        if "queue" in self.__dict__:
            self.queue.close()
        if "store" in self.__dict__:
            self.store.close()
        if "catalog" in self.__dict__:
            self.catalog.close()

    def __enter__(self) -> Services:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def build_services(settings: Settings, **parts: object) -> Services:
    """Resolve the profile (logging what it decided) and wrap the settings; ``parts``
    replace components by name (see `Services.REPLACEABLE`)."""
    profile = resolve_profile(settings)
    for note in profile.notes:
        logger.info(note)
    return Services(profile, **parts)


SERVICE_FILE = "service.json"  # in the data directory while `mmrag serve` holds it


def announce_service(settings: Settings, url: str) -> None:
    """Tell other processes on this data directory (``mmrag ingest``) who holds it."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    info = {"pid": os.getpid(), "url": url}
    (settings.data_dir / SERVICE_FILE).write_text(json.dumps(info))


def withdraw_service(settings: Settings) -> None:
    (settings.data_dir / SERVICE_FILE).unlink(missing_ok=True)


def running_service(settings: Settings) -> dict[str, Any] | None:
    """The service holding this data directory (pid, url), if one announced itself and
    its process still lives."""
    try:
        info: dict[str, Any] = json.loads((settings.data_dir / SERVICE_FILE).read_text())
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info
