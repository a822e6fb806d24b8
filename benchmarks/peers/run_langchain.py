"""LangChain's default ingest pipeline on some PDFs, timed; one JSON line on stdout.

PyPDFLoader per file (langchain-community: pypdf, one document per page) ->
RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200) ->
HuggingFaceEmbeddings(MiniLM, CPU) -> QdrantVectorStore.from_documents(location=":memory:").
Run by benchmarks/peers.py in its own venv:

    bench-out/peers/langchain/venv/bin/python benchmarks/peers/run_langchain.py \
        --model MINILM_DIR a.pdf b.pdf
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common import (
    WARM_UP,
    RunResult,
    Stopwatch,
    embedded_characters,
    parse_args,
    peak_now,
    report,
    setup_logging,
    torch_threads,
    versions,
)

COLLECTION = "peers"
CHUNK_SIZE = 1000
CHUNK_OVERLAP = 200
PACKAGES = (
    "langchain-core",
    "langchain-community",
    "langchain-text-splitters",
    "langchain-huggingface",
    "langchain-qdrant",
    "qdrant-client",
    "pypdf",
    "sentence-transformers",
    "transformers",
    "torch",
)

logger = setup_logging("langchain")


def load_pages(files: list[Path], loader: Any) -> tuple[list[Any], int]:
    """Every page document of ``files`` and how many files failed (each fails alone)."""
    pages: list[Any] = []
    failed = 0
    for path in files:
        try:
            pages.extend(loader(str(path)).load())
        except Exception as exc:  # the per-file boundary: one bad PDF must not end the run
            logger.warning("%s failed: %s", path.name, exc)
            failed += 1
    return pages, failed


def main() -> None:
    arguments = parse_args(__doc__.split("\n\n")[0])
    files: list[Path] = arguments.files
    with Stopwatch() as setup:
        import pypdf  # noqa: F401 - imported by the loader on first use: not timed
        from langchain_community.document_loaders import PyPDFLoader
        from langchain_huggingface import HuggingFaceEmbeddings
        from langchain_qdrant import QdrantVectorStore
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        sent: list[str] = []

        class RecordingEmbeddings(HuggingFaceEmbeddings):
            """Keeps what the store embeds (counted after the timed section)."""

            def embed_documents(self, texts: list[str]) -> list[list[float]]:
                sent.extend(texts)
                return super().embed_documents(texts)

        embedder = RecordingEmbeddings(
            model_name=str(arguments.model), model_kwargs={"device": "cpu"}
        )
        splitter = RecursiveCharacterTextSplitter(
            chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP
        )
        embedder.embed_documents([WARM_UP])  # the model's first run: not timed
        sent.clear()
    logger.info("setup %.1fs; ingesting %d files", setup.seconds, len(files))
    with Stopwatch() as clock:
        pages, failed = load_pages(files, PyPDFLoader)
        chunks = splitter.split_documents(pages)
        store = QdrantVectorStore.from_documents(
            chunks, embedding=embedder, location=":memory:", collection_name=COLLECTION
        )
    peak = peak_now()
    logger.info("ingested in %.1fs", clock.seconds)
    report(
        RunResult(
            pipeline="langchain",
            files=len(files),
            failed=failed,
            pages=len(pages),
            chunks=store.client.count(COLLECTION).count,
            texts_embedded=len(sent),
            characters_embedded=embedded_characters(sent, arguments.model),
            characters_sent=sum(len(text) for text in sent),
            seconds=clock.seconds,
            setup_seconds=setup.seconds,
            peak_self_mb=peak.self_mb,
            peak_children_mb=peak.children_mb,
            load_average_end=peak.load_average,
            notes=[
                f"RecursiveCharacterTextSplitter chunk_size={CHUNK_SIZE} "
                f"overlap={CHUNK_OVERLAP} characters; torch threads {torch_threads()}; "
                "texts embedded include langchain-qdrant's one 'dummy_text' probe of the "
                "vector size"
            ],
            versions=versions(PACKAGES),
        )
    )


if __name__ == "__main__":
    main()
