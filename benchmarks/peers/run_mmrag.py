"""mmrag's ingest on some PDFs, timed; one JSON line on stdout.

The library as a program uses it: ``build_services(Settings(profile="offline", ...))`` on a
fresh data directory, models loaded and the parser server started before the clock, then
``services.ingest_here(files)``. ``--ocr off`` is the like-for-like mode (no page or image
OCR, no captions: text layers only, as the peers read them); ``--ocr on`` is the offline
profile as users run it (OCR of scanned pages and images, OCR captions). Run by
benchmarks/peers.py in the repository's venv:

    .venv/bin/python benchmarks/peers/run_mmrag.py --model MINILM_DIR --ocr off a.pdf b.pdf
"""

from __future__ import annotations

import multiprocessing.forkserver
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common import (
    WARM_UP,
    RunResult,
    Stopwatch,
    embedded_characters,
    parse_args,
    peak_now,
    report,
    setup_logging,
    versions,
)

if TYPE_CHECKING:
    from mmrag.services import Services
    from mmrag.settings import Settings

PACKAGES = ("mmrag", "pypdfium2", "qdrant-edge-py", "openvino", "transformers", "torch")

logger = setup_logging("mmrag")


def settings_for(data_dir: Path, model: Path, ocr: bool, runtime: str) -> Settings:
    """The offline profile on ``data_dir`` with MiniLM on the CPU; without OCR and
    captions unless ``ocr``."""
    from mmrag.settings import Settings

    sections: dict[str, Any] = {
        "text_embedder": {"model": str(model), "device": "cpu", "runtime": runtime}
    }
    if not ocr:
        sections["parsing"] = {"ocr": False}
        # ocr_text would still OCR every extracted image: the peers read text layers only.
        sections["captioner"] = {"backend": "none", "ocr_text": False}
    return Settings(data_dir=data_dir, profile="offline", **sections)


def record_embedded(services: Services, sent: list[str]) -> None:
    """Shadow the text embedder's ``embed_documents`` to keep every text it is given
    (chunks with their heading, and captions): counted after the timed section."""
    embedder = services.text_embedder
    original = embedder.embed_documents

    def embed_documents(texts: Sequence[str]) -> Any:
        sent.extend(texts)
        return original(texts)

    setattr(embedder, "embed_documents", embed_documents)  # noqa: B010 - an instance attribute


def warm_up(services: Services) -> None:
    """Load the models, run the text embedder once, start the parsing sandbox's fork
    server and wait until it is ready (it imports every parser: seconds), so that none
    of it is timed, as for the peers."""
    from mmrag.parsing import sandbox

    services.ingestor  # noqa: B018 - builds every model the ingest needs, starts the server
    services.text_embedder.embed_documents([WARM_UP])  # the model's first run
    if services.settings.parsing.isolate:
        sandbox._sandbox_context()  # what the first file would wait for


def stop_parser_server() -> None:
    """Stop the fork server and reap it, so that its children's peak memory (the parser
    processes) reaches this process's ``RUSAGE_CHILDREN``."""
    multiprocessing.forkserver._forkserver._stop()  # type: ignore[attr-defined]


def describe(services: Services, images: int) -> str:
    """The settings that shape the numbers, in one line."""
    settings = services.settings
    embedder = settings.text_embedder
    return (
        f"text embedder {getattr(services.text_embedder, 'runtime', 'torch')}, precision "
        f"{embedder.precision}, batch {embedder.batch_size}; chunks of up to "
        f"{settings.parsing.chunk_size} characters (overlap {settings.parsing.chunk_overlap}) "
        f"within the model's window; {images} images; captioner {settings.captioner.backend}, "
        f"parsing.ocr {settings.parsing.ocr}"
    )


def main() -> None:
    arguments = parse_args(__doc__.split("\n\n")[0], extra=("ocr", "runtime"))
    files: list[Path] = arguments.files
    ocr = arguments.ocr == "on"
    with tempfile.TemporaryDirectory(prefix="mmrag-peers-") as data_dir:
        with Stopwatch() as setup:
            from mmrag.services import build_services

            settings = settings_for(Path(data_dir), arguments.model, ocr, arguments.runtime)
            services = build_services(settings)
            warm_up(services)
            sent: list[str] = []
            record_embedded(services, sent)
        logger.info("setup %.1fs; ingesting %d files", setup.seconds, len(files))
        with Stopwatch() as clock:
            submitted = services.ingest_here(files, tenant="default")
        services.close()
        stop_parser_server()
        peak = peak_now()
        logger.info("ingested in %.1fs", clock.seconds)
        records = [s.record for s in submitted if s.record is not None]
        report(
            RunResult(
                pipeline=f"mmrag (ocr {arguments.ocr})",
                files=len(files),
                failed=sum(s.outcome == "failed" for s in submitted),
                pages=sum(r.pages for r in records),
                chunks=sum(r.chunks for r in records),
                texts_embedded=len(sent),
                characters_embedded=embedded_characters(sent, arguments.model),
                characters_sent=sum(len(text) for text in sent),
                seconds=clock.seconds,
                setup_seconds=setup.seconds,
                peak_self_mb=peak.self_mb,
                peak_children_mb=peak.children_mb,
                load_average_end=peak.load_average,
                notes=[describe(services, sum(r.images for r in records))],
                versions=versions(PACKAGES),
            )
        )


if __name__ == "__main__":  # the parser server forks: nothing may run on import
    main()
