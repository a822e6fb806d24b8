"""Hostile inputs, sized by argument: small ones for the default test tier, large ones
to measure what a real attack costs.

Each writer makes one file that is *valid* as far as its format goes but asks a parser
for unbounded work: a zip bomb in an Office package, a page the size of a stadium, a
10,000-frame TIFF, Markdown that is quadratic to parse, one line of 200 MB. Big
parts are streamed to disk, so writing a large one takes little memory.
"""

from __future__ import annotations

import base64
import io
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path

from mmrag.testing.documents_bad import (
    PdfPageSpec,
    build_pdf,
    chart_image,
    pdf_image,
    pdf_text,
    png_bytes,
    serialise_pdf,
)

_W_NAMESPACE = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_DOCUMENT_HEAD = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    f'<w:document xmlns:w="{_W_NAMESPACE}"><w:body>'
)
_DOCUMENT_TAIL = "</w:body></w:document>"
_CHUNK = 1 << 20


def _docx_template() -> bytes:
    from docx import Document

    buffer = io.BytesIO()
    document = Document()
    document.add_paragraph("A small memo.")
    document.save(buffer)
    return buffer.getvalue()


def _pptx_template(slides: int) -> bytes:
    from pptx import Presentation

    presentation = Presentation()
    for number in range(1, slides + 1):
        slide = presentation.slides.add_slide(presentation.slide_layouts[5])
        slide.shapes.title.text = f"Slide {number}"
    buffer = io.BytesIO()
    presentation.save(buffer)
    return buffer.getvalue()


def _rewrite_package(
    template: bytes,
    path: Path,
    replace: dict[str, Iterator[bytes]],
    extra_entries: int = 0,
) -> Path:
    """Copy an Office package to ``path``, streaming new contents for the parts in
    ``replace`` and adding ``extra_entries`` tiny parts."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with (
        zipfile.ZipFile(io.BytesIO(template)) as source,
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as target,
    ):
        for info in source.infolist():
            if info.filename in replace:
                with target.open(info.filename, "w", force_zip64=True) as part:
                    for chunk in replace[info.filename]:
                        part.write(chunk)
            else:
                target.writestr(info.filename, source.read(info.filename))
        for number in range(extra_entries):
            target.writestr(f"mmrag/padding{number}.xml", b"<a/>")
    return path


def _paragraphs(count: int, text: str) -> Iterator[bytes]:
    yield _DOCUMENT_HEAD.encode()
    paragraph = f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p>".encode()
    per_chunk = max(1, _CHUNK // len(paragraph))
    for start in range(0, count, per_chunk):
        yield paragraph * min(per_chunk, count - start)
    yield _DOCUMENT_TAIL.encode()


def write_docx_bomb(path: Path, paragraphs: int, text: str = "lorem ipsum dolor sit") -> Path:
    """A DOCX whose body is ``paragraphs`` identical paragraphs: it deflates ~1000:1,
    so 1 million paragraphs (about 45 MB of XML) take some 50 KB on disk."""
    return _rewrite_package(
        _docx_template(), path, {"word/document.xml": _paragraphs(paragraphs, text)}
    )


def write_docx_lying_size(path: Path, paragraphs: int, declared: int = 1024) -> Path:
    """A DOCX whose body of ``paragraphs`` paragraphs declares only ``declared`` bytes in
    the zip directory (zipfile believes the directory; the checksum is left as it was)."""
    write_docx_bomb(path, paragraphs)
    with zipfile.ZipFile(path) as archive:
        parts = {info.filename: archive.read(info) for info in archive.infolist()}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:  # no zip64 fields
        for name, content in parts.items():
            archive.writestr(name, content)
    package = bytearray(path.read_bytes())
    at = package.rfind(b"word/document.xml") - 46  # its directory record: the last mention
    package[at + 24 : at + 28] = struct.pack("<I", declared)  # uncompressed size
    path.write_bytes(bytes(package))
    return path


def write_docx_with_entries(path: Path, entries: int) -> Path:
    """A small, readable DOCX padded with ``entries`` extra tiny parts."""
    return _rewrite_package(_docx_template(), path, {}, extra_entries=entries)


def write_docx_billion_laughs(path: Path, levels: int = 9) -> Path:
    """A DOCX whose body declares nested entities ("billion laughs": 10**levels copies
    of one word when expanded) and uses the outermost one in a paragraph."""
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{level} "{f"&lol{level - 1};" * 10}">' for level in range(1, levels + 1)
    ]
    body = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f"<!DOCTYPE w:document [{''.join(entities)}]>"
        f'<w:document xmlns:w="{_W_NAMESPACE}"><w:body>'
        f"<w:p><w:r><w:t>&lol{levels};</w:t></w:r></w:p>{_DOCUMENT_TAIL}"
    )
    return _rewrite_package(_docx_template(), path, {"word/document.xml": iter([body.encode()])})


def write_docx_deep(path: Path, depth: int) -> Path:
    """A DOCX whose one paragraph sits in ``depth`` nested ``w:sdt`` content controls."""
    opening = "<w:sdt><w:sdtContent>" * depth
    closing = "</w:sdtContent></w:sdt>" * depth
    body = (
        f"{_DOCUMENT_HEAD}{opening}<w:p><w:r><w:t>deep</w:t></w:r></w:p>{closing}{_DOCUMENT_TAIL}"
    )
    return _rewrite_package(_docx_template(), path, {"word/document.xml": iter([body.encode()])})


def write_pptx_slides(path: Path, slides: int) -> Path:
    """A PPTX of ``slides`` slides, each with a title only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_pptx_template(slides))
    return path


def write_zip_with_entries(path: Path, entries: int, first: str = "word/document.xml") -> Path:
    """A zip (named as the caller likes) of ``entries`` empty entries, ``first`` first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(first, b"")
        for number in range(entries - 1):
            archive.writestr(f"x/{number}", b"")
    return path


# ---------------------------------------------------------------- PDF


def write_pdf_page_of_size(path: Path, width: float, height: float, text: str = "") -> Path:
    """A one-page PDF of ``width`` x ``height`` points (PDF allows up to 14,400)."""
    content = pdf_text(72, height - 72, 12, text) if text else ""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(build_pdf([PdfPageSpec(content, {}, width, height)]))
    return path


def write_blank_pdf_pages(path: Path, pages: int, text_every: int = 0) -> Path:
    """A PDF of ``pages`` blank pages (no text layer: every page counts as scanned); with
    ``text_every`` every such page shows a line of text drawn as a picture, so it is
    not blank and needs OCR."""
    from mmrag.testing.documents_bad import text_image

    specs = []
    scan = text_image(["NOT BLANK"], (600, 120), font_size=64, mode="L")
    for number in range(1, pages + 1):
        if text_every and number % text_every == 0:
            specs.append(PdfPageSpec(pdf_image("Scan", 72, 600, 300, 60), {"Scan": scan}))
        else:
            specs.append(PdfPageSpec("", {}))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(build_pdf(specs))
    return path


def write_pdf_many_images(path: Path, images: int, side: int = 80) -> Path:
    """One page drawing ``images`` distinct small pictures (each ``side`` px square)."""
    from PIL import Image

    content = pdf_text(72, 760, 12, "A page of many pictures.")
    pictures = {}
    for number in range(images):
        name = f"I{number}"
        shade = (number * 37 % 256, number * 91 % 256, 128)
        picture = Image.new("RGB", (side, side), shade)
        picture.paste((255 - shade[0], 0, 0), (0, 0, side // 2, side // 2))
        pictures[name] = picture
        content += pdf_image(name, number % 50 * 12, number // 50 % 60 * 12, 10, 10)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(build_pdf([PdfPageSpec(content, pictures)]))
    return path


def write_pdf_repeated_image(path: Path, times: int) -> Path:
    """One page drawing the same chart image ``times`` times (one XObject)."""
    content = pdf_text(72, 760, 12, "A page of one chart, drawn again and again.")
    content += "".join(
        pdf_image("Chart", 20 + n % 20 * 28, 40 + n // 20 % 30 * 22, 24, 16) for n in range(times)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(build_pdf([PdfPageSpec(content, {"Chart": chart_image("again")})]))
    return path


def write_pdf_many_text_runs(path: Path, runs: int) -> Path:
    """One page showing ``runs`` separately positioned one-letter text runs."""
    content = "".join(
        pdf_text(10 + number % 100 * 5.9, 780 - number // 100 % 150 * 5, 4, "x")
        for number in range(runs)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(build_pdf([PdfPageSpec(content, {})]))
    return path


def write_pdf_padded_content(
    path: Path, padding: int, *, in_form: bool = False, flate_twice: bool = False
) -> Path:
    """One page showing a line of text, its drawing instructions padded with
    ``padding`` spaces (a few KB compressed): in the page's content stream, or with
    ``in_form`` in a form XObject the page draws; ``flate_twice`` compresses the
    stream twice (/Filter [/FlateDecode /FlateDecode])."""
    import zlib

    instructions = (pdf_text(72, 720, 12, "Padded content page.") + " " * padding).encode()
    data, filters = zlib.compress(instructions, 9), "/FlateDecode"
    if flate_twice:
        data, filters = zlib.compress(data, 9), "[/FlateDecode /FlateDecode]"
    font = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    packed = b"<< /Filter %b /Length %d >>\nstream\n%b\nendstream"
    if in_form:
        form = (
            b"<< /Type /XObject /Subtype /Form /BBox [0 0 612 792] "
            b"/Resources << /Font << /F1 1 0 R >> >> /Filter %b /Length %d >>\n"
            b"stream\n%b\nendstream" % (filters.encode(), len(data), data)
        )
        page = b"q /Fm Do Q"
        bodies = [font, form, b"<< /Length %d >>\nstream\n%b\nendstream" % (len(page), page)]
        resources = b"/Font << /F1 1 0 R >> /XObject << /Fm 2 0 R >>"
    else:
        bodies = [font, packed % (filters.encode(), len(data), data)]
        resources = b"/Font << /F1 1 0 R >>"
    content, page_number = len(bodies), len(bodies) + 1
    bodies += [
        b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Resources << %b >> "
        b"/Contents %d 0 R >>" % (page_number + 1, resources, content),
        b"<< /Type /Pages /Kids [%d 0 R] /Count 1 >>" % page_number,
        b"<< /Type /Catalog /Pages %d 0 R >>" % (page_number + 1),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(serialise_pdf(bodies))
    return path


# ---------------------------------------------------------------- images


def write_tiff_frames(path: Path, frames: int, side: int = 8) -> Path:
    """A TIFF of ``frames`` tiny frames."""
    from PIL import Image

    first = Image.new("L", (side, side), 255)
    rest = [Image.new("L", (side, side), number % 256) for number in range(frames - 1)]
    path.parent.mkdir(parents=True, exist_ok=True)
    first.save(path, format="TIFF", save_all=True, append_images=rest)
    return path


def write_tiff_loop(path: Path, frames: int = 3, side: int = 32) -> Path:
    """A bilevel TIFF of ``frames`` pages whose last page points back to the first."""
    strip = bytes((side + 7) // 8 * side)
    first = 8 + len(strip)
    tags = [(256, 4, side), (257, 4, side), (258, 3, 1), (259, 3, 1), (262, 3, 0)]
    tags += [(273, 4, 8), (277, 3, 1), (278, 4, side), (279, 4, len(strip))]
    size = 2 + 12 * len(tags) + 4
    output = bytearray(b"II*\x00" + struct.pack("<I", first) + strip)
    for index in range(frames):
        following = first + (index + 1) * size if index + 1 < frames else first
        output += struct.pack("<H", len(tags))
        output += b"".join(struct.pack("<HHII", tag, kind, 1, value) for tag, kind, value in tags)
        output += struct.pack("<I", following)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(output))
    return path


def write_tiff_growing(path: Path, first_side: int, second_side: int) -> Path:
    """A two-page TIFF whose second page is much larger than its first."""
    from PIL import Image

    first = Image.new("L", (first_side, first_side), 255)
    second = Image.new("L", (second_side, second_side), 255)
    path.parent.mkdir(parents=True, exist_ok=True)
    first.save(path, format="TIFF", save_all=True, append_images=[second], compression="tiff_lzw")
    return path


def write_gif_frames(path: Path, frames: int, side: int = 16) -> Path:
    """An animated GIF of ``frames`` distinct frames."""
    from PIL import Image

    images = []
    for number in range(frames):
        frame = Image.new("L", (side, side), 0)
        frame.putpixel((number % side, number // side % side), 255)
        images.append(frame)
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], optimize=False)
    return path


# ---------------------------------------------------------------- text, Markdown, HTML


def write_bracket_markdown(path: Path, size: int) -> Path:
    """Markdown of ``size`` characters of unmatched brackets: quadratic (or worse) for
    Python-Markdown's inline patterns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# Brackets\n\n" + "[" * (size // 2) + "](" * (size // 4) + "\n")
    return path


def write_long_line(path: Path, chars: int, word: str = "lorem ") -> Path:
    """A text file of one line of ``chars`` characters (repeated words), streamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    chunk = (word * (_CHUNK // len(word) + 1))[:_CHUNK]
    with path.open("w", encoding="utf-8") as handle:
        for start in range(0, chars, _CHUNK):
            handle.write(chunk[: min(_CHUNK, chars - start)])
        handle.write("\n")
    return path


def write_nested_html(path: Path, depth: int, tag: str = "div") -> Path:
    """An HTML page with one sentence inside ``depth`` nested ``tag`` elements."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"<html><body><p>Before the nest.</p>{f'<{tag}>' * depth}deep inside"
        f"{f'</{tag}>' * depth}</body></html>",
        encoding="utf-8",
    )
    return path


def write_nested_markdown(path: Path, depth: int, marker: str = ">") -> Path:
    """Markdown with a line nested ``depth`` block quotes deep (or, with marker="-",
    ``depth`` list levels)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if marker == ">":
        body = ">" * depth + " deep inside\n"
    else:
        body = "".join("  " * level + f"{marker} level {level}\n" for level in range(depth))
    path.write_text(f"# Nested\n\nBefore the nest.\n\n{body}", encoding="utf-8")
    return path


def write_html_data_uris(path: Path, images: int, side: int = 200) -> Path:
    """An HTML page of ``images`` inline data-URI PNG charts of ``side`` px."""
    chart = png_bytes(chart_image("uri", size=(side, side)))
    encoded = base64.b64encode(chart).decode("ascii")
    tags = "".join(f'<img src="data:image/png;base64,{encoded}" alt="c{n}">' for n in range(images))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<html><body><p>Charts.</p>{tags}</body></html>", encoding="utf-8")
    return path
