"""Images found by parsers become stored, captioned, OCR'd assets.

Captions and OCR text are cached in the catalog by (image content hash, model,
prompt), so an image seen before, in any document, costs no model work.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Sequence

from PIL import Image

from mmrag.blobs import BlobStore, image_key
from mmrag.catalog import Catalog
from mmrag.models.base import Captioner
from mmrag.ocr import ocr_texts
from mmrag.types import ElementKind, ImageAsset, ImageElement


def image_id(image: Image.Image) -> str:
    """Content hash of the decoded pixels (independent of the container format)."""
    digest = hashlib.sha256(f"{image.mode}:{image.width}x{image.height}:".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


class ImageEnricher:
    """Saves images in the blob store and attaches captions and OCR text."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        blobs: BlobStore,
        captioner: Captioner | None,
        ocr_languages: str | None,
        max_side: int = 2048,
    ) -> None:
        self._catalog = catalog
        self._blobs = blobs
        self._captioner = captioner
        self._ocr_languages = ocr_languages  # None: no separate OCR pass
        self._max_side = max_side  # stored copies are bounded; models resize anyway

    def enrich(self, elements: Sequence[ImageElement], document_id: str) -> list[ImageAsset]:
        """One asset per element, in order: saved PNG, caption, OCR text."""
        ids = [image_id(element.image) for element in elements]
        captions = self._captions(elements, ids)
        ocr = self._ocr(elements, ids)
        assets = []
        for element, identifier in zip(elements, ids, strict=True):
            key = self._save(element.image, image_key(document_id, identifier))
            assets.append(
                ImageAsset(
                    image_id=identifier,
                    key=key,
                    page=element.page,
                    kind=element.kind,
                    width=element.image.width,
                    height=element.image.height,
                    bbox=element.bbox,
                    alt_text=element.alt_text,
                    caption=captions.get(identifier, ""),
                    ocr_text=element.ocr_text or ocr.get(identifier, ""),
                )
            )
        return assets

    def _cached_run(
        self,
        cache_key: str,
        elements: Sequence[ImageElement],
        ids: list[str],
        run: Callable[[list[Image.Image]], list[str]],
    ) -> dict[str, str]:
        found = self._catalog.cached_captions(cache_key, ids)
        missing = {i: e.image for e, i in zip(elements, ids, strict=True) if i not in found}
        if missing:
            produced = run(list(missing.values()))
            fresh = dict(zip(missing, produced, strict=True))
            self._catalog.store_captions(cache_key, fresh)
            found.update(fresh)
        return found

    def _captions(self, elements: Sequence[ImageElement], ids: list[str]) -> dict[str, str]:
        if self._captioner is None:
            return {}
        # A page render whose text is known (text layer or OCR) is described by that text:
        # a VLM caption of every rendered page would cost more than the rest of ingest.
        # An OCR-only captioner adds nothing to any image the parser already read.
        todo = [
            (e, i)
            for e, i in zip(elements, ids, strict=True)
            if not (e.ocr_text and (self._captioner.reads_text or e.kind == ElementKind.PAGE))
        ]
        elements, ids = [e for e, _ in todo], [i for _, i in todo]
        return self._cached_run(self._captioner.cache_key, elements, ids, self._captioner.caption)

    def _ocr(self, elements: Sequence[ImageElement], ids: list[str]) -> dict[str, str]:
        if self._ocr_languages is None or (self._captioner and self._captioner.reads_text):
            return {}
        todo = [(e, i) for e, i in zip(elements, ids, strict=True) if not e.ocr_text]
        languages = self._ocr_languages

        def run(images: list[Image.Image]) -> list[str]:
            return ocr_texts(images, languages)

        return self._cached_run(f"ocr|{languages}", [e for e, _ in todo], [i for _, i in todo], run)

    def _save(self, image: Image.Image, key: str) -> str:
        if not self._blobs.exists(key):
            copy = image
            if max(image.size) > self._max_side:
                copy = image.copy()
                copy.thumbnail((self._max_side, self._max_side))
            encoded = io.BytesIO()
            copy.save(encoded, format="PNG", compress_level=1)
            encoded.seek(0)
            self._blobs.write(key, encoded)  # never a half-written blob under the key
        return key
