"""Search latency of the embedded store at scale, before, during and after the vector
index is built in the background.

    python -m benchmarks.store_index --points 100000 [--queries 200]

Fills the store with mmrag-like points (`store_scale.make_points`: a 384-d text vector
and a sparse vector on every point, a 768-d image vector on one in ten), then times
the store's part of a search as mmrag runs it: one batched request of a dense query on
`text`, a sparse query and a dense query on `image`, 50 candidates each, restricted to
the tenant. Measured three times: exact (no index), while `index_in_background` builds
the index in its child process, and once the index is in. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.store_scale import IMAGE_DIMENSION, SCHEMA, TEXT_DIMENSION, fill
from mmrag.store import ChannelQuery, PointFilter
from mmrag.store.edge import EdgeStore

TENANT = PointFilter(match={"tenant": "default"})


def one_search(store: EdgeStore, generator: np.random.Generator) -> float:
    terms = sorted({int(t) for t in generator.integers(0, 50_000, 4)})
    queries = [
        ChannelQuery("text", generator.standard_normal(TEXT_DIMENSION).tolist(), 50, TENANT),
        ChannelQuery("sparse", (terms, [1.0] * len(terms)), 50, TENANT),
        ChannelQuery("image", generator.standard_normal(IMAGE_DIMENSION).tolist(), 50, TENANT),
    ]
    started = time.perf_counter()
    store.search(queries)
    return 1000 * (time.perf_counter() - started)


def row(label: str, latencies: list[float], extra: str = "") -> str:
    p50, p95 = np.percentile(latencies, 50), np.percentile(latencies, 95)
    return (
        f"| {label} | {len(latencies)} | {p50:.1f} | {p95:.1f} | {max(latencies):.1f} | {extra} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    arguments = parser.parse_args()
    generator = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as folder:
        store = EdgeStore(root=Path(folder), collection="c", index_after_points=1)
        store.ensure_collection(SCHEMA)
        fill(store, arguments.points, 1000)
        for _ in range(5):
            one_search(store, generator)  # warm
        exact = [one_search(store, generator) for _ in range(arguments.queries)]

        started = time.perf_counter()
        store.index_in_background()
        during = []
        while store.indexing():
            during.append(one_search(store, generator))
            time.sleep(0.05)  # a query every 50 ms, as a lightly used service sees
        store.wait_for_index()
        built_s = time.perf_counter() - started
        for _ in range(5):
            one_search(store, generator)
        indexed = [one_search(store, generator) for _ in range(arguments.queries)]
        store.close()

    print(f"{arguments.points:,} points; the store's part of a search (3 channels, batched)")
    print()
    print("| phase | searches | p50 ms | p95 ms | max ms | |")
    print("|---|---|---|---|---|---|")
    print(row("exact (no index)", exact))
    print(row("while the index builds", during, f"build + swap {built_s:.0f} s"))
    print(row("indexed", indexed))


if __name__ == "__main__":
    main()
