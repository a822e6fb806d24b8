"""Chunks and image assets to store points: embeddings per channel plus payload."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image

from mmrag.models.base import ImageEmbedder, TextEmbedder
from mmrag.sparse import SparseEncoder
from mmrag.store import IMAGE_VECTOR, SPARSE_VECTOR, TEXT_VECTOR, CollectionSchema, point_id
from mmrag.types import Chunk, ImageAsset, StoredPoint


@dataclass(frozen=True)
class PointContext:
    """What every point of one ingest run shares."""

    tenant: str
    document_id: str
    content_hash: str
    run_id: str
    version: int
    source: str
    file_type: str
    # Prefixed to every chunk's embedded text (not its stored text): the document's name
    # and first line, so a passage that never names its subject can still be found by it.
    heading: str = ""


class PointBuilder:
    """Embeds a batch once per channel and assembles the points."""

    def __init__(
        self,
        *,
        text_embedder: TextEmbedder,
        image_embedder: ImageEmbedder | None,
        sparse: SparseEncoder,
    ) -> None:
        self.text_embedder = text_embedder
        self.image_embedder = image_embedder
        self.sparse = sparse

    def schema(self) -> CollectionSchema:
        image = self.image_embedder.dimension if self.image_embedder is not None else None
        return CollectionSchema(text_dimension=self.text_embedder.dimension, image_dimension=image)

    def build(
        self,
        chunks: Sequence[Chunk],
        assets: Sequence[ImageAsset],
        images: Sequence[Image.Image],
        *,
        context: PointContext,
        first_index: int,
    ) -> list[StoredPoint]:
        """Points for the chunks then the assets (``images`` holds their pixels), numbered
        from ``first_index``. An image with neither text nor a pixel channel cannot be
        found; it gets no point.
        """
        prefix = f"{context.heading}\n" if context.heading else ""
        texts = [prefix + chunk.text for chunk in chunks] + [asset.text for asset in assets]
        has_text = [bool(text.strip()) for text in texts]  # an image may have no text at all
        dense = self.text_embedder.embed_documents(
            [t for t, keep in zip(texts, has_text, strict=True) if keep]
        )
        sparse = self.sparse.embed_documents(
            [t for t, keep in zip(texts, has_text, strict=True) if keep]
        )
        pixels = (
            self.image_embedder.embed_images(images)
            if self.image_embedder is not None and assets
            else None
        )
        points, row = [], 0
        items: list[Chunk | ImageAsset] = [*chunks, *assets]
        for offset, item in enumerate(items):
            vectors: dict[str, list[float]] = {}
            sparse_vectors = {}
            if has_text[offset]:
                vectors[TEXT_VECTOR] = dense[row].tolist()
                sparse_vectors[SPARSE_VECTOR] = sparse[row]
                row += 1
            if pixels is not None and offset >= len(chunks):
                vectors[IMAGE_VECTOR] = pixels[offset - len(chunks)].tolist()
            if not vectors:
                continue
            index = first_index + offset
            points.append(
                StoredPoint(
                    point_id=point_id(
                        context.tenant, context.document_id, context.content_hash, index
                    ),
                    vectors=vectors,
                    sparse=sparse_vectors,
                    payload=_payload(item, context, index),
                )
            )
        return points


def _payload(item: Chunk | ImageAsset, context: PointContext, index: int) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "tenant": context.tenant,
        "document_id": context.document_id,
        "content_hash": context.content_hash,
        "run_id": context.run_id,
        "version": context.version,
        "source": context.source,
        "file_type": context.file_type,
        "element_index": index,
        "kind": item.kind.value,
        "page": item.page,
        "bbox": list(item.bbox) if item.bbox is not None else None,
        "text": item.text,
    }
    if isinstance(item, Chunk):
        payload["categories"] = list(item.categories)
    else:
        payload.update(
            image_id=item.image_id,
            image_path=item.key,
            width=item.width,
            height=item.height,
            caption=item.caption,
            ocr_text=item.ocr_text,
            alt_text=item.alt_text,
        )
    return payload
