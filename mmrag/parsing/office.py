"""DOCX and PPTX: text and tables through unstructured, pictures through python-docx/-pptx.

unstructured emits no Image elements for DOCX and none with pixels for PPTX, so
pictures are read from the package parts directly, with their page (DOCX: counted
from the same page-break markers unstructured counts) or slide number and position.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mmrag.parsing.base import ParsedFile
from mmrag.parsing.images import embedded_image
from mmrag.parsing.unstructured_adapter import partition, to_text_elements
from mmrag.settings import ParsingSettings
from mmrag.types import Element, ElementKind, ImageElement

EMU_PER_POINT = 12700
FILE_NAME = re.compile(r"^[\w\-. ]+\.(png|jpe?g|gif|bmp|tiff?|emf|wmf|svg|webp)$", re.IGNORECASE)
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
_R = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_WP = "{http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing}"


def _opc_errors() -> tuple[type[BaseException], ...]:
    from docx.opc.exceptions import PackageNotFoundError
    from lxml.etree import XMLSyntaxError

    return (PackageNotFoundError, XMLSyntaxError)


def parse_docx(path: Path, settings: ParsingSettings) -> ParsedFile:
    from unstructured.partition.docx import partition_docx

    elements = partition(partition_docx, path, "docx", _opc_errors(), infer_table_structure=True)
    texts = list(to_text_elements(elements))
    parsed = ParsedFile(
        file_type="docx", page_count=max((t.page for t in texts), default=1), elements=iter(())
    )

    def all_elements() -> Iterator[Element]:
        yield from texts
        yield from _docx_images(path, settings, parsed.warnings)

    parsed.elements = all_elements()
    return parsed


def _docx_images(path: Path, settings: ParsingSettings, warnings: list[str]) -> Iterator[Element]:
    """Pictures in body order. Pages are counted as unstructured counts them (rendered page
    breaks and section breaks), so a picture's page agrees with its text's page."""
    import docx

    document = docx.Document(str(path))
    parts = document.part.related_parts
    page = 1
    for paragraph in document.element.body.iter(f"{_W}p"):
        for node in paragraph.iter():
            if node.tag == f"{_W}lastRenderedPageBreak":
                page += 1
            elif node.tag == f"{_A}blip" and (rid := node.get(f"{_R}embed")) in parts:
                image = embedded_image(
                    parts[rid].blob,
                    document=path,
                    where=f"page {page}",
                    settings=settings,
                    warnings=warnings,
                )
                if image is not None:
                    yield ImageElement(
                        image=image,
                        page=page,
                        kind=ElementKind.IMAGE,
                        alt_text=_docx_alt_text(node),
                    )
        if paragraph.find(f"{_W}pPr/{_W}sectPr") is not None:
            page += 1  # a section break inside a paragraph ends the page


def _docx_alt_text(blip: Any) -> str:
    """The picture's alt text (``wp:docPr/@descr``), found on its drawing ancestor."""
    for ancestor in blip.iterancestors():
        doc_properties = ancestor.find(f"{_WP}docPr")
        if doc_properties is not None:
            return str(doc_properties.get("descr") or doc_properties.get("title") or "")
    return ""


def parse_pptx(path: Path, settings: ParsingSettings) -> ParsedFile:
    from pptx.exc import PackageNotFoundError
    from unstructured.partition.pptx import partition_pptx

    elements = partition(
        partition_pptx,
        path,
        "pptx",
        (*_opc_errors(), PackageNotFoundError),
        infer_table_structure=True,
    )
    texts = list(to_text_elements(elements))
    import pptx

    presentation = pptx.Presentation(str(path))
    parsed = ParsedFile(
        file_type="pptx", page_count=max(len(presentation.slides), 1), elements=iter(())
    )

    def all_elements() -> Iterator[Element]:
        yield from texts
        for number, slide in enumerate(presentation.slides, start=1):
            title_shape = slide.shapes.title
            title = title_shape.text_frame.text.strip() if title_shape is not None else ""
            yield from _slide_images(slide.shapes, number, path, settings, parsed.warnings, title)

    parsed.elements = all_elements()
    return parsed


def _picture_context(shape: Any, slide_title: str) -> str:
    """The slide title and the picture's alt text; PowerPoint's default alt text is the
    file name, which says nothing, so it is dropped."""
    described = shape._element.xpath("./*[1]/p:cNvPr/@descr")
    alt = str(described[0]).strip() if described else ""
    if FILE_NAME.match(alt):
        alt = ""
    return " - ".join(part for part in (slide_title, alt) if part)


def _slide_images(
    shapes: Any,
    number: int,
    path: Path,
    settings: ParsingSettings,
    warnings: list[str],
    slide_title: str = "",
) -> Iterator[Element]:
    from pptx.enum.shapes import MSO_SHAPE_TYPE
    from pptx.exc import PythonPptxError

    for shape in shapes:
        try:
            if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
                yield from _slide_images(
                    shape.shapes, number, path, settings, warnings, slide_title
                )
                continue
            blob = shape.image.blob  # pictures, and placeholders holding a picture
        except (AttributeError, ValueError, KeyError):
            continue  # not a picture
        except (PythonPptxError, NotImplementedError) as exc:
            warnings.append(f"slide {number}: shape {shape.shape_id} unreadable ({exc}); skipped")
            continue
        image = embedded_image(
            blob, document=path, where=f"slide {number}", settings=settings, warnings=warnings
        )
        if image is None:
            continue
        bbox = None
        if shape.left is not None and shape.width is not None:
            left, top = shape.left / EMU_PER_POINT, shape.top / EMU_PER_POINT
            bbox = (
                left,
                top,
                left + shape.width / EMU_PER_POINT,
                top + shape.height / EMU_PER_POINT,
            )
        yield ImageElement(
            image=image,
            page=number,
            kind=ElementKind.IMAGE,
            bbox=bbox,
            alt_text=_picture_context(shape, slide_title),
        )
