"""OCR with tesseract: plain text for images, positioned lines for scanned pages."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from PIL import Image

from mmrag.errors import ModelLoadError, ModelRuntimeError
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


def _tesseract(image: Image.Image, languages: str, *output: str) -> str:
    """What the tesseract command prints for ``image`` (sent as PPM on stdin: no
    encoding cost, no temporary file).

    Tesseract runs on one thread: its OpenMP threads made one page 4x slower in wall
    time on a 2-core machine (3.6 s against 0.9 s), so images run in parallel instead
    (`ocr_texts`). The variable is set for the child alone: in this process it would
    also limit PyTorch's OpenMP pool.
    """
    require_tesseract()
    # Converted only when needed: a page render can be hundreds of MB.
    pixels = image if image.mode in ("RGB", "L") else image.convert("RGB")
    encoded = io.BytesIO()
    pixels.save(encoded, format="PPM")
    done = subprocess.run(
        ["tesseract", "stdin", "stdout", "-l", languages, *output],
        input=encoded.getbuffer(),
        capture_output=True,
        env={**os.environ, "OMP_THREAD_LIMIT": "1"},
        check=False,
    )
    if done.returncode != 0:
        problem = done.stderr.decode(errors="replace").strip().splitlines()
        raise ModelRuntimeError(
            f"tesseract failed (exit {done.returncode}): {problem[-1] if problem else 'no message'}"
        )
    return done.stdout.decode("utf-8", errors="replace")


def ocr_text(image: Image.Image, languages: str) -> str:
    """All text tesseract reads in the image, whitespace tidied."""
    raw = _tesseract(image, languages)
    lines = (" ".join(line.split()) for line in raw.splitlines())
    return "\n".join(line for line in lines if line)


def ocr_workers() -> int:
    """How many tesseracts to run at once: one per core this process may use."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return cores or 1


def ocr_texts(images: Sequence[Image.Image], languages: str) -> list[str]:
    """`ocr_text` of each image, in order, one tesseract per available core at a time."""
    workers = min(len(images), ocr_workers())
    if workers <= 1:
        return [ocr_text(image, languages) for image in images]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mmrag-ocr") as pool:
        return list(pool.map(lambda image: ocr_text(image, languages), images))


def ocr_lines(image: Image.Image, languages: str, min_confidence: float = 30.0) -> list[OcrLine]:
    """Text lines with their boxes, in reading order (block, paragraph, line)."""
    rows = csv.DictReader(
        io.StringIO(_tesseract(image, languages, "tsv")), delimiter="\t", quoting=csv.QUOTE_NONE
    )
    lines: dict[tuple[int, int, int], list[dict[str, str]]] = {}
    for row in rows:
        text = (row.get("text") or "").strip()
        if row["level"] == "5" and text and float(row["conf"]) >= min_confidence:
            key = (int(row["block_num"]), int(row["par_num"]), int(row["line_num"]))
            lines.setdefault(key, []).append(row)
    result = []
    for key in sorted(lines):
        words = lines[key]
        left = min(int(word["left"]) for word in words)
        top = min(int(word["top"]) for word in words)
        right = max(int(word["left"]) + int(word["width"]) for word in words)
        bottom = max(int(word["top"]) + int(word["height"]) for word in words)
        text = " ".join(word["text"].strip() for word in words)
        result.append(OcrLine(text=text, bbox=(left, top, right, bottom)))
    return result
