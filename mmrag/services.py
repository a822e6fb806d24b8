"""The one place where settings become objects.

`build_services(settings)` resolves the run profile and returns a `Services`
object whose parts are built on first use: listing documents loads no model,
ingesting loads each model once.
"""

from __future__ import annotations

import logging
from functools import cached_property

from mmrag.asking import Asker
from mmrag.catalog import Catalog
from mmrag.enrich import ImageEnricher
from mmrag.errors import ConfigError
from mmrag.models.base import Answerer, Captioner, ImageEmbedder, TextEmbedder
from mmrag.models.registry import answerers, captioners, image_embedders, text_embedders
from mmrag.pipeline import Ingestor, delete_document
from mmrag.pointing import PointBuilder
from mmrag.profiles import ResolvedProfile, resolve_profile
from mmrag.retrieval import Retriever
from mmrag.settings import Settings
from mmrag.sparse import SparseEncoder
from mmrag.store import VectorStore, open_store
from mmrag.types import DocumentRecord

logger = logging.getLogger(__name__)


class Services:
    """Everything a program needs, built lazily from one settings tree."""

    # Parts a caller may supply ready-made (tests pass fakes; an app may share a model).
    REPLACEABLE = frozenset(
        {"catalog", "store", "text_embedder", "image_embedder", "captioner", "answerer"}
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
        return Catalog(self.settings.catalog_path)

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
            text_embedder=self.text_embedder,
            image_embedder=self.image_embedder,
            sparse=self.sparse,
            captioner=self.captioner,
            settings=self.settings.retrieval,
            tenant=self.settings.ingest.tenant,
            max_query_chars=self.settings.api.max_question_chars,
        )

    @cached_property
    def asker(self) -> Asker:
        return Asker(
            retriever=self.retriever,
            answerer=self.answerer,
            settings=self.settings.answerer,
            data_dir=self.settings.data_dir,
        )

    @cached_property
    def sparse(self) -> SparseEncoder:
        return SparseEncoder()

    @cached_property
    def ingestor(self) -> Ingestor:
        captioner = self.captioner
        ocr_text = self.settings.captioner.ocr_text
        ocr_languages = self.settings.parsing.ocr_languages if ocr_text else None
        enricher = ImageEnricher(
            catalog=self.catalog, captioner=captioner, ocr_languages=ocr_languages
        )
        points = PointBuilder(
            text_embedder=self.text_embedder, image_embedder=self.image_embedder, sparse=self.sparse
        )
        return Ingestor(
            settings=self.settings,
            catalog=self.catalog,
            store=self.store,
            enricher=enricher,
            points=points,
        )

    def is_loaded(self, part: str) -> bool:
        """Whether a part (e.g. "answerer") has been built already."""
        return part in self.__dict__

    def delete_document(self, document_id: str) -> DocumentRecord:
        """Remove a document's points, images and record (loads no model)."""
        return delete_document(
            settings=self.settings, catalog=self.catalog, store=self.store, document_id=document_id
        )

    def close(self) -> None:
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
