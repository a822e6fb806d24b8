"""OCR with tesseract: plain text for images, positioned lines for scanned pages."""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from PIL import Image

from mmrag.errors import ModelLoadError
from mmrag.types import BBox


@dataclass(frozen=True, slots=True)
class OcrLine:
    text: str
    bbox: BBox  # pixels of the OCR'd image, top-left origin


def require_tesseract() -> None:
    """Fail early, and clearly, when the tesseract binary is missing."""
    if shutil.which("tesseract") is None:
        raise ModelLoadError(
            role="ocr",
            model="tesseract",
            reason="the tesseract binary is not installed",
            fix="install it (apt-get install tesseract-ocr, brew install tesseract) "
            "or set parsing.ocr=false and captioner.ocr_text=false",
        )


def _rgb(image: Image.Image) -> Image.Image:
    """The image in RGB, copied only when it is not already (a page render can be
    hundreds of MB)."""
    return image if image.mode == "RGB" else image.convert("RGB")


def ocr_text(image: Image.Image, languages: str) -> str:
    """All text tesseract reads in the image, whitespace tidied."""
    import pytesseract

    require_tesseract()
    raw = pytesseract.image_to_string(_rgb(image), lang=languages)
    lines = (" ".join(line.split()) for line in raw.splitlines())
    return "\n".join(line for line in lines if line)


def ocr_lines(image: Image.Image, languages: str, min_confidence: float = 30.0) -> list[OcrLine]:
    """Text lines with their boxes, in reading order (block, paragraph, line)."""
    import pytesseract

    require_tesseract()
    data = pytesseract.image_to_data(
        _rgb(image), lang=languages, output_type=pytesseract.Output.DICT
    )
    lines: dict[tuple[int, int, int], list[int]] = {}
    for i, word in enumerate(data["text"]):
        if word.strip() and float(data["conf"][i]) >= min_confidence:
            key = (data["block_num"][i], data["par_num"][i], data["line_num"][i])
            lines.setdefault(key, []).append(i)
    result = []
    for key in sorted(lines):
        words = lines[key]
        left = min(data["left"][i] for i in words)
        top = min(data["top"][i] for i in words)
        right = max(data["left"][i] + data["width"][i] for i in words)
        bottom = max(data["top"][i] + data["height"][i] for i in words)
        text = " ".join(data["text"][i].strip() for i in words)
        result.append(OcrLine(text=text, bbox=(left, top, right, bottom)))
    return result
