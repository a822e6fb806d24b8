"""How the embedded store behaves at scale: upsert, reopen, filtered count and delete.

    python benchmarks/store_scale.py --points 100000

Points look like mmrag's: a 384-d text vector and a sparse BM25 vector on every point,
a 768-d SigLIP vector on one in ten, payload with document id, kind and page; 1,000
documents of 100 points each. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mmrag.settings import StoreSettings
from mmrag.store import (
    CollectionSchema,
    PointFilter,
    VectorKind,
    VectorSpec,
    VectorStore,
    open_store,
    point_id,
)
from mmrag.types import StoredPoint, VectorValue

TEXT_DIMENSION, IMAGE_DIMENSION, POINTS_PER_DOCUMENT = 384, 768, 100
SCHEMA = CollectionSchema(
    (
        VectorSpec("text", VectorKind.DENSE, TEXT_DIMENSION),
        VectorSpec("sparse", VectorKind.SPARSE),
        VectorSpec("image", VectorKind.DENSE, IMAGE_DIMENSION),
    )
)


def make_points(start: int, count: int, generator: np.random.Generator) -> list[StoredPoint]:
    text = generator.standard_normal((count, TEXT_DIMENSION), dtype=np.float32)
    points = []
    for offset in range(count):
        index = start + offset
        document = f"doc-{index // POINTS_PER_DOCUMENT:05d}"
        terms = sorted({int(t) for t in generator.integers(0, 50_000, 12)})
        vectors: dict[str, VectorValue] = {
            "text": text[offset].tolist(),
            "sparse": (terms, [1.0] * len(terms)),
        }
        if index % 10 == 0:
            vectors["image"] = generator.standard_normal(IMAGE_DIMENSION).tolist()
        points.append(
            StoredPoint(
                point_id=point_id("default", document, "hash", index),
                vectors=vectors,
                payload={
                    "tenant": "default",
                    "document_id": document,
                    "kind": "image" if index % 10 == 0 else "text",
                    "page": index % POINTS_PER_DOCUMENT + 1,
                    "run_id": "r1",
                    "text": f"point {index}",
                },
            )
        )
    return points


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def fill(store: VectorStore, total: int, batch: int) -> float:
    generator = np.random.default_rng(0)
    seconds = 0.0
    for start in range(0, total, batch):
        points = make_points(start, min(batch, total - start), generator)
        seconds += timed(functools.partial(store.upsert, points))
    return seconds


def run(mode: str, total: int, batch: int, root: Path) -> dict[str, float]:
    settings = StoreSettings(qdrant_url=None if mode == "embedded" else ":memory:")
    store = open_store(settings, embedded_root=root)
    store.ensure_collection(SCHEMA)
    upsert = fill(store, total, batch)
    one_document = PointFilter(match={"document_id": "doc-00500"})
    results = {
        "upsert points/s": total / upsert,
        "filtered count ms": 1000 * timed(lambda: store.count(one_document)),
        "document payloads ms": 1000 * timed(lambda: store.payloads(one_document)),
        "delete document ms": 1000 * timed(lambda: store.delete(one_document)),
    }
    if mode == "embedded":
        store.close()
        reopened = open_store(settings, embedded_root=root)
        results["reopen + count s"] = timed(lambda: reopened.count())
        reopened.close()
    else:
        store.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--modes", default="embedded,qdrant-client-memory")
    arguments = parser.parse_args()
    rows = {}
    for mode in arguments.modes.split(","):
        with tempfile.TemporaryDirectory() as folder:
            rows[mode] = run(mode.split("-")[0], arguments.points, arguments.batch, Path(folder))
    metrics = sorted({name for row in rows.values() for name in row})
    print(f"| {arguments.points:,} points | " + " | ".join(metrics) + " |")
    print("|---" * (len(metrics) + 1) + "|")
    for mode, row in rows.items():
        cells = [f"{row[m]:,.1f}" if m in row else "-" for m in metrics]
        print(f"| {mode} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
