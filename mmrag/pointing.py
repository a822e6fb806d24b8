"""Chunks and image assets to store points: each channel's vectors plus payload."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image

from mmrag.channels import Channel, Indexable
from mmrag.models.base import TextEmbedder
from mmrag.store import CollectionSchema, VectorSpec, point_id
from mmrag.types import Chunk, ImageAsset, StoredPoint, VectorValue


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

    @property
    def prefix(self) -> str:
        """What goes before an element's text when it is embedded."""
        return f"{self.heading}\n" if self.heading else ""


class PointBuilder:
    """Encodes a batch once per named vector, through the channels, and assembles the
    points."""

    def __init__(self, *, channels: Sequence[Channel], text_embedder: TextEmbedder) -> None:
        self.channels = list(channels)
        self.text_embedder = text_embedder  # the chunker counts tokens with its tokenizer

    def schema(self) -> CollectionSchema:
        """Every named vector of the channels, each once (channels may share one)."""
        specs: dict[str, VectorSpec] = {}
        for channel in self.channels:
            for spec in channel.vectors():
                specs.setdefault(spec.name, spec)
        return CollectionSchema(tuple(specs.values()))

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
        from ``first_index``. An element no channel can index (an image with no text and
        no pixel channel) gets no point.
        """
        prefix = context.prefix
        # An image file's name is its title: the image is embedded with it, so a photo
        # with no text of its own can still be found by what its name says.
        image_prefix = prefix if context.file_type == "image" else ""
        items = [Indexable(chunk.kind, prefix + chunk.text) for chunk in chunks] + [
            Indexable(asset.kind, image_prefix + asset.text, image)
            for asset, image in zip(assets, images, strict=True)
        ]
        vectors: list[dict[str, VectorValue]] = [{} for _ in items]
        extra: list[dict[str, Any]] = [{} for _ in items]  # payload fields of the channels
        for channel in self.channels:
            todo = [
                i
                for i, item in enumerate(items)
                if channel.vector not in vectors[i] and channel.indexes(item)
            ]
            if todo:
                encoded = channel.encode_documents([items[i] for i in todo])
                for i, one in zip(todo, encoded, strict=True):
                    vectors[i].update(one.vectors)
                    extra[i].update(one.payload)
        elements: list[Chunk | ImageAsset] = [*chunks, *assets]
        return [
            StoredPoint(
                point_id=point_id(
                    context.tenant, context.document_id, context.content_hash, first_index + i
                ),
                vectors=vectors[i],
                payload={**_payload(element, context, first_index + i), **extra[i]},
            )
            for i, element in enumerate(elements)
            if vectors[i]
        ]


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
