"""A region merge never loses text: text printed over a full-page photo stays in the hit
that stands for the photo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from mmrag.services import build_services
from mmrag.settings import Settings
from mmrag.testing.documents_bad import PdfPageSpec, build_pdf, pdf_image, pdf_text, text_image

FACT = "The Quillfeather archive holds 812 illuminated manuscripts."


def write_poster_pdf(path: Path) -> Path:
    """One page: a full-page photograph with the text laid over it (a poster, a cover)."""
    photo = text_image(["ARCHIVE OPEN DAY"], (1200, 1600), font_size=90, mode="RGB")
    speckle = np.random.default_rng(7).integers(0, 40, (1600, 1200, 3))
    pixels = np.clip(np.asarray(photo, dtype=np.int64) - speckle, 0, 255).astype(np.uint8)
    photo = Image.fromarray(pixels, "RGB")
    content = pdf_image("Photo", 0, 0, 612, 792)
    content += pdf_text(72, 700, 20, "Quillfeather Archive", bold=True)
    content += pdf_text(72, 660, 12, FACT)
    path.write_bytes(build_pdf([PdfPageSpec(content, {"Photo": photo})]))
    return path


def test_text_on_a_full_page_image_stays_in_the_hit(tmp_path: Path) -> None:
    services = build_services(Settings(data_dir=tmp_path / "data", profile="offline"))
    try:
        pdf = write_poster_pdf(tmp_path / "poster.pdf")
        assert [r.outcome for r in services.ingest_here([pdf], tenant="default")] == ["indexed"]

        hits = services.retriever.search(
            "How many manuscripts does the Quillfeather archive hold?", tenant="default"
        ).hits

        photo = [hit for hit in hits if hit.is_image]
        assert photo and "OPEN DAY" in photo[0].text.upper()  # the photo has its own text
        assert "812 illuminated manuscripts" in hits[0].text
        assert all(FACT in hit.text for hit in hits if "812" in hit.text)
    finally:
        services.close()
