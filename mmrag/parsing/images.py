"""Opening images safely, and image files as documents."""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from pathlib import Path

from PIL import Image, ImageSequence, UnidentifiedImageError

from mmrag.errors import CorruptFileError, DocumentError, ImageTooLargeError
from mmrag.ocr import ocr_lines
from mmrag.parsing.base import ParsedFile
from mmrag.settings import ParsingSettings
from mmrag.types import Element, ElementKind, ImageElement, TextElement


def open_image(source: Path | bytes, *, max_pixels: int, name: Path) -> Image.Image:
    """Open an image, refusing decompression bombs before decoding any pixels."""
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    with warnings.catch_warnings():
        # We check the size ourselves, against our own limit, below.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(stream)
        except Image.DecompressionBombError as exc:
            raise ImageTooLargeError(name, f"image is too large to decode safely ({exc})") from exc
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise CorruptFileError(name, f"cannot read the image ({exc})") from exc
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise ImageTooLargeError(
            name,
            f"image declares {width}x{height} = {width * height:,} pixels, over the limit of "
            f"{max_pixels:,} (parsing.max_image_pixels); refusing a possible decompression bomb",
        )
    return image


def is_blank(image: Image.Image, tolerance: float = 2.0) -> bool:
    """A (nearly) uniform image: a blank page or a filled rectangle carries nothing."""
    from PIL import ImageStat

    return (
        max(
            ImageStat.Stat(
                image.convert("L").reduce(4) if min(image.size) >= 8 else image.convert("L")
            ).stddev
        )
        < tolerance
    )


def _frame_elements(frame: Image.Image, page: int, settings: ParsingSettings) -> Iterator[Element]:
    lines = ocr_lines(frame, settings.ocr_languages) if settings.ocr else []
    for line in lines:
        yield TextElement(text=line.text, page=page, category="OcrLine", bbox=line.bbox)
    yield ImageElement(
        image=frame,
        page=page,
        kind=ElementKind.IMAGE,
        bbox=(0, 0, frame.width, frame.height),
        ocr_text="\n".join(line.text for line in lines),
    )


def parse_image_file(path: Path, settings: ParsingSettings) -> ParsedFile:
    """An image file: each frame (multi-page TIFF) is a page, OCR'd and kept as an image."""
    image = open_image(path, max_pixels=settings.max_image_pixels, name=path)
    try:
        frame_count = getattr(image, "n_frames", 1)
        image.seek(0)
        image.load()
    except (OSError, ValueError, SyntaxError) as exc:
        image.close()
        raise CorruptFileError(path, f"the image data is damaged ({exc})") from exc

    def elements() -> Iterator[Element]:
        with image:
            for index, frame in enumerate(ImageSequence.Iterator(image), start=1):
                try:
                    rgb = frame.convert("RGB")
                except (OSError, ValueError) as exc:
                    raise CorruptFileError(path, f"frame {index} is damaged ({exc})") from exc
                yield from _frame_elements(rgb, index, settings)

    return ParsedFile(file_type="image", page_count=frame_count, elements=elements())


def embedded_image(
    blob: bytes, *, document: Path, where: str, settings: ParsingSettings, warnings: list[str]
) -> Image.Image | None:
    """An image embedded in a document, or None when it is too small or unreadable.

    A bad embedded image costs a warning, not the document.
    """
    try:
        image = open_image(blob, max_pixels=settings.max_image_pixels, name=document)
        if min(image.size) < settings.min_image_side:
            return None  # icons, bullets, rules
        rgb = image.convert("RGB")
        return None if is_blank(rgb) else rgb
    except DocumentError as exc:
        warnings.append(f"{where}: {exc.reason}; image skipped")
    except (OSError, ValueError, SyntaxError) as exc:
        warnings.append(f"{where}: image could not be decoded ({exc}); skipped")
    return None
