"""A deterministic hostile corpus: 200+ files that ingestion must survive, with the
expected outcome of each as data.

``write_hostile_corpus(target)`` fills ``target`` with:

- **good** files of every supported type, each carrying a distinctive phrase that a
  search must find once it is indexed (also under non-UTF-8, Unicode and odd names,
  mislabelled but readable, and Markdown of 200 KB of brackets, once quadratic);
- **bad** files, each of which must be reported failed, by name, with a reason:
  truncated files, random bytes behind real headers, encrypted and empty files, zip
  bombs (1 GB parts, lying sizes, 20k and 100k entries), pixel bombs (huge declared
  sizes, a 14,400 pt PDF page, 10,000 TIFF frames, a TIFF page loop), entity expansion
  (billion laughs, quadratic, external entities) in DOCX and PPTX parts, deep nesting,
  huge lines, long blank PDFs, mislabelled and unsupported types. Files over a
  ``parsing.max_*`` limit must be refused, saying which limit (`HostileFile.reason`),
  even where they hold text; where sound handling may differ (damaged data, entities),
  a bad file holds no text that a tolerant parser could index;
- **contained** files (entities in HTML and XHTML, which HTML parsers do not expand):
  indexed or reported, either is right, but never expanded and never past the limits;
- **links** that must be reported as skipped and never indexed: loops, dangling
  links, and links escaping the folder to files written beside it (``outside``, which
  the external entities name too).

The corpus is about 94 MB on disk (half of it one 50 MB line; each zip bomb inflates
to 1.1 GB from 1-3 MB) and is written in about 5 seconds. Expectations are data, never
code paths: the tests check every entry of `HostileCorpus.files` and `.links`.
"""

from __future__ import annotations

import enum
import functools
import gzip
import io
import os
import struct
import time
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from mmrag.testing.documents import FIXED_TIMESTAMP, normalise_zip
from mmrag.testing.documents_bad import (
    PdfPageSpec,
    build_pdf,
    chart_image,
    garbage_bytes,
    pdf_image,
    pdf_text,
    png_bytes,
    text_image,
    write_decompression_bomb,
    write_encrypted_pdf,
)

OUTSIDE_PHRASE = "The Quokka vault outside the corpus stores 7713 forbidden keys."
"""Text of the files beside the corpus folder that escaping links point to."""

BOMB_BYTES = 1_100_000_000
"""What each zip-bomb part and the PDF content-stream bomb inflate to."""

WORDS = (  # noqa: SIM905 - a paragraph reads better than 85 quoted items
    "ALBATROSS ANEMONE ARMADILLO ASTROLABE AVALANCHE BAGPIPE BANJO BARNACLE BISCUIT "
    "BLIZZARD BOOMERANG BUTTERCUP CACTUS CANOE CARAVAN CATAPULT CHAMELEON CHANDELIER "
    "CINNAMON COMPASS CORMORANT CROCODILE DAFFODIL DOLPHIN DRAGONFLY DROMEDARY DULCIMER "
    "ECLIPSE ESPRESSO FLAMINGO FOGHORN GAZELLE GLACIER GONDOLA GRIFFIN HAMMOCK HARMONICA "
    "HEDGEHOG HORIZON IGUANA JACKAL JELLYFISH KANGAROO KAYAK LANTERN LOBSTER MACKEREL "
    "MANDOLIN MARMALADE MEADOW MONSOON MUSTANG NARWHAL NUTMEG OCTOPUS ORCHARD OSTRICH "
    "PANTHER PARACHUTE PELICAN PENGUIN PEPPERMINT PORCUPINE PRETZEL PUFFIN RACCOON RHUBARB "
    "SARDINE SCARECROW SEAHORSE SNOWFLAKE SPARROW SQUIRREL SUNFLOWER TAMBOURINE TELESCOPE "
    "TORTOISE TRUMPET TULIP VIOLIN WALNUT WATERFALL WHIRLWIND WOMBAT ZEBRA"
).split()
"""One word per good file: real words (OCR reads them), none used by other fixtures."""


class Expect(enum.StrEnum):
    GOOD = "good"  # indexed, and its phrase finds it
    BAD = "bad"  # reported failed, by name, with a reason
    CONTAINED = "contained"  # either of those, but never expanded (see `write_hostile_corpus`)
    SKIPPED = "skipped"  # a link: reported as skipped, never indexed


@dataclass(frozen=True)
class HostileFile:
    """One corpus entry and what ingestion must do with it."""

    relative: str  # path inside the corpus folder (POSIX; os.fsdecode'd for byte names)
    category: str  # the hostile class, e.g. "zip-bomb"
    expect: Expect
    phrase: str = ""  # good files: a query that must find this file
    note: str = ""  # what the file is
    reason: tuple[str, ...] = ()  # refused by a limit: its reason says one of these

    @property
    def name(self) -> str:
        return self.relative.rsplit("/", 1)[-1]

    def named_in(self, text: str) -> bool:
        """Whether ``text`` (an output line, an error) names this file. A name that is
        not UTF-8 may be rendered any way: its parts around the raw bytes must show."""
        head, tail = _around_raw_bytes(self.name)
        return self.name in text or (head in text and tail in text)

    def is_at(self, path: str) -> bool:
        """Whether ``path`` (absolute, as output or the catalog has it) is this file."""
        head, tail = _around_raw_bytes(self.relative)
        if path.endswith("/" + self.relative):
            return True
        return head != self.relative and f"/{head}" in path and path.endswith(tail)

    def path(self, root: Path) -> Path:
        return root / self.relative


def _around_raw_bytes(name: str) -> tuple[str, str]:
    """What comes before the first and after the last undecodable byte of a name
    (os.fsdecode turns each into a lone surrogate); the name twice when there is none."""
    raw = [index for index, character in enumerate(name) if "\udc80" <= character <= "\udcff"]
    return (name[: raw[0]], name[raw[-1] + 1 :]) if raw else (name, name)


@dataclass(frozen=True)
class HostileCorpus:
    """The corpus folder, its entries, and the files beside it that links point to."""

    root: Path
    files: tuple[HostileFile, ...]  # regular files, good and bad
    links: tuple[HostileFile, ...]  # symbolic links, all expected skipped
    outside: tuple[Path, ...]  # beside the folder: must never be indexed
    seconds: float  # time taken to write it

    @property
    def good(self) -> list[HostileFile]:
        return [entry for entry in self.files if entry.expect is Expect.GOOD]

    @property
    def bad(self) -> list[HostileFile]:
        return [entry for entry in self.files if entry.expect is Expect.BAD]

    @property
    def contained(self) -> list[HostileFile]:
        return [entry for entry in self.files if entry.expect is Expect.CONTAINED]

    def counts(self) -> dict[str, dict[str, int]]:
        """Expectation -> category -> number of files."""
        table: dict[str, dict[str, int]] = {}
        for entry in (*self.files, *self.links):
            row = table.setdefault(entry.expect.value, {})
            row[entry.category] = row.get(entry.category, 0) + 1
        return table

    def total_bytes(self) -> int:
        return sum(os.lstat(entry.path(self.root)).st_size for entry in self.files)


@dataclass(frozen=True)
class _Spec:
    name: str | bytes  # bytes: a name that is not UTF-8
    category: str
    expect: Expect
    build: Callable[[], bytes]
    phrase: str = ""
    note: str = ""
    reason: tuple[str, ...] = ()


# ------------------------------------------------------------------ zip and deflate


@dataclass(frozen=True)
class _Member:
    name: str
    payload: bytes  # as stored
    crc: int
    size: int  # uncompressed size, as declared
    method: int = zipfile.ZIP_DEFLATED


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def _member(name: str, data: bytes) -> _Member:
    return _Member(name, _raw_deflate(data), zlib.crc32(data), len(data))


@dataclass(frozen=True)
class _Bomb:
    """A raw deflate stream of ``prefix``, ~`BOMB_BYTES` of ``block`` repeated, ``suffix``."""

    prefix: bytes
    block: bytes
    repeats: int
    suffix: bytes
    stream: bytes

    @classmethod
    def of(cls, prefix: bytes, unit: bytes, suffix: bytes) -> _Bomb:
        """Built in milliseconds: after a full flush, a block's compressed form refers to
        nothing before it, so a 1 MiB block is compressed once and its bytes repeated."""
        block = unit * max(1, (1 << 20) // len(unit))
        repeats = max(1, BOMB_BYTES // len(block))
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        head = compressor.compress(prefix) + compressor.flush(zlib.Z_FULL_FLUSH)
        piece = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
        tail = compressor.compress(suffix) + compressor.flush()
        return cls(prefix, block, repeats, suffix, head + piece * repeats + tail)

    @property
    def size(self) -> int:
        return len(self.prefix) + self.repeats * len(self.block) + len(self.suffix)

    def checksum(self, function: Callable[[bytes, int], int], start: int) -> int:
        """crc32 or adler32 of the inflated bytes (a second per GB)."""
        value = function(self.prefix, start)
        for _ in range(self.repeats):
            value = function(self.block, value)
        return function(self.suffix, value)


def _zip(members: Iterable[_Member]) -> bytes:
    """A zip archive of ready members (Zip64 end records past 65,535 entries)."""
    output, central, count = bytearray(), bytearray(), 0
    for member in members:
        name, offset = member.name.encode(), len(output)
        sizes = (member.crc, len(member.payload), member.size, len(name))
        output += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, member.method, 0, 0x21, *sizes, 0)
        output += name + member.payload
        fixed = (0x02014B50, 20, 20, 0, member.method, 0, 0x21)
        central += struct.pack("<IHHHHHHIIIHHHHHII", *fixed, *sizes, 0, 0, 0, 0, 0, offset)
        central += name
        count += 1
    start = len(output)
    output += central
    if count > 0xFFFF:
        end64 = len(output)
        output += struct.pack(
            "<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count, len(central), start
        )
        output += struct.pack("<IIQI", 0x07064B50, 0, end64, 1)
    entries = min(count, 0xFFFF)
    output += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, entries, entries, len(central), start, 0)
    return bytes(output)


def _members_of(package: bytes) -> list[_Member]:
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        return [_member(name, archive.read(name)) for name in archive.namelist()]


def _replace_part(package: bytes, part: str, member: _Member) -> bytes:
    """An Office package with one part replaced (or added)."""
    members = [m for m in _members_of(package) if m.name != part]
    return _zip([*members, replace(member, name=part)])


# ------------------------------------------------------------------ good documents


def _sentence(word: str, number: int) -> str:
    return f"Field note: the {word.capitalize()} archive holds {number} sealed folders."


def _good_text(word: str, number: int) -> bytes:
    lines = [_sentence(word, number), "", f"It was catalogued by the {word.lower()} society."]
    return ("\n".join(lines) + "\n").encode()


def _good_markdown(word: str, number: int) -> bytes:
    return (
        f"# The {word.capitalize()} archive\n\n{_sentence(word, number)}\n\n"
        f"- first shelf\n- second shelf\n\n| shelf | folders |\n|---|---|\n| A | {number} |\n"
    ).encode()


def _good_html(word: str, number: int, xhtml: bool = False) -> bytes:
    head = '<?xml version="1.0" encoding="utf-8"?>\n' if xhtml else "<!DOCTYPE html>\n"
    namespace = ' xmlns="http://www.w3.org/1999/xhtml"' if xhtml else ""
    return (
        f"{head}<html{namespace}><head><title>{word.capitalize()}</title></head><body>"
        f"<h1>The {word.capitalize()} archive</h1><p>{_sentence(word, number)}</p>"
        f"<table><tr><th>shelf</th><th>folders</th></tr><tr><td>A</td><td>{number}</td></tr>"
        "</table></body></html>\n"
    ).encode()


def _good_pdf(word: str, number: int, chart: bool = False) -> bytes:
    content = pdf_text(72, 720, 18, f"The {word.capitalize()} archive", bold=True)
    content += pdf_text(72, 690, 12, _sentence(word, number))
    images = {}
    if chart:
        content += pdf_image("Chart", 72, 300, 360, 240)
        images["Chart"] = chart_image(word, values=(number % 7 + 1, 4, 6, 2))
    return build_pdf([PdfPageSpec(content, images), PdfPageSpec(pdf_text(72, 720, 12, "End."), {})])


def _good_scanned_pdf(word: str, number: int) -> bytes:
    scan = text_image(["FIELD NOTE", "", f"{word} {number}"], (1275, 1650), 72, mode="L")
    return build_pdf([PdfPageSpec(pdf_image("Scan", 0, 0, 612, 792), {"Scan": scan})])


def _office_bytes(document: object) -> bytes:
    buffer = io.BytesIO()
    document.save(buffer)  # type: ignore[attr-defined]
    return normalise_zip(buffer.getvalue())


def _good_docx(word: str, number: int, picture: bool = False) -> bytes:
    from docx import Document
    from docx.shared import Inches

    document = Document()
    document.core_properties.created = document.core_properties.modified = FIXED_TIMESTAMP
    document.add_heading(f"The {word.capitalize()} archive", level=1)
    document.add_paragraph(_sentence(word, number))
    if picture:
        document.add_picture(io.BytesIO(png_bytes(chart_image(word))), width=Inches(4))
    return _office_bytes(document)


def _good_pptx(word: str, number: int, picture: bool = False) -> bytes:
    from pptx import Presentation
    from pptx.util import Inches

    presentation = Presentation()
    presentation.core_properties.created = presentation.core_properties.modified = FIXED_TIMESTAMP
    presentation.core_properties.revision = 1
    slide = presentation.slides.add_slide(presentation.slide_layouts[1])
    slide.shapes.title.text = f"The {word.capitalize()} archive"
    slide.placeholders[1].text_frame.text = _sentence(word, number)
    if picture:
        chart = io.BytesIO(png_bytes(chart_image(word)))
        slide.shapes.add_picture(chart, Inches(5), Inches(4), width=Inches(4))
    return _office_bytes(presentation)


def _good_image(word: str, number: int, kind: str) -> bytes:
    poster = text_image(["Poster", f"{word} {number}"], (720, 400), font_size=56)
    buffer = io.BytesIO()
    if kind == "TIFF":
        second = text_image(["Page two", "NOTHING ELSE"], (720, 400), font_size=56)
        poster.save(
            buffer, format="TIFF", save_all=True, append_images=[second], compression="tiff_lzw"
        )
    else:
        poster.save(buffer, format=kind, **({"quality": 90} if kind in {"JPEG", "WEBP"} else {}))
    return buffer.getvalue()


_GOOD_BUILDERS: dict[str, tuple[str, Callable[[str, int], bytes]]] = {
    # kind -> (extension, builder)
    "text": (".txt", _good_text),
    "markdown": (".md", _good_markdown),
    "html": (".html", _good_html),
    "xhtml": (".xhtml", lambda w, n: _good_html(w, n, xhtml=True)),
    "pdf-text": (".pdf", _good_pdf),
    "pdf-chart": (".pdf", lambda w, n: _good_pdf(w, n, chart=True)),
    "pdf-scanned": (".pdf", _good_scanned_pdf),
    "docx": (".docx", _good_docx),
    "docx-picture": (".docx", lambda w, n: _good_docx(w, n, picture=True)),
    "pptx": (".pptx", _good_pptx),
    "pptx-picture": (".pptx", lambda w, n: _good_pptx(w, n, picture=True)),
    "png": (".png", lambda w, n: _good_image(w, n, "PNG")),
    "jpeg": (".jpg", lambda w, n: _good_image(w, n, "JPEG")),
    "tiff": (".tiff", lambda w, n: _good_image(w, n, "TIFF")),
    "webp": (".webp", lambda w, n: _good_image(w, n, "WEBP")),
    "gif": (".gif", lambda w, n: _good_image(w, n, "GIF")),
    "bmp": (".bmp", lambda w, n: _good_image(w, n, "BMP")),
}
_GOOD_COUNTS = {"text": 6, "markdown": 6, "html": 5, "pdf-text": 5, "pdf-chart": 4}
_GOOD_COUNTS |= {"docx": 4, "docx-picture": 2, "pptx": 4, "pptx-picture": 2, "png": 4}
_GOOD_COUNTS |= {"jpeg": 4, "tiff": 2, "pdf-scanned": 2, "xhtml": 1, "webp": 1, "gif": 1}
_GOOD_COUNTS |= {"bmp": 1}


# ------------------------------------------------------------------ bad documents


def _gradient(kind: str, frames: int = 1) -> bytes:
    """A picture with no text in it (so no decoder, however lenient, finds any)."""
    from PIL import Image

    image = Image.linear_gradient("L").resize((720, 400)).convert("RGB")
    buffer = io.BytesIO()
    extra = [image.rotate(180)] * (frames - 1)
    image.save(buffer, format=kind, **({"save_all": True, "append_images": extra} if extra else {}))
    return buffer.getvalue()


def _cut(build: Callable[[], bytes], fraction: float | int) -> Callable[[], bytes]:
    """The first ``fraction`` of the bytes (or the first N bytes, for an int)."""

    def cut() -> bytes:
        data = build()
        return data[: fraction if isinstance(fraction, int) else int(len(data) * fraction)]

    return cut


def _written_by(writer: Callable[[Path], Path]) -> Callable[[], bytes]:
    """The bytes a path-writer of `mmrag.testing.documents_bad` writes."""

    def build() -> bytes:
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            return writer(Path(folder) / "file").read_bytes()

    return build


def _pdf(bodies: list[bytes]) -> bytes:
    """Objects 1..n with a cross-reference table; the last object is the catalog."""
    output, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(bodies, start=1):
        offsets.append(len(output))
        output += b"%d 0 obj\n%b\nendobj\n" % (number, body)
    xref, size = len(output), len(bodies) + 1
    output += b"xref\n0 %d\n0000000000 65535 f \n" % size
    output += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    output += b"trailer\n<< /Size %d /Root %d 0 R >>\n" % (size, size - 1)
    return bytes(output + b"startxref\n%d\n%%%%EOF\n" % xref)


def _stream(dictionary: bytes, payload: bytes) -> bytes:
    return b"<< %b /Length %d >>\nstream\n%b\nendstream" % (dictionary, len(payload), payload)


def _one_page_pdf(content: int, resources: bytes = b"") -> list[bytes]:
    """Page, page tree and catalog for one page drawing object ``content``; appended
    after ``content`` objects, so the page is object content + 1."""
    page = content + 1
    return [
        b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Resources << %b >> "
        b"/Contents %d 0 R >>" % (page + 1, resources, content),
        b"<< /Type /Pages /Kids [%d 0 R] /Count 1 >>" % page,
        b"<< /Type /Catalog /Pages %d 0 R >>" % (page + 1),
    ]


def _pdf_content_bomb() -> bytes:
    """A blank page whose content stream inflates to ~1.1 GB of spaces."""
    bomb = _Bomb.of(b"", b" " * 4096, b"\n")
    zlib_stream = b"\x78\xda" + bomb.stream + struct.pack(">I", bomb.checksum(zlib.adler32, 1))
    stream = _stream(b"/Filter /FlateDecode", zlib_stream)
    return _pdf([stream, *_one_page_pdf(1)])


def _pdf_huge_image() -> bytes:
    """A page drawing an image XObject that declares 100,000 x 100,000 grey pixels."""
    image = _stream(
        b"/Type /XObject /Subtype /Image /Width 100000 /Height 100000 /ColorSpace /DeviceGray "
        b"/BitsPerComponent 8 /Filter /FlateDecode",
        zlib.compress(bytes(400_000), 9),
    )
    content = _stream(b"", b"q 612 0 0 792 0 0 cm /Im Do Q")
    return _pdf([image, content, *_one_page_pdf(2, b"/XObject << /Im 1 0 R >>")])


def _pdf_page_tree_loop() -> bytes:
    """A blank page whose page tree lists itself as a kid."""
    return _pdf(
        [
            _stream(b"", b""),
            b"<< /Type /Page /Parent 3 0 R /MediaBox [0 0 612 792] /Contents 1 0 R >>",
            b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>",
            b"<< /Type /Catalog /Pages 3 0 R >>",
        ]
    )


def _pdf_pages(count: int, text: bool = False, white_scan: bool = False, side: float = 0) -> bytes:
    from PIL import Image

    white = Image.new("L", (400, 520), 255)
    pages = []
    for number in range(1, count + 1):
        content = pdf_text(72, 720, 12, f"Ledger page {number}.") if text else ""
        images = {}
        if white_scan:
            content, images = pdf_image("Scan", 0, 0, 612, 792), {"Scan": white}
        pages.append(PdfPageSpec(content, images, *((side, side) if side else ())))
    return build_pdf(pages)


def _encrypted_pdf_rc4_40() -> bytes:
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import ArrayObject, ByteStringObject

    class FixedIdentifierWriter(PdfWriter):
        def generate_file_identifiers(self) -> None:  # reproducible output
            self._ID = ArrayObject([ByteStringObject(bytes(range(16, 32)))] * 2)

    page = PdfPageSpec(pdf_text(72, 720, 14, "Sealed: the gate code is 5521."), {})
    writer = FixedIdentifierWriter(clone_from=PdfReader(io.BytesIO(build_pdf([page]))))
    writer.encrypt("hostile-user", "hostile-owner", algorithm="RC4-40")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def _png_header(width: int, height: int) -> bytes:
    """A 1-bit PNG declaring width x height, with a few rows of data only."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = zlib.compress((b"\x00" + b"\xff" * ((width + 7) // 8)) * 4, 9)
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def _jpeg_header(width: int, height: int) -> bytes:
    """A real small JPEG whose frame header is patched to declare width x height."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (16, 16), 200).save(buffer, format="JPEG")
    data = bytearray(buffer.getvalue())
    frame = data.index(b"\xff\xc0") + 5  # marker, length, precision: then height, width
    data[frame : frame + 4] = struct.pack(">HH", height, width)
    return bytes(data)


def _tiff(frames: int, width: int, height: int, loop: bool = False) -> bytes:
    """A bilevel little-endian TIFF of ``frames`` pages sharing one small strip; with
    ``loop`` the last page points back to the first (an endless page chain)."""
    strip = bytes((width + 7) // 8 * min(height, 32))
    first = 8 + len(strip)
    tags = [(256, 4, width), (257, 4, height), (258, 3, 1), (259, 3, 1), (262, 3, 0)]
    tags += [(273, 4, 8), (277, 3, 1), (278, 4, height), (279, 4, len(strip))]  # (tag, type, value)
    size = 2 + 12 * len(tags) + 4
    output = bytearray(b"II*\x00" + struct.pack("<I", first) + strip)
    for index in range(frames):
        following = first + (index + 1) * size if index + 1 < frames else (first if loop else 0)
        output += struct.pack("<H", len(tags))
        output += b"".join(struct.pack("<HHII", tag, kind, 1, value) for tag, kind, value in tags)
        output += struct.pack("<I", following)
    return bytes(output)


def _gif_header(width: int, height: int) -> bytes:
    screen = struct.pack("<HHBBB", width, height, 0, 0, 0)
    image = b"," + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x4c\x01\x00"
    return b"GIF89a" + screen + image + b";"


def _bmp_header(width: int, height: int) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 54 + 1024, 0, 0, 54) + info + bytes(1024)


def _webp_header(width: int, height: int) -> bytes:
    canvas = struct.pack("<I", width - 1)[:3] + struct.pack("<I", height - 1)[:3]
    chunk = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00" + canvas
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def _with_part(base: Callable[[], bytes], part: str, text: Callable[[bytes], bytes]) -> bytes:
    """An Office package whose ``part`` is rewritten by ``text``."""
    package = base()
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        original = archive.read(part)
    return _replace_part(package, part, _member(part, text(original)))


def _with_dtd(dtd: str, body: str) -> Callable[[bytes], bytes]:
    """Insert ``dtd`` after the XML declaration and put ``body`` where the text was."""

    def rewrite(xml: bytes) -> bytes:
        declaration, _, rest = xml.partition(b"?>")
        rest = rest.replace(b"HOSTILESLOT", body.encode())
        return declaration + b"?>\n" + dtd.encode() + rest

    return rewrite


def _laughs_dtd(root: str) -> str:
    entities = ['<!ENTITY lol0 "lol">']
    entities += [f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10)]
    return f"<!DOCTYPE {root} [\n" + "\n".join(entities) + "\n]>\n"


def _quadratic_dtd(root: str) -> str:
    return f'<!DOCTYPE {root} [\n<!ENTITY big "{"x" * 50_000}">\n]>\n'


def _external_dtd(root: str, target: Path) -> str:
    return f'<!DOCTYPE {root} [\n<!ENTITY xxe SYSTEM "{target.as_uri()}">\n]>\n'


def _slot_docx() -> bytes:
    from docx import Document

    document = Document()
    document.core_properties.created = document.core_properties.modified = FIXED_TIMESTAMP
    document.add_paragraph("HOSTILESLOT")
    return _office_bytes(document)


def _slot_pptx() -> bytes:
    from pptx import Presentation

    presentation = Presentation()
    presentation.core_properties.created = presentation.core_properties.modified = FIXED_TIMESTAMP
    slide = presentation.slides.add_slide(presentation.slide_layouts[5])
    slide.shapes.title.text = "HOSTILESLOT"
    return _office_bytes(presentation)


def _zip_bomb(base: Callable[[], bytes], part: str, run: bool = False, lie: bool = False) -> bytes:
    """``part`` inflates to ~1.1 GB: of paragraphs, or with ``run`` of one text run (which
    compresses 3 times better); with ``lie`` it declares the size and checksum of its
    first KiB."""
    namespace = b'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    prefix = b'<?xml version="1.0"?>\n<w:document %b><w:body>' % namespace
    unit, suffix = b"<w:p><w:r><w:t>bomb</w:t></w:r></w:p>", b"</w:body></w:document>"
    if run:
        prefix, unit, suffix = prefix + b"<w:p><w:r><w:t>", b"A", b"</w:t></w:r></w:p>" + suffix
    bomb = _Bomb.of(prefix, unit, suffix)
    if lie:
        head = (prefix + unit * 1024)[:1024]
        member = _Member(part, bomb.stream, zlib.crc32(head), len(head))
    else:
        member = _Member(part, bomb.stream, bomb.checksum(zlib.crc32, 0), bomb.size)
    return _replace_part(base(), part, member)


def _many_entries(base: Callable[[], bytes], count: int) -> bytes:
    extra = (_Member(f"x/{n}", b"", 0, 0, zipfile.ZIP_STORED) for n in range(count))
    return _zip([*_members_of(base()), *extra])


_XHTML_HEAD = b'<?xml version="1.0"?>\n<html xmlns="http://www.w3.org/1999/xhtml"><body>'


def _office_dtd(base: tuple[Callable[[], bytes], str], dtd: str, body: str) -> Callable[[], bytes]:
    """An Office package whose part (the `_slot_*` text) becomes ``body`` under ``dtd``."""
    return lambda: _with_part(base[0], base[1], _with_dtd(dtd, body))


def _html_dtd(dtd: str, body: str, xhtml: bool = False) -> Callable[[], bytes]:
    head = '<?xml version="1.0"?>\n' if xhtml else ""
    namespace = ' xmlns="http://www.w3.org/1999/xhtml"' if xhtml else ""
    page = f"{head}{dtd}<html{namespace}><body><p>{body}</p></body></html>\n"
    return lambda: page.encode()


def _nested(head: bytes, opening: bytes, closing: bytes, depth: int) -> Callable[[], bytes]:
    """``depth`` nested elements with the only text, "deep", at the bottom."""
    return lambda: head + opening * depth + b"deep\n" + closing * depth


def _plain_zip(names: dict[str, bytes]) -> bytes:
    return _zip([_member(name, data) for name, data in names.items()])


# ------------------------------------------------------------------ the plan


_BYTE_NAMES = [
    (b"non-utf8-names/01-caf\xe9.txt", "text"),
    (b"non-utf8-names/02-\xff\xfe-notes.md", "markdown"),
    (b"non-utf8-names/03-r\xe9sum\xe9.pdf", "pdf-text"),
    (b"non-utf8-names/04-d\xefr/inner.html", "html"),
]
_NAMED: list[tuple[str, str, str]] = [  # path, category, kind
    # Sorted first, so the job that loads the models (an ingest run's first) is a plain one.
    ("0-warm-up/first-note.txt", "warm-up", "text"),
    ("unicode-names/café-ファイル.txt", "unicode-name", "text"),
    ("unicode-names/ünïcödé-😀.png", "unicode-name", "png"),
    ("odd-names/ spaced  name .txt", "odd-name", "text"),
    ("odd-names/--help.md", "odd-name", "markdown"),
    ("odd-names/#semi;colon'quote.html", "odd-name", "html"),
    ("mislabelled-readable/png-named.jpg", "mislabelled-readable", "png"),
    ("mislabelled-readable/jpeg-named.png", "mislabelled-readable", "jpeg"),
    ("mislabelled-readable/pdf-named.docx", "mislabelled-readable", "pdf-text"),
    ("mislabelled-readable/pdf-named.txt", "mislabelled-readable", "pdf-text"),
    ("mislabelled-readable/docx-named.pptx", "mislabelled-readable", "docx"),
]
_BRACKETS = {
    "open-brackets": b"[" * 200_000,
    "empty-links": b"[](" * 66_667,
    "image-openers": b"![" * 100_000,
    "backtick-runs": b" ".join(b"`" * n for n in range(1, 630)),
}
"""200 KB Markdown fillers that once took quadratic time (after one sentence to find)."""


def _good_specs() -> Iterator[_Spec]:
    """Good files of every type, then good files under hostile names and contents; each
    takes the next word of `WORDS` for its phrase."""
    plan: list[tuple[str | bytes, str, str]] = [
        (f"good/{kind}-{number:02d}{_GOOD_BUILDERS[kind][0]}", "good", kind)
        for kind, count in _GOOD_COUNTS.items()
        for number in range(1, count + 1)
    ]
    plan += [(name, "non-utf8-name", kind) for name, kind in _BYTE_NAMES]
    plan += _NAMED
    plan += [(f"brackets/{name}.md", "markdown-brackets", name) for name in _BRACKETS]
    for index, (name, category, kind) in enumerate(plan):
        word, number = WORDS[index], 11 + index * 37 % 89
        if kind in _BRACKETS:
            sentence = _sentence(word, number).encode()
            contents = _constant(sentence + b"\n\n" + _BRACKETS[kind] + b"\n")
        else:
            contents = functools.partial(_GOOD_BUILDERS[kind][1], word, number)
        yield _Spec(name, category, Expect.GOOD, contents, f"{word} {number}", kind)


def _constant(data: bytes) -> Callable[[], bytes]:
    return lambda: data


def _headed(header: bytes, size: int, seed: int) -> Callable[[], bytes]:
    """A real header followed by ``size`` random bytes."""
    return lambda: header + garbage_bytes(size, seed=seed)


def _bad(
    name: str, category: str, build: Callable[[], bytes], note: str = "", *, reason: str = ""
) -> _Spec:
    """A bad file; ``reason``: the limit that must refuse it (alternatives split by |)."""
    hints = tuple(reason.split("|")) if reason else ()
    return _Spec(f"{category}/{name}", category, Expect.BAD, build, "", note, hints)


def _bad_specs(outside: Path) -> Iterator[_Spec]:
    yield from _broken_specs()
    yield from _bomb_specs(outside)
    yield from _misfit_specs()


def _broken_specs() -> Iterator[_Spec]:
    """Truncated, random bytes behind real headers, encrypted, empty."""
    pdf = lambda: _good_pdf("TRUNCATED", 3, chart=True)  # noqa: E731
    docx = lambda: _good_docx("TRUNCATED", 3, picture=True)  # noqa: E731
    pptx = lambda: _good_pptx("TRUNCATED", 3, picture=True)  # noqa: E731
    cuts: list[tuple[str, Callable[[], bytes], tuple[float | int, ...]]] = [
        ("pdf", pdf, (0.1, 0.3, 0.5, 0.7, 0.9)),
        ("docx", docx, (0.2, 0.5, 0.8, 0.99)),
        ("pptx", pptx, (0.2, 0.5, 0.9)),
        ("png", lambda: _gradient("PNG"), (8, 33, 0.5, 0.9)),
        ("jpg", lambda: _gradient("JPEG"), (4, 0.5)),
        ("tiff", lambda: _gradient("TIFF", frames=2), (16, 0.6)),
        ("gif", lambda: _gradient("GIF"), (0.5,)),
        ("webp", lambda: _gradient("WEBP"), (0.5,)),
    ]
    for extension, build, fractions in cuts:
        for fraction in fractions:
            label = f"{fraction}b" if isinstance(fraction, int) else f"{round(fraction * 100)}pc"
            yield _bad(f"{extension}-{label}.{extension}", "truncated", _cut(build, fraction))
    headers = [
        ("pdf-small.pdf", b"%PDF-1.7\n", 4096),
        ("pdf-large.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", 65536),
        ("pdf-bare.pdf", b"%PDF-", 16),
        ("pdf-1mb.pdf", b"%PDF-1.5\n", 1 << 20),
        ("zip.docx", b"PK\x03\x04", 4096),
        ("zip.pptx", b"PK\x03\x04", 4096),
        (
            "zip-named-part.docx",
            struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, 0, 999, 9999, 17, 0)
            + b"word/document.xml",
            4096,
        ),
        ("png.png", b"\x89PNG\r\n\x1a\n", 4096),
        ("png-ihdr.png", _png_header(640, 480)[:33], 4096),
        ("jpeg.jpg", b"\xff\xd8\xff\xe0", 4096),
        ("jfif.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00", 4096),
        ("tiff-le.tif", b"II*\x00\x08\x00\x00\x00", 4096),
        ("tiff-be.tiff", b"MM\x00*\x00\x00\x00\x08", 4096),
        ("gif.gif", b"GIF89a", 4096),
        ("bmp.bmp", b"BM", 4096),
        ("webp.webp", b"RIFF\x00\x10\x00\x00WEBPVP8 ", 4096),
    ]
    for seed, (name, header, size) in enumerate(headers, start=21):
        yield _bad(name, "random-after-header", _headed(header, size, seed))
    yield _bad("rc4-128.pdf", "encrypted", _written_by(write_encrypted_pdf))
    yield _bad("rc4-40.pdf", "encrypted", _encrypted_pdf_rc4_40)
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(24) + b"\x3e\x00\x03\x00\xfe\xff"
    ole_file = lambda: ole + garbage_bytes(4096, seed=40)  # noqa: E731
    yield _bad("office-encrypted.docx", "encrypted", ole_file, "Office encryption is OLE2")
    for extension in ("pdf", "docx", "pptx", "txt", "md", "html", "png", "jpg", "tiff"):
        yield _bad(f"empty.{extension}", "empty", lambda: b"", "0 bytes")
    yield _bad("spaces.txt", "empty", lambda: b"   \n\n\t  \n")
    yield _bad("newlines.md", "empty", lambda: b"\n" * 50)
    yield _bad("no-text.html", "empty", lambda: b"<html><body>  <div></div> </body></html>")
    yield _bad("zero-pages.pdf", "empty", lambda: build_pdf([]))
    yield _bad("blank-page.pdf", "empty", lambda: build_pdf([PdfPageSpec("", {})]))


def _bomb_specs(outside: Path) -> Iterator[_Spec]:
    """Zip and pixel bombs, entity expansion, deep nesting, huge lines, long PDFs."""
    document, slide = (_slot_docx, "word/document.xml"), (_slot_pptx, "ppt/slides/slide1.xml")
    unzipped = "max_unzipped_mb|memory_mb"
    one_run = lambda: _zip_bomb(*document, run=True)  # noqa: E731
    yield _bad("docx-1gb-run.docx", "zip-bomb", one_run, reason=unzipped)
    yield _bad("pptx-1gb-paragraphs.pptx", "zip-bomb", lambda: _zip_bomb(*slide), reason=unzipped)
    lying = lambda: _zip_bomb(*document, run=True, lie=True)  # noqa: E731
    yield _bad("docx-lying-size.docx", "zip-bomb", lying, "declares 1 KiB, inflates to 1.1 GB")
    for name, base, count in [
        ("docx-100k-entries.docx", _slot_docx, 100_000),
        ("docx-20k-entries.docx", _slot_docx, 20_000),
        ("pptx-20k-entries.pptx", _slot_pptx, 20_000),
    ]:
        entries = functools.partial(_many_entries, base, count)
        yield _bad(name, "zip-bomb", entries, reason="max_zip_entries")
    pixels: list[tuple[str, Callable[[], bytes], str]] = [
        ("png-16000px.png", _written_by(write_decompression_bomb), "valid 1-bit, 256 Mpx"),
        ("png-100000px.png", lambda: _png_header(100_000, 100_000), "10 Gpx declared"),
        ("jpeg-65500px.jpg", lambda: _jpeg_header(65_500, 65_500), "4.3 Gpx declared"),
        ("tiff-100000px.tiff", lambda: _tiff(1, 100_000, 100_000), "10 Gpx declared"),
        ("gif-65535px.gif", lambda: _gif_header(65_535, 65_535), "4.3 Gpx declared"),
        ("bmp-50000px.bmp", lambda: _bmp_header(50_000, 50_000), "2.5 Gpx declared"),
        ("webp-16383px.webp", lambda: _webp_header(16_383, 16_383), "268 Mpx declared"),
        ("tiff-10000-frames.tiff", lambda: _tiff(10_000, 32, 32), "10,000 blank pages"),
        ("tiff-frame-loop.tiff", lambda: _tiff(3, 32, 32, loop=True), "page chain loops"),
        ("pdf-14400pt-page.pdf", lambda: _pdf_pages(1, side=14400), "200 x 200 inch page"),
        ("pdf-14400pt-3-pages.pdf", lambda: _pdf_pages(3, side=14400), "three of them"),
        ("pdf-huge-image.pdf", _pdf_huge_image, "image XObject of 10 Gpx"),
    ]
    for name, build, note in pixels:
        image_file = name.rsplit(".", 1)[-1] not in ("pdf", "tiff") or "100000px" in name
        reason = "max_image_pixels|too large" if image_file else ""
        reason = "max_pages" if "frames" in name else reason
        yield _bad(name, "pixel-bomb", build, note, reason=reason)
    laughs = [
        ("docx-laughs.docx", _office_dtd(document, _laughs_dtd("w:document"), "&lol9;")),
        ("docx-quadratic.docx", _office_dtd(document, _quadratic_dtd("w"), "&big;" * 50_000)),
        ("docx-external.docx", _office_dtd(document, _external_dtd("w", outside), "&xxe;")),
        ("pptx-laughs.pptx", _office_dtd(slide, _laughs_dtd("p:sld"), "&lol9;")),
        ("html-laughs.html", _html_dtd(_laughs_dtd("html"), "&lol9;")),
        ("html-external.html", _html_dtd(_external_dtd("html", outside), "&xxe;")),
        ("xhtml-laughs.xhtml", _html_dtd(_laughs_dtd("html"), "&lol9;", xhtml=True)),
        ("xhtml-external.xhtml", _html_dtd(_external_dtd("html", outside), "&xxe;", xhtml=True)),
    ]
    for name, build in laughs:
        spec = _bad(name, "entity-expansion", build)
        # An HTML parser does not expand entities: it may index the rest ("]>", "&lol9;").
        yield replace(spec, expect=Expect.CONTAINED) if name.startswith(("html", "x")) else spec
    deep = [
        ("html-div-100k.html", _nested(b"", b"<div>", b"</div>", 100_000)),
        ("html-span-100k.html", _nested(b"<p>", b"<span>", b"</span>", 100_000)),
        ("html-unclosed-100k.html", _nested(b"<html><body>", b"<div>", b"", 100_000)),
        ("html-table-10k.html", _nested(b"", b"<table><tr><td>", b"", 10_000)),
        ("html-lists-50k.html", _nested(b"", b"<ul><li>", b"", 50_000)),
        ("xhtml-div-100k.xhtml", _nested(_XHTML_HEAD, b"<div>", b"</div>", 100_000)),
        ("md-quotes-100k.md", _nested(b"", b">", b"", 100_000)),
        ("md-quotes-spaced-50k.md", _nested(b"", b"> ", b"", 50_000)),
        ("md-list-50k.md", _nested(b"", b"- ", b"", 50_000)),
        ("md-quote-list-25k.md", _nested(b"", b"> - ", b"", 25_000)),
    ]
    for name, build in deep:
        yield _bad(name, "deep-nesting", build, reason="max_depth|too deep")
    words = b"lorem ipsum dolor sit amet consectetur "
    for name, line in [
        ("txt-50mb-one-line.txt", lambda: (words * 1_290_000)[:50_000_000]),
        ("txt-5mb-one-line.txt", lambda: (words * 130_000)[:5_000_000]),
        ("txt-2mb-one-token.txt", lambda: b"x" * 2_000_000),
        ("md-3mb-one-line.md", lambda: (words * 80_000)[:3_000_000]),
    ]:
        yield _bad(name, "huge-line", line, reason="max_line_chars|max_text_mb")
    yield _bad("blank-2000-pages.pdf", "long-pdf", lambda: _pdf_pages(2000), "used to OCR each")
    yield _bad("white-scans-300-pages.pdf", "long-pdf", lambda: _pdf_pages(300, white_scan=True))
    text_pages = lambda: _pdf_pages(6000, text=True)  # noqa: E731
    yield _bad("text-6000-pages.pdf", "long-pdf", text_pages, reason="max_pages")
    bomb, note = _pdf_content_bomb, "blank page, 1.1 GB stream"
    yield _bad("content-stream-1gb.pdf", "long-pdf", bomb, note, reason="max_page_content_mb")
    yield _bad("page-tree-loop.pdf", "long-pdf", _pdf_page_tree_loop)


def _misfit_specs() -> Iterator[_Spec]:
    """Mislabelled unreadable content, unsupported types, bad files with byte names."""
    html = b"<html><body><p>Not a picture at all.</p></body></html>\n"
    id3 = b"ID3\x03\x00\x00\x00\x00\x00\x0f" + garbage_bytes(2048, seed=51)
    mz = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + garbage_bytes(2048, seed=52)
    xlsx = {"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook/>"}
    for name, build in [
        ("html-named.png", lambda: html),
        ("mp3-named.pdf", lambda: id3),
        ("zip-named.docx", lambda: _plain_zip({"readme.txt": b"hello"})),
        ("gzip-named.txt", lambda: gzip.compress(b"hello " * 100, mtime=0)),
        ("exe-named.md", lambda: mz),
        ("xlsx-named.pptx", lambda: _plain_zip(xlsx)),
    ]:
        yield _bad(name, "mislabelled-unreadable", build)
    tar = io.BytesIO()
    _tar_with(tar)
    odt = {"mimetype": b"application/vnd.oasis.opendocument.text", "content.xml": b"<office/>"}
    unsupported: list[tuple[str, bytes]] = [
        ("archive.zip", _plain_zip({"notes.txt": b"zipped notes"})),
        ("program.exe", mz),
        ("song.mp3", id3),
        ("clip.mp4", b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + garbage_bytes(1024)),
        ("notes.txt.gz", gzip.compress(b"compressed notes\n", mtime=0)),
        ("bundle.7z", b"7z\xbc\xaf\x27\x1c\x00\x04" + garbage_bytes(1024, seed=53)),
        ("sheet.xlsx", _plain_zip(xlsx)),
        ("letter.odt", _plain_zip(odt)),
        ("legacy.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + garbage_bytes(2048, seed=54)),
        ("memo.rtf", rb"{\rtf1\ansi The rich text memo.}"),
        ("table.csv", b"name,folders\narchive,12\n"),
        ("data.json", b'{"archive": 12}\n'),
        ("drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><text>svg</text></svg>'),
        ("README", b"A plain text file without an extension.\n"),
        ("blob", garbage_bytes(1024, seed=55)),
        ("archive.xyz", b"XYZARCHIVE\x00\x01" + garbage_bytes(512, seed=11)),
        ("sound.wav", b"RIFF\x24\x08\x00\x00WAVEfmt " + garbage_bytes(1024, seed=56)),
        ("bundle.tar", tar.getvalue()),
        ("photo.heic", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + garbage_bytes(512)),
        ("photo.avif", b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + bytes(64)),
        ("icon.ico", b"\x00\x00\x01\x00\x01\x00\x10\x10\x00\x00\x01\x00\x20\x00" + bytes(64)),
        ("layers.psd", b"8BPS\x00\x01" + bytes(6) + garbage_bytes(512, seed=57)),
    ]
    for name, data in unsupported:
        yield _bad(name, "unsupported", _constant(data))
    truncated = _cut(lambda: _good_pdf("TRUNCATED", 9), 0.4)
    yield _Spec(b"non-utf8-names/05-\xe9t\xe9.pdf", "non-utf8-name", Expect.BAD, truncated)
    yield _Spec(b"non-utf8-names/06-\xff.xyz", "non-utf8-name", Expect.BAD, lambda: b"\x00" * 64)


def _tar_with(buffer: io.BytesIO) -> None:
    import tarfile

    data = b"tarred notes\n"
    info = tarfile.TarInfo("notes.txt")
    info.size, info.mtime = len(data), 0
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        archive.addfile(info, io.BytesIO(data))


# ------------------------------------------------------------------ writing


def _put(root: bytes, name: str | bytes, data: bytes) -> None:
    """Write through byte paths, so names that are not UTF-8 are written as given."""
    path = root + b"/" + (name if isinstance(name, bytes) else name.encode())
    os.makedirs(os.path.dirname(path), exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def _outside_files(root: Path) -> tuple[Path, ...]:
    """Files beside the corpus folder (inside its parent) that links escape to."""
    text = root.parent / f"{root.name}-outside.txt"
    markdown = root.parent / f"{root.name}-outside.md"
    folder = root.parent / f"{root.name}-outside-dir"
    folder.mkdir(parents=True, exist_ok=True)
    for path in (text, markdown, folder / "secret.txt"):
        path.write_text(OUTSIDE_PHRASE + "\n", encoding="utf-8")
    return text, markdown, folder / "secret.txt"


def _links(root: Path, outside: tuple[Path, ...]) -> tuple[HostileFile, ...]:
    """Symbolic links under ``links/``: loops, dangling, escaping the folder."""
    folder = root / "links"
    (folder / "sub").mkdir(parents=True, exist_ok=True)
    text, markdown, secret = outside
    links = [
        ("loop-a.txt", "loop-b.txt", "loop", "a two-link loop"),
        ("loop-b.txt", "loop-a.txt", "loop", "a two-link loop"),
        ("self-loop.md", "self-loop.md", "loop", "links to itself"),
        ("sub/loop-up", "..", "loop", "a folder link to its own ancestor"),
        ("dangling.pdf", "missing-target.pdf", "dangling", "target missing"),
        ("dangling-dir", "no-such-folder", "dangling", "target folder missing"),
        ("escape-relative.txt", os.path.relpath(text, folder), "escape", "relative, outside"),
        ("escape-absolute.md", str(markdown), "escape", "absolute, outside"),
        ("escape-dir", str(secret.parent), "escape", "a folder outside"),
    ]
    entries = []
    for name, target, kind, note in links:
        (folder / name).symlink_to(target)
        entries.append(HostileFile(f"links/{name}", f"link-{kind}", Expect.SKIPPED, "", note))
    return tuple(entries)


def write_hostile_corpus(target: Path) -> HostileCorpus:
    """Write the corpus into ``target`` (created; it should be empty) and files that its
    links escape to beside it, in ``target``'s parent; return what each entry must do."""
    started = time.perf_counter()
    root = target.resolve()
    root.mkdir(parents=True, exist_ok=True)
    outside = _outside_files(root)
    files = []
    for spec in [*_good_specs(), *_bad_specs(outside[0])]:
        _put(os.fsencode(root), spec.name, spec.build())
        relative = os.fsdecode(spec.name)
        fields = (spec.category, spec.expect, spec.phrase, spec.note, spec.reason)
        files.append(HostileFile(relative, *fields))
    links = _links(root, outside)
    return HostileCorpus(root, tuple(files), links, outside, time.perf_counter() - started)
