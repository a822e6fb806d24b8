"""Text-embedding speed on this machine, per runtime, and agreement with PyTorch fp32.

    python benchmarks/text_embedding.py [--model DIR] [--chunks 512] [--repeats 3]

Embeds ``--chunks`` document chunks that fill the model's window (256 tokens for the
shipped all-MiniLM-L6-v2), through the loaders ingest uses,
once per runtime: PyTorch fp32, PyTorch with the default precision (bf16 autocast on CPUs
with bf16 instructions), OpenVINO with the default precision, and the same OpenVINO
export loaded alone (no PyTorch: what every start after the first uses). Prints a Markdown
table: chunks per second (best of ``--repeats``), and the lowest cosine between each
runtime's vectors and PyTorch fp32's.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from mmrag.models.base import TextEmbedder
from mmrag.models.device import cpu_name, use_cpu_autocast
from mmrag.models.text import SentenceTransformerEmbedder, load_text_embedder
from mmrag.profiles import shipped_minilm_path
from mmrag.settings import TextEmbedderSettings

# (runtime, precision); "export" is the OpenVINO export loaded alone, as a second start is.
RUNTIMES = [("torch", "fp32"), ("torch", "auto"), ("openvino", "auto"), ("export", "auto")]
VOCABULARY = (
    "revenue quarter growth table figure page chart sales region market cost margin "
    "customer product report annual percent increase decrease total average model data "
    "analysis result method system value share price plan risk policy board statement"
)


def window_chunks(embedder: TextEmbedder, count: int) -> list[str]:
    """``count`` distinct texts, each at least the model's window long in tokens."""
    generator = np.random.default_rng(0)
    vocabulary = VOCABULARY.split()
    window = embedder.max_tokens or 256
    texts = []
    for _ in range(count):
        words = generator.choice(vocabulary, size=window).tolist()
        texts.append(" ".join(words))
    counted = embedder.count_tokens(texts[:8])
    assert min(counted) >= window, f"chunks of {min(counted)} tokens do not fill {window}"
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=shipped_minilm_path())
    parser.add_argument("--chunks", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=TextEmbedderSettings().batch_size)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    reference: np.ndarray | None = None
    rows = []
    texts: list[str] = []
    for runtime, precision in RUNTIMES:
        settings = TextEmbedderSettings(
            model=args.model,
            device="cpu",
            precision=precision,
            runtime="auto" if runtime == "export" else runtime,
            batch_size=args.batch_size,
        )
        embedder: TextEmbedder = (
            load_text_embedder(settings)
            if runtime == "export"
            else SentenceTransformerEmbedder.load(settings)
        )
        texts = texts or window_chunks(embedder, args.chunks)
        embedder.embed_documents(texts[: args.batch_size])  # warm up
        best = float("inf")
        vectors = np.zeros(0)
        for _ in range(args.repeats):
            started = time.perf_counter()
            vectors = embedder.embed_documents(texts)
            best = min(best, time.perf_counter() - started)
        if reference is None:
            reference = vectors
        cosine = float(np.min(np.sum(reference * vectors, axis=1)))
        autocast = use_cpu_autocast("cpu", precision)
        label = getattr(embedder, "runtime", runtime) + (
            " (bf16 autocast)" if runtime == "torch" and autocast else ""
        )
        label += ", from its export alone" if runtime == "export" else ""
        rows.append((label, len(texts) / best, cosine))

    print(f"{cpu_name()}, {os.cpu_count()} CPUs; {len(texts)} chunks of {args.model}'s window")
    print()
    print("| runtime | chunks/s | lowest cosine to PyTorch fp32 |")
    print("|---|---|---|")
    for label, rate, cosine in rows:
        print(f"| {label} | {rate:.1f} | {cosine:.5f} |")


if __name__ == "__main__":
    main()
