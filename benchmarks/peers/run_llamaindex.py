"""LlamaIndex's default ingest pipeline on some PDFs, timed; one JSON line on stdout.

SimpleDirectoryReader (PDFs through llama-index-readers-file's PDFReader: pypdf, one
document per page) -> SentenceSplitter() (1024 tokens, 200 overlap) ->
HuggingFaceEmbedding(MiniLM, CPU) -> QdrantVectorStore on an in-memory QdrantClient,
through VectorStoreIndex.from_documents. Run by benchmarks/peers.py in its own venv:

    bench-out/peers/llamaindex/venv/bin/python benchmarks/peers/run_llamaindex.py \
        --model MINILM_DIR a.pdf b.pdf
"""

from __future__ import annotations

from pathlib import Path

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
PACKAGES = (
    "llama-index-core",
    "llama-index-readers-file",
    "llama-index-embeddings-huggingface",
    "llama-index-vector-stores-qdrant",
    "qdrant-client",
    "pypdf",
    "sentence-transformers",
    "transformers",
    "torch",
)

logger = setup_logging("llamaindex")


def main() -> None:
    arguments = parse_args(__doc__.split("\n\n")[0])
    files: list[Path] = arguments.files
    with Stopwatch() as setup:
        import pypdf  # noqa: F401 - imported by the reader on first use: not timed
        import qdrant_client
        from llama_index.core import SimpleDirectoryReader, StorageContext, VectorStoreIndex
        from llama_index.core.node_parser import SentenceSplitter
        from llama_index.embeddings.huggingface import HuggingFaceEmbedding
        from llama_index.readers.file import PDFReader  # noqa: F401 - the .pdf reader
        from llama_index.vector_stores.qdrant import QdrantVectorStore

        sent: list[str] = []

        class RecordingEmbedding(HuggingFaceEmbedding):
            """Keeps what the index embeds (counted after the timed section)."""

            def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
                sent.extend(texts)
                return super()._get_text_embeddings(texts)

        embedder = RecordingEmbedding(model_name=str(arguments.model), device="cpu")
        splitter = SentenceSplitter()  # loads its tiktoken tokenizer now, not in the clock
        # First use loads nltk's sentence tokenizer and runs the model once: not timed.
        splitter.split_text(WARM_UP)
        embedder.get_text_embedding_batch([WARM_UP])
        sent.clear()
        client = qdrant_client.QdrantClient(":memory:")
        storage = StorageContext.from_defaults(
            vector_store=QdrantVectorStore(collection_name=COLLECTION, client=client)
        )
    logger.info("setup %.1fs; ingesting %d files", setup.seconds, len(files))
    with Stopwatch() as clock:
        documents = SimpleDirectoryReader(input_files=[str(f) for f in files]).load_data()
        VectorStoreIndex.from_documents(
            documents, storage_context=storage, embed_model=embedder, transformations=[splitter]
        )
    peak = peak_now()
    logger.info("ingested in %.1fs", clock.seconds)
    read = {Path(d.metadata.get("file_path", "")).resolve() for d in documents}
    report(
        RunResult(
            pipeline="llamaindex",
            files=len(files),
            failed=sum(f.resolve() not in read for f in files),
            pages=len(documents),
            chunks=client.count(COLLECTION).count,
            texts_embedded=len(sent),
            characters_embedded=embedded_characters(sent, arguments.model),
            characters_sent=sum(len(text) for text in sent),
            seconds=clock.seconds,
            setup_seconds=setup.seconds,
            peak_self_mb=peak.self_mb,
            peak_children_mb=peak.children_mb,
            load_average_end=peak.load_average,
            notes=[
                f"SentenceSplitter chunk_size={splitter.chunk_size} "
                f"overlap={splitter.chunk_overlap} tokens; embed batch "
                f"{embedder.embed_batch_size}; torch threads {torch_threads()}; each text "
                "embedded starts with its metadata (page_label, file_path), LlamaIndex's default"
            ],
            versions=versions(PACKAGES),
        )
    )


if __name__ == "__main__":
    main()
