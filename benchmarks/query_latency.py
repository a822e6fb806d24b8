"""Query latency: search and ask, p50/p95, at 1k and 100k indexed points.

    python benchmarks/query_latency.py                 # offline profile, 1k and 100k points
    python benchmarks/query_latency.py --vlm           # + ask with the SmolVLM-256M
                                                       #   architecture (random weights)

The index holds a generated 100-page PDF (real text through the real pipeline) and,
for the larger sizes, synthetic distractor points: random 384-d vectors with BM25
vectors of generated sentences, 10% of them with a 768-d pixel vector. Questions ask
about the PDF. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from eval.metrics import percentile
from mmrag.services import Services, build_services
from mmrag.settings import Settings
from mmrag.store import point_id
from mmrag.testing.documents import write_long_pdf
from mmrag.types import StoredPoint

QUESTIONS = [
    f"What blade vibration did the crew measure on page {n} at station {n % 18}?"
    for n in range(1, 101, 3)
]
WORD_TEXT = (
    "turbine blade crew station vibration inspection grid output quarter revenue chart figure "
    "table report annual growth margin segment customer product region"
)
WORDS = WORD_TEXT.split()


def add_distractors(services: Services, total: int, batch: int = 512) -> None:
    """Pad the collection to ``total`` points with synthetic ones."""
    generator = np.random.default_rng(0)
    start = services.store.count()
    dimension = services.text_embedder.dimension
    for offset in range(start, total, batch):
        count = min(batch, total - offset)
        dense = generator.standard_normal((count, dimension)).astype(np.float32)
        dense /= np.linalg.norm(dense, axis=1, keepdims=True)
        texts = [" ".join(generator.choice(WORDS, 12)) for _ in range(count)]
        sparse = services.sparse.embed_documents(texts)
        points = [
            StoredPoint(
                point_id=point_id("default", "synthetic", "x", offset + i),
                vectors={"text": dense[i].tolist(), "sparse": sparse[i]},
                payload={
                    "tenant": "default",
                    "document_id": f"synthetic-{i % 500}",
                    "kind": "text",
                    "page": 1,
                    "text": texts[i],
                    "source": "synthetic",
                },
            )
            for i in range(count)
        ]
        services.store.upsert(points)


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p95 in milliseconds, computed as the eval reports compute them."""
    return percentile(samples, 50) * 1000, percentile(samples, 95) * 1000


def measure(action: Callable[[str], object], questions: list[str]) -> tuple[float, float]:
    action(questions[0])  # warm-up: first-call allocations, caches
    samples = []
    for question in questions:
        started = time.perf_counter()
        action(question)
        samples.append(time.perf_counter() - started)
    return percentiles(samples)


def settings_for(data_dir: Path, vlm: Path | None) -> Settings:
    answerer = {"backend": "transformers", "model": str(vlm), "max_new_tokens": 64} if vlm else {}
    return Settings(data_dir=data_dir, profile="offline", answerer=answerer)


def run_size(total: int, folder: Path, vlm: Path | None, asks: int) -> dict[str, Any]:
    services = build_services(settings_for(folder / "data", vlm))
    pdf = write_long_pdf(folder / "log.pdf", pages=100, image_every=10)
    services.ingest_here([pdf], tenant="default")
    add_distractors(services, total)
    points = services.store.count()
    search = measure(lambda q: services.retriever.search(q, tenant="default"), QUESTIONS)
    ask = measure(lambda q: services.asker.ask(q, tenant="default"), QUESTIONS[:asks])
    answerer = services.answerer.model_id
    services.close()
    return {"points": points, "search": search, "ask": ask, "answerer": answerer}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000")
    parser.add_argument("--vlm", action="store_true", help="also ask with SmolVLM-256M")
    parser.add_argument("--vlm-asks", type=int, default=5)
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        vlm = None
        if arguments.vlm:
            from mmrag.testing.real_architectures import build_smolvlm_256m

            vlm = build_smolvlm_256m(Path(scratch) / "smolvlm-256m", splitting=False)
        for size in (int(s) for s in arguments.sizes.split(",")):
            rows.append(run_size(size, Path(scratch) / f"offline-{size}", None, len(QUESTIONS)))
            if vlm is not None:
                rows.append(run_size(size, Path(scratch) / f"vlm-{size}", vlm, arguments.vlm_asks))
    print("| points | answerer | search p50 ms | search p95 ms | ask p50 ms | ask p95 ms |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        search, ask = row["search"], row["ask"]
        print(
            f"| {row['points']:,} | {Path(str(row['answerer'])).name} | {search[0]:.0f} | "
            f"{search[1]:.0f} | {ask[0]:.0f} | {ask[1]:.0f} |"
        )


if __name__ == "__main__":
    main()
