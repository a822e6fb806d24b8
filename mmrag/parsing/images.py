"""Opening images safely, and image files as documents."""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from pathlib import Path

from PIL import Image, ImageSequence, UnidentifiedImageError

from mmrag.errors import CorruptFileError, DocumentError, ImageTooLargeError, LimitExceededError
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
    try:
        check_pixels(image, max_pixels=max_pixels, name=name)
    except ImageTooLargeError:
        image.close()
        raise
    return image


def check_pixels(image: Image.Image, *, max_pixels: int, name: Path, where: str = "") -> None:
    """Refuse an image (or the frame it is at) declaring more than ``max_pixels``."""
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLargeError(
            name,
            f"{where or 'image'} declares {width}x{height} = {width * height:,} pixels, over the "
            f"limit of {max_pixels:,} (parsing.max_image_pixels); refusing a possible "
            "decompression bomb",
        )


# Formats whose frame count PIL finds only by walking every frame (a TIFF's page chain,
# a GIF's blocks): they are counted by stepping through at most parsing.max_pages + 1.
WALKED_FRAME_FORMATS = {"TIFF", "GIF"}


def frame_count(image: Image.Image, *, max_pages: int, name: Path) -> int:
    """The image's frames, refused past ``max_pages`` after reading at most one more."""
    if not getattr(image, "is_animated", False):
        return 1
    walked = image.format in WALKED_FRAME_FORMATS
    if walked:
        # Step by step: PIL's n_frames after one long seek past the end is wrong (it
        # reports the frame asked for) and walks the whole chain first.
        frames = 1
        try:
            while frames <= max_pages:
                image.seek(frames)
                frames += 1
        except EOFError:
            last_page = getattr(image, "tag_v2", None)  # a TIFF's last page directory
            if image.format == "TIFF" and last_page is not None and last_page.next:
                # PIL ends where a page points back to an earlier one: a broken file.
                raise CorruptFileError(
                    name, "the TIFF's chain of pages loops back on itself"
                ) from None
    else:
        frames = int(getattr(image, "n_frames", 1))  # declared in the header
    if frames > max_pages:
        counted = "at least " if walked else ""  # counting stopped one past the limit
        raise LimitExceededError(
            name,
            f"the image has {counted}{frames:,} frames, over parsing.max_pages ({max_pages:,})",
        )
    return frames


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
        frames = frame_count(image, max_pages=settings.max_pages, name=path)
        image.seek(0)
        image.load()
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        image.close()
        raise CorruptFileError(path, f"the image data is damaged ({exc})") from exc
    except LimitExceededError:
        image.close()
        raise

    def elements() -> Iterator[Element]:
        with image:
            for index, frame in enumerate(ImageSequence.Iterator(image), start=1):
                # Each frame declares its own size: the first one's check is not enough.
                check_pixels(
                    frame, max_pixels=settings.max_image_pixels, name=path, where=f"frame {index}"
                )
                try:
                    rgb = frame.convert("RGB")
                except (OSError, ValueError) as exc:
                    raise CorruptFileError(path, f"frame {index} is damaged ({exc})") from exc
                yield from _frame_elements(rgb, index, settings)

    return ParsedFile(file_type="image", page_count=frames, elements=elements())


def image_frame(path: Path, number: int, max_pixels: int) -> Image.Image:
    """Frame ``number`` (from 1; a multi-page TIFF's page) of an image file, as RGB, at
    its own size: the unit of the boxes parsing gives it."""
    with open_image(path, max_pixels=max_pixels, name=path) as image:
        try:
            image.seek(number - 1)
            check_pixels(image, max_pixels=max_pixels, name=path, where=f"frame {number}")
            return image.convert("RGB")
        except EOFError:
            raise ValueError(f"page {number} is not in the image") from None
        except (OSError, SyntaxError) as exc:
            raise CorruptFileError(path, f"frame {number} is damaged ({exc})") from exc


def embedded_image(
    source: bytes | Path,
    *,
    document: Path,
    where: str,
    settings: ParsingSettings,
    warnings: list[str],
) -> Image.Image | None:
    """An image embedded in a document (its bytes, or a file beside it), or None when it
    is too small or unreadable.

    A bad embedded image costs a warning, not the document.
    """
    try:
        with open_image(source, max_pixels=settings.max_image_pixels, name=document) as image:
            if min(image.size) < settings.min_image_side:
                return None  # icons, bullets, rules
            rgb = image.convert("RGB")
        return None if is_blank(rgb) else rgb
    except DocumentError as exc:
        warnings.append(f"{where}: {exc.reason}; image skipped")
    except (OSError, ValueError, SyntaxError) as exc:
        warnings.append(f"{where}: image could not be decoded ({exc}); skipped")
    return None
