"""Shared low-level builders and deterministic bad (unreadable or hostile) inputs.

The builders (a minimal PDF writer, text and bar-chart rasters) are also used by
:mod:`mmrag.testing.documents`, which writes the readable documents.  Each bad
writer produces one class of bad input that ingestion must reject cleanly; the
classes are the keys of ``BAD_FILE_NAMES``.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image as ImageModule
    from PIL import ImageFont as ImageFontModule

ENCRYPTED_PDF_USER_PASSWORD = "mmrag-user"
ENCRYPTED_PDF_OWNER_PASSWORD = "mmrag-owner"
DECOMPRESSION_BOMB_SIDE = 16000
"""Bomb PNG width and height: 256 Mpx, above twice PIL's default MAX_IMAGE_PIXELS."""

BAD_FILE_NAMES: dict[str, str] = {
    "corrupt_pdf": "corrupt.pdf",
    "empty": "empty.pdf",
    "encrypted_pdf": "encrypted.pdf",
    "truncated_pdf": "truncated.pdf",
    "zero_page_pdf": "zero_pages.pdf",
    "mislabelled": "mislabelled.pdf",
    "unsupported": "archive.xyz",
    "decompression_bomb": "bomb.png",
    "no_text": "blank.pdf",
    "corrupt_docx": "corrupt.docx",
    "corrupt_image": "corrupt.png",
}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_FIXED_FILE_IDENTIFIER = bytes(range(16))
_FONT_PATHS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf",
)


# ---------------------------------------------------------------- PDF bytes


@dataclass(frozen=True)
class PdfPageSpec:
    """One PDF page: a content stream and the images it draws (name -> PIL image)."""

    content: str
    images: dict[str, ImageModule.Image]
    width: float = 612.0
    height: float = 792.0


def _pdf_stream(dictionary: str, data: bytes) -> bytes:
    """Return a Flate-compressed PDF stream object body."""
    packed = zlib.compress(data, 9)
    head = f"<< {dictionary} /Filter /FlateDecode /Length {len(packed)} >>\nstream\n"
    return head.encode("latin-1") + packed + b"\nendstream"


def _pdf_image_object(image: ImageModule.Image) -> bytes:
    """Return an image XObject body (RGB or grayscale, 8 bits per component)."""
    colour_space = "/DeviceGray" if image.mode == "L" else "/DeviceRGB"
    raster = image if image.mode == "L" else image.convert("RGB")
    dictionary = (
        f"/Type /XObject /Subtype /Image /Width {raster.width} /Height {raster.height} "
        f"/ColorSpace {colour_space} /BitsPerComponent 8"
    )
    return _pdf_stream(dictionary, raster.tobytes())


def build_pdf(pages: list[PdfPageSpec]) -> bytes:
    """Serialise pages into a minimal PDF 1.4 file (Helvetica fonts F1/F2).

    Page objects come first and the page tree and catalog last, so a truncated
    copy loses its catalog.  An empty ``pages`` list gives a valid zero-page PDF.
    """
    bodies: list[bytes] = [
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
    ]
    pages_number = 3 + sum(len(page.images) + 2 for page in pages)
    page_numbers: list[int] = []
    for page in pages:
        image_refs = ""
        for name, image in page.images.items():
            bodies.append(_pdf_image_object(image))
            image_refs += f"/{name} {len(bodies)} 0 R "
        bodies.append(_pdf_stream("", page.content.encode("cp1252")))
        content_number = len(bodies)
        resources = f"<< /Font << /F1 1 0 R /F2 2 0 R >> /XObject << {image_refs}>> >>"
        media_box = f"[0 0 {page.width:g} {page.height:g}]"
        page_dictionary = (
            f"<< /Type /Page /Parent {pages_number} 0 R /MediaBox {media_box} "
            f"/Resources {resources} /Contents {content_number} 0 R >>"
        )
        bodies.append(page_dictionary.encode("latin-1"))
        page_numbers.append(len(bodies))
    kids = " ".join(f"{number} 0 R" for number in page_numbers)
    bodies.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(page_numbers)} >>".encode("latin-1"))
    bodies.append(f"<< /Type /Catalog /Pages {pages_number} 0 R >>".encode("latin-1"))
    return serialise_pdf(bodies)


def serialise_pdf(bodies: list[bytes]) -> bytes:
    """Join object bodies with a cross-reference table; the last body is the catalog."""
    output = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: list[int] = []
    for number, body in enumerate(bodies, start=1):
        offsets.append(len(output))
        output += f"{number} 0 obj\n".encode("latin-1") + body + b"\nendobj\n"
    xref_offset = len(output)
    output += f"xref\n0 {len(bodies) + 1}\n0000000000 65535 f \n".encode("latin-1")
    output += b"".join(f"{offset:010d} 00000 n \n".encode("latin-1") for offset in offsets)
    trailer = f"trailer\n<< /Size {len(bodies) + 1} /Root {len(bodies)} 0 R >>\n"
    output += f"{trailer}startxref\n{xref_offset}\n%%EOF\n".encode("latin-1")
    return bytes(output)


def pdf_text(x: float, y: float, size: float, text: str, bold: bool = False) -> str:
    """Return content-stream operators that show ``text`` at (x, y) in points."""
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return f"BT /{'F2' if bold else 'F1'} {size:g} Tf {x:g} {y:g} Td ({escaped}) Tj ET\n"


def pdf_image(name: str, x: float, y: float, width: float, height: float) -> str:
    """Return content-stream operators that draw image XObject ``name``."""
    return f"q {width:g} 0 0 {height:g} {x:g} {y:g} cm /{name} Do Q\n"


def pdf_table(rows: tuple[tuple[str, ...], ...], x: float, top: float) -> str:
    """Return operators drawing a ruled text grid, header row in bold."""
    cell_width, cell_height = 150.0, 22.0
    operators = "0.5 w\n"
    for row_index, row in enumerate(rows):
        y = top - (row_index + 1) * cell_height
        for column_index, cell in enumerate(row):
            left = x + column_index * cell_width
            operators += f"{left:g} {y:g} {cell_width:g} {cell_height:g} re S\n"
            operators += pdf_text(left + 6, y + 7, 11, cell, bold=row_index == 0)
    return operators


# ------------------------------------------------------------------- images


def load_font(size: int) -> ImageFontModule.FreeTypeFont | ImageFontModule.ImageFont:
    """Return DejaVu Sans Bold at ``size`` px, or Pillow's scalable default font."""
    from PIL import ImageFont

    for font_path in _FONT_PATHS:
        if Path(font_path).is_file():
            return ImageFont.truetype(font_path, size)
    return ImageFont.load_default(size=size)


def text_image(
    lines: list[str], size: tuple[int, int], font_size: int = 56, mode: str = "RGB"
) -> ImageModule.Image:
    """Render black text lines on white, with a few coloured shapes in the bottom band."""
    from PIL import Image, ImageDraw

    image = Image.new(mode, size, "white")
    draw = ImageDraw.Draw(image)
    font = load_font(font_size)
    for index, line in enumerate(lines):
        draw.text((40, 40 + index * int(font_size * 1.5)), line, fill="black", font=font)
    width, height = size
    if mode == "RGB":
        draw.rectangle((40, height - 90, 140, height - 30), fill=(30, 110, 200))
        draw.ellipse((180, height - 95, 250, height - 25), fill=(220, 60, 40))
        draw.polygon(
            [(300, height - 30), (340, height - 95), (380, height - 30)], fill=(40, 160, 70)
        )
    return image


def chart_image(
    label: str, values: tuple[int, ...] = (3, 7, 5, 9), size: tuple[int, int] = (480, 320)
) -> ImageModule.Image:
    """Draw a bar chart with a large OCR-readable ``label`` across the top."""
    from PIL import Image, ImageDraw

    width, height = size
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    draw.text((30, 14), label, fill="black", font=load_font(52))
    base, top = height - 30, 100
    draw.line((30, base, width - 20, base), fill="black", width=3)
    draw.line((30, top, 30, base), fill="black", width=3)
    colours = ((66, 133, 244), (219, 68, 55), (244, 180, 0), (15, 157, 88))
    bar_width = (width - 80) // len(values)
    for index, value in enumerate(values):
        left = 50 + index * bar_width
        bar_top = base - (base - top) * value // max(values)
        draw.rectangle(
            (left, bar_top, left + bar_width - 20, base - 2), fill=colours[index % len(colours)]
        )
    return image


def png_bytes(image: ImageModule.Image) -> bytes:
    """Encode an image as PNG bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


# ------------------------------------------------------------- bad writers


def garbage_bytes(length: int, seed: int = 7) -> bytes:
    """Return ``length`` deterministic pseudo-random bytes (a linear congruential sequence)."""
    state, output = seed, bytearray()
    for _ in range(length):
        state = (state * 1103515245 + 12345) % 2**31
        output.append(state >> 16 & 0xFF)
    return bytes(output)


def _write(path: Path, data: bytes) -> Path:
    """Create the parent folder, write ``data`` to ``path`` and return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_corrupt_pdf(path: Path) -> Path:
    """Write a file that starts with a PDF header followed by garbage."""
    return _write(path, b"%PDF-1.4\n" + garbage_bytes(2048))


def write_empty_file(path: Path) -> Path:
    """Write a zero-byte file."""
    return _write(path, b"")


def write_encrypted_pdf(path: Path) -> Path:
    """Write a one-page PDF encrypted (RC4-128) with ``ENCRYPTED_PDF_USER_PASSWORD``."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import ArrayObject, ByteStringObject

    class _FixedIdentifierWriter(PdfWriter):
        """A writer whose file identifier is fixed, so the output is reproducible."""

        def generate_file_identifiers(self) -> None:
            self._ID = ArrayObject([ByteStringObject(_FIXED_FILE_IDENTIFIER)] * 2)

    page = PdfPageSpec(pdf_text(72, 720, 14, "Confidential: the vault code is 7781."), {})
    writer = _FixedIdentifierWriter(clone_from=PdfReader(io.BytesIO(build_pdf([page]))))
    writer.encrypt(ENCRYPTED_PDF_USER_PASSWORD, ENCRYPTED_PDF_OWNER_PASSWORD, algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return _write(path, buffer.getvalue())


def write_truncated_pdf(path: Path) -> Path:
    """Write the first 40% of the bytes of a valid three-page PDF (catalog and xref are lost)."""
    pages = [
        PdfPageSpec(pdf_text(72, 720, 14, f"Truncated report, page {number}."), {})
        for number in (1, 2, 3)
    ]
    data = build_pdf(pages)
    return _write(path, data[: len(data) * 2 // 5])


def write_zero_page_pdf(path: Path) -> Path:
    """Write a syntactically valid PDF whose page tree is empty."""
    return _write(path, build_pdf([]))


def write_mislabelled_pdf(path: Path) -> Path:
    """Write a PNG image's bytes under a ``.pdf`` name."""
    return _write(path, png_bytes(text_image(["NOT A PDF"], (400, 300), font_size=48)))


def write_unsupported_file(path: Path) -> Path:
    """Write a file of an unknown type (``.xyz``, unrecognisable magic bytes)."""
    return _write(path, b"XYZARCHIVE\x00\x01" + garbage_bytes(512, seed=11))


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    """Return one PNG chunk (length, type, data, CRC)."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_decompression_bomb(path: Path) -> Path:
    """Write a valid 1-bit white PNG of 16000x16000 px that is about 50 KB on disk."""
    side = DECOMPRESSION_BOMB_SIDE
    row = b"\x00" + b"\xff" * ((side + 7) // 8)
    compressor = zlib.compressobj(9)
    rows_per_chunk = 500
    chunk = row * rows_per_chunk
    packed = b"".join(compressor.compress(chunk) for _ in range(side // rows_per_chunk))
    packed += compressor.compress(row * (side % rows_per_chunk)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    data = (
        _PNG_SIGNATURE
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", packed)
        + _png_chunk(b"IEND", b"")
    )
    return _write(path, data)


def write_blank_pdf(path: Path) -> Path:
    """Write a valid one-page PDF with no text and no images."""
    return _write(path, build_pdf([PdfPageSpec("", {})]))


def write_corrupt_docx(path: Path) -> Path:
    """Write garbage bytes under a ``.docx`` name (not a zip archive)."""
    return _write(path, garbage_bytes(1024, seed=3))


def write_corrupt_image(path: Path) -> Path:
    """Write a PNG signature followed by garbage."""
    return _write(path, _PNG_SIGNATURE + garbage_bytes(1024, seed=5))


BAD_WRITERS: dict[str, Callable[[Path], Path]] = {
    "corrupt_pdf": write_corrupt_pdf,
    "empty": write_empty_file,
    "encrypted_pdf": write_encrypted_pdf,
    "truncated_pdf": write_truncated_pdf,
    "zero_page_pdf": write_zero_page_pdf,
    "mislabelled": write_mislabelled_pdf,
    "unsupported": write_unsupported_file,
    "decompression_bomb": write_decompression_bomb,
    "no_text": write_blank_pdf,
    "corrupt_docx": write_corrupt_docx,
    "corrupt_image": write_corrupt_image,
}


def write_all_bad_documents(target: Path) -> dict[str, Path]:
    """Write every bad input into ``target``; return bad-input class -> path."""
    return {name: writer(target / BAD_FILE_NAMES[name]) for name, writer in BAD_WRITERS.items()}
