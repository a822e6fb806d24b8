"""The ``page`` channel's speed: pages/s to embed, and search latency at 10k and 100k pages.

A benchmark, not a test. Two parts, each optional:

1. **Embedding** (``--models``). ColModernVBERT (ModernVBERT/colmodernvbert-merged, ~250M
   parameters) and, on request, ColQwen2 (vidore/colqwen2-v1.0-hf, Qwen2-VL-2B inside) are
   built from their real configs with random weights, saved with ``save_pretrained``
   together with a processor carrying the checkpoint's image preprocessing and a tokenizer
   trained offline (padded to the real vocabulary size), then loaded through the product's
   loader, `TransformersPageEmbedder.load`, so the timed code is the ingest's. Synthetic
   letter pages (1275x1650 px, a 150-dpi render) go through ``embed_pages`` after a
   warm-up (a page on the CPU, a batch on a GPU); queries through ``embed_query`` one at a
   time, as a search does. Random
   weights compute exactly as trained ones do: the speed and the rows per page are real,
   the vectors are not.
2. **Search** (``--corpus``). An embedded store (`EdgeStore`, qdrant-edge) with the page
   channel's own vectors (`PageChannel.vectors`: ``page`` float16 multi-vectors without a
   graph, ``page_pooled`` dense with HNSW), filled with random unit multi-vectors of the
   rows and dimension that step 1 measured (or ``--rows``/``--dim``). Queries (random unit
   multi-vectors of ``--query-rows`` rows) go through `PageChannel.request` ->
   `EdgeStore.search`: the pooled first stage then MaxSim (``first_stage`` candidates), and
   MaxSim over every page (``first_stage = 0``, exact). Timed twice: as ingest leaves the
   store (nothing in the product runs qdrant-edge's optimizer, so ``page_pooled`` has no
   HNSW graph yet), and after ``optimize()`` built it. Overlap@10 of the two-stage top 10
   with the exact top 10 is reported too; random vectors give the pooled vector nothing
   to find, so it is a pessimistic floor, not the recall on real pages. When
   pages x rows x dimension x 2 bytes exceeds ``--max-gb``, rows per page are cut for that
   corpus, and the output says so.

    # CPU default: ColModernVBERT on 4 pages, then 10k and 100k pages (~25 min on 2 cores)
    HF_HUB_OFFLINE=1 nice -n 10 .venv/bin/python benchmarks/page_channel.py \\
        --out bench-out/page_channel.json
    # 10k pages only (the 100k store needs ~25 GB of disk: its WAL is ~2.4x the vectors)
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/page_channel.py --corpus 10000
    # search only, rows per page given (ColModernVBERT makes 1141 on a letter page)
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/page_channel.py --models none --rows 1141
    # GPU (H100/H200): embedding only; the store runs on the CPU whatever the device
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/page_channel.py --device cuda \\
        --precision bf16 --pages 128 --batch-size 16 --models colmodernvbert,colqwen2 \\
        --corpus none --out bench-out/page_channel_gpu.json

Prints Markdown tables; ``--out`` writes every figure as JSON (with machine, load average
and git commit).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from queue_workers import write_report  # a sibling script

from eval.metrics import percentile
from mmrag.channels.page import PAGE_VECTOR, POOLED_VECTOR, PageChannel
from mmrag.models.base import MultiVector, PageEmbedder, pooled
from mmrag.models.device import cpu_name
from mmrag.store.base import CollectionSchema, PointFilter
from mmrag.store.edge import EdgeStore
from mmrag.types import StoredPoint

if TYPE_CHECKING:
    from PIL import Image
    from transformers import PreTrainedTokenizerBase

logger = logging.getLogger("benchmarks.page_channel")

TENANT = "default"
PAGE_SIZE = (1275, 1650)  # US letter rendered at 150 dpi
QUESTIONS = [
    "What was the total revenue in the third quarter?",
    "Which station logged the highest blade vibration?",
    "Who signed the inspection report in March 2024?",
    "How many crew members were on the night shift?",
    "What does the chart on page 4 show about margins?",
    "List the safety incidents reported last year.",
    "Which region grew fastest according to the table?",
    "When is the next turbine maintenance scheduled?",
]
WORDS = [
    *("turbine", "blade", "station", "vibration", "inspection", "report", "quarterly"),
    *("revenue", "margin", "segment", "customer", "region", "growth", "crew", "shift"),
    *("maintenance", "schedule", "table", "figure", "summary", "total"),
]

# ModernVBERT/colmodernvbert-merged: ModernBERT-base text (ColModernVBertConfig's default
# text config) with 40 added tokens, a SigLIP2 base vision tower at 512 px (the default
# config has 224 px: 14x14 patches do not pixel-shuffle by 4), 64 tokens per 512 px tile.
MODERNVBERT_VOCABULARY = 50368 + 40
MODERNVBERT_VISION_SIZE = 512
# Its preprocessor_config.json: Idefics3ImageProcessor, longest edge resized to 2048 px,
# cut into 512 px tiles plus a 512 px global view, Lanczos, normalised to [-1, 1].
MODERNVBERT_RESIZE_EDGE, MODERNVBERT_TILE_EDGE, PIL_LANCZOS = 2048, 512, 1
# vidore/colqwen2-v1.0: Qwen2-VL-2B; pages capped at 768 merged tokens (768 x 28 x 28 px).
QWEN2VL_2B_TEXT = {
    "hidden_size": 1536,
    "intermediate_size": 8960,
    "num_hidden_layers": 28,
    "num_attention_heads": 12,
    "num_key_value_heads": 2,
    "max_position_embeddings": 32768,
    "rms_norm_eps": 1e-6,
    "vocab_size": 151936,
    "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]},
}
QWEN2VL_2B_VISION = {"depth": 32, "embed_dim": 1280, "hidden_size": 1536, "num_heads": 16}
COLQWEN2_MAX_PIXELS = 768 * 28 * 28
QWEN2_TOKENIZER_SIZE = 151643 + 22  # byte-level BPE + special tokens (the model pads to 151936)


# --------------------------------------------------------------------------- models


def _tokenizer(
    special: dict[str, str], extra: list[str], size: int, padding_side: str
) -> PreTrainedTokenizerBase:
    """A byte-level BPE trained in under a second with the model's special tokens, padded to
    ``size`` ids (real vocabularies are this size; the embedding matrix follows it)."""
    from transformers import PreTrainedTokenizerFast

    from mmrag.testing.real_architectures import _pad_vocabulary
    from mmrag.testing.tiny_models import _train_byte_level_tokenizer

    trained = _train_byte_level_tokenizer(list(dict.fromkeys([*special.values(), *extra])))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=_pad_vocabulary(trained, size),
        padding_side=padding_side,
        model_max_length=32768,
        **special,
    )
    tokenizer.add_special_tokens({"additional_special_tokens": extra})
    return tokenizer


def _save(model: Any, processor: Any, target: Path) -> int:
    """Save model and processor where the loader reads them; the parameter count."""
    model.eval().save_pretrained(str(target))
    processor.save_pretrained(str(target))
    return sum(parameter.numel() for parameter in model.parameters())


def build_colmodernvbert(target: Path) -> int:
    """ColModernVBERT's architecture (random weights) + processor; returns the parameters."""
    import torch
    from transformers import (
        ColModernVBertConfig,
        ColModernVBertForRetrieval,
        ColModernVBertProcessor,
        Idefics3ImageProcessor,
        ModernBertConfig,
        ModernVBertConfig,
        SiglipVisionConfig,
    )

    from mmrag.testing.tiny_models import (
        IDEFICS3_IMAGE_TOKENS,
        IDEFICS3_ROW_COLUMN_TOKENS,
        SEED,
        _token_id,
    )
    from mmrag.testing.tiny_retrievers import MODERNVBERT_SPECIAL_TOKENS

    tokenizer = _tokenizer(
        dict(MODERNVBERT_SPECIAL_TOKENS),
        IDEFICS3_IMAGE_TOKENS + IDEFICS3_ROW_COLUMN_TOKENS,
        MODERNVBERT_VOCABULARY,
        padding_side="right",  # an encoder: ModernBERT pads on the right
    )
    # The sub-configs ColModernVBertConfig() fills in: ModernBERT-base and SigLIP base.
    text = {
        **ModernBertConfig().to_dict(),
        "vocab_size": len(tokenizer),
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "cls_token_id": tokenizer.bos_token_id,
        "sep_token_id": tokenizer.eos_token_id,
    }
    vision = {**SiglipVisionConfig().to_dict(), "image_size": MODERNVBERT_VISION_SIZE}
    vlm = ModernVBertConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=_token_id(tokenizer, "<image>"),
    )
    torch.manual_seed(SEED)
    model = ColModernVBertForRetrieval(ColModernVBertConfig(vlm_config=vlm.to_dict()))
    patches = MODERNVBERT_VISION_SIZE // vision["patch_size"]
    image_processor = Idefics3ImageProcessor(
        do_image_splitting=True,
        size={"longest_edge": MODERNVBERT_RESIZE_EDGE},
        max_image_size={"longest_edge": MODERNVBERT_TILE_EDGE},
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
        resample=PIL_LANCZOS,
    )
    processor = ColModernVBertProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        image_seq_len=(patches // vlm.pixel_shuffle_factor) ** 2,  # 64
    )
    return _save(model, processor, target)


def build_colqwen2(target: Path) -> int:
    """ColQwen2's architecture (Qwen2-VL-2B, random weights) + processor; the parameters."""
    import torch
    from transformers import (
        ColQwen2Config,
        ColQwen2ForRetrieval,
        ColQwen2Processor,
        Qwen2VLConfig,
        Qwen2VLImageProcessor,
    )

    from mmrag.testing.tiny_models import (
        END_OF_TEXT_TOKEN,
        IM_END_TOKEN,
        IM_START_TOKEN,
        QWEN2VL_VISION_TOKENS,
        SEED,
        _token_id,
    )

    special = {"pad_token": END_OF_TEXT_TOKEN, "eos_token": IM_END_TOKEN}
    extra = [IM_START_TOKEN, *QWEN2VL_VISION_TOKENS]
    tokenizer = _tokenizer(special, extra, QWEN2_TOKENIZER_SIZE, padding_side="left")
    start, end, image, video = (_token_id(tokenizer, t) for t in QWEN2VL_VISION_TOKENS)
    text = {**QWEN2VL_2B_TEXT, "pad_token_id": tokenizer.pad_token_id}
    vlm = Qwen2VLConfig(
        text_config=text,
        vision_config=QWEN2VL_2B_VISION,
        vision_start_token_id=start,
        vision_end_token_id=end,
        image_token_id=image,
        video_token_id=video,
        tie_word_embeddings=True,
    )
    torch.manual_seed(SEED)
    model = ColQwen2ForRetrieval(ColQwen2Config(vlm_config=vlm.to_dict(), embedding_dim=128))
    size = {"shortest_edge": 56 * 56, "longest_edge": COLQWEN2_MAX_PIXELS}
    processor = ColQwen2Processor(
        image_processor=Qwen2VLImageProcessor(size=size), tokenizer=tokenizer
    )
    return _save(model, processor, target)


BUILDERS: dict[str, Callable[[Path], int]] = {
    "colmodernvbert": build_colmodernvbert,
    "colqwen2": build_colqwen2,
}


# --------------------------------------------------------------------------- embedding


def letter_pages(count: int) -> list[Image.Image]:
    """``count`` distinct synthetic letter pages: a title, a ruled table and body text."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=22)
    pages = []
    for number in range(count):
        generator = np.random.default_rng(number)
        page = Image.new("RGB", PAGE_SIZE, "white")
        draw = ImageDraw.Draw(page)
        draw.text((120, 110), f"Inspection report {number + 1}", fill="black", font=font)
        draw.rectangle((120, 200, 1155, 420), outline="black", width=2)
        for row in range(1, 5):
            draw.line((120, 200 + 44 * row, 1155, 200 + 44 * row), fill="black")
        for line in range(36):
            words = " ".join(generator.choice(WORDS, 11))
            draw.text((120, 470 + 30 * line), words, fill=(30, 30, 30), font=font)
        pages.append(page)
    return pages


@dataclass
class EmbedResult:
    model: str
    parameters_millions: float
    device: str
    precision: str
    weights_dtype: str
    batch_size: int
    pages: int
    build_seconds: float
    load_seconds: float
    warmup_seconds: float
    embed_seconds: float
    rows_per_page: list[int]
    grid: list[int] | None
    dimension: int
    query_rows: list[int]
    query_ms: list[float]

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.embed_seconds

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "pages_per_second": self.pages_per_second}


def measure_embedding(name: str, arguments: argparse.Namespace, work: Path) -> EmbedResult:
    """Build ``name``, load it as ingest does, and time pages and queries (warm-up apart)."""
    from mmrag.models.device import resolve_device, use_cpu_autocast, weights_dtype
    from mmrag.models.pages import TransformersPageEmbedder
    from mmrag.settings import PageEmbedderSettings

    target = work / name
    started = time.perf_counter()
    parameters = BUILDERS[name](target)
    built = time.perf_counter() - started
    logger.info("%s: %.1fM parameters, built in %.0f s", name, parameters / 1e6, built)
    settings = PageEmbedderSettings(
        model=str(target),
        device=arguments.device,
        precision=arguments.precision,
        batch_size=arguments.batch_size,
    )
    started = time.perf_counter()
    embedder = TransformersPageEmbedder.load(settings)
    loaded = time.perf_counter() - started
    device = resolve_device(arguments.device)
    # Warm-up (first-call allocations; on a GPU, kernels picked per batch shape): one page
    # on the CPU, where a page takes a minute, one full batch on a GPU.
    warmup = arguments.batch_size if device.startswith("cuda") else 1
    pages = letter_pages(warmup + arguments.pages)
    started = time.perf_counter()
    embedder.embed_pages(pages[:warmup])
    embedder.embed_query(QUESTIONS[0])
    warmed = time.perf_counter() - started
    logger.info("%s: loaded in %.0f s, warm-up (%d pages) %.0f s", name, loaded, warmup, warmed)
    started = time.perf_counter()
    embedded = embedder.embed_pages(pages[warmup:])
    seconds = time.perf_counter() - started
    queries, query_seconds = [], []
    for question in QUESTIONS:
        began = time.perf_counter()
        queries.append(embedder.embed_query(question))
        query_seconds.append(time.perf_counter() - began)
    autocast = " + bf16 autocast" if use_cpu_autocast(device, arguments.precision) else ""
    return EmbedResult(
        model=name,
        parameters_millions=parameters / 1e6,
        device=device,
        precision=arguments.precision,
        weights_dtype=str(weights_dtype(device, arguments.precision)).removeprefix("torch.")
        + autocast,
        batch_size=arguments.batch_size,
        pages=len(embedded),
        build_seconds=built,
        load_seconds=loaded,
        warmup_seconds=warmed,
        embed_seconds=seconds,
        rows_per_page=[len(page.vectors) for page in embedded],
        grid=list(embedded[0].grid) if embedded[0].grid else None,
        dimension=embedder.dimension,
        query_rows=[len(query.vectors) for query in queries],
        query_ms=[1000 * s for s in query_seconds],
    )


# --------------------------------------------------------------------------- search


class ShapeOnly(PageEmbedder):
    """Stands in for the model where the channel only needs its dimension."""

    def __init__(self, dimension: int) -> None:
        super().__init__(model_id="synthetic", batch_size=1)
        self.dimension = dimension

    def _embed_page_batch(self, images: list[Image.Image]) -> list[MultiVector]:
        raise NotImplementedError("synthetic vectors only")

    def _embed_query_batch(self, texts: list[str]) -> list[MultiVector]:
        raise NotImplementedError("synthetic vectors only")


def unit_rows(generator: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Random unit vectors along the last axis, float32."""
    values = generator.standard_normal(shape, dtype=np.float32)
    return values / np.linalg.norm(values, axis=-1, keepdims=True)


@dataclass
class Phase:
    """One query configuration over one store state."""

    name: str
    first_stage: int
    seconds: list[float] = field(default_factory=list)
    top: list[list[str]] = field(default_factory=list)

    def ms(self, q: float) -> float:
        return 1000 * percentile(self.seconds, q)


@dataclass
class SearchResult:
    corpus: int
    rows: int
    rows_wanted: int
    dimension: int
    multivector_gb: float
    insert_seconds: float
    fill_seconds: float
    optimize_seconds: float
    segments: dict[str, int]
    disk_gb: float
    phases: list[Phase]
    overlap_at_10: dict[str, float]
    resident_gb: dict[str, float]  # after the queries: anonymous and file-backed (mmap)

    def as_dict(self) -> dict[str, Any]:
        phases = [
            {"name": p.name, "first_stage": p.first_stage, "p50_ms": p.ms(50), "p95_ms": p.ms(95)}
            for p in self.phases
        ]
        values = {k: v for k, v in asdict(self).items() if k != "phases"}
        return {**values, "phases": phases, "insert_pages_per_second": self.insert_rate}

    @property
    def insert_rate(self) -> float:
        return self.corpus / self.insert_seconds


def fill(
    store: EdgeStore, corpus: int, rows: int, dimension: int, batch: int
) -> tuple[float, float]:
    """Upsert ``corpus`` pages as ingest writes them (`PageChannel.encode_documents`'s vectors,
    payload fields the filters use); the seconds inside ``upsert`` and in all."""
    generator = np.random.default_rng(0)
    inside, started, reported = 0.0, time.perf_counter(), 0
    for offset in range(0, corpus, batch):
        count = min(batch, corpus - offset)
        pages = unit_rows(generator, (count, rows, dimension))  # [count, rows, dimension]
        points = [
            StoredPoint(
                point_id=f"00000000-0000-4000-8000-{offset + i:012d}",
                vectors={
                    PAGE_VECTOR: pages[i].tolist(),
                    POOLED_VECTOR: pooled(MultiVector(pages[i])).tolist(),
                },
                payload={
                    "tenant": TENANT,
                    "kind": "page",
                    "document_id": f"doc-{(offset + i) // 20:06d}",
                    "page": (offset + i) % 20 + 1,
                },
            )
            for i in range(count)
        ]
        began = time.perf_counter()
        store.upsert(points)
        inside += time.perf_counter() - began
        if offset + count - reported >= corpus // 10 or offset + count == corpus:
            reported = offset + count
            elapsed = time.perf_counter() - started
            logger.info(
                "%s / %s pages in %.0f s (%.0f pages/s upsert, %.0f pages/s with generation)",
                f"{reported:,}",
                f"{corpus:,}",
                elapsed,
                reported / inside,
                reported / elapsed,
            )
    return inside, time.perf_counter() - started


def run_phase(store: EdgeStore, channel: PageChannel, phase: Phase, queries: np.ndarray) -> Phase:
    """Time each query through the channel's request and the store's search (1 warm-up)."""
    where = PointFilter(match={"tenant": TENANT})

    def search(rows: np.ndarray) -> list[str]:
        request = channel.request(rows.tolist(), where, limit=10)
        return [hit.point_id for hit in store.search([request])[0]]

    search(queries[0])
    for rows in queries:
        started = time.perf_counter()
        phase.top.append(search(rows))
        phase.seconds.append(time.perf_counter() - started)
    logger.info("%s: p50 %.0f ms, p95 %.0f ms", phase.name, phase.ms(50), phase.ms(95))
    return phase


def resident_gb() -> dict[str, float]:
    """This process's resident memory: anonymous, and file-backed (the store's mmaps)."""
    status = Path("/proc/self/status")
    fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
    return {
        name: int(fields.get(key, "0 kB").split()[0]) / 1e6
        for name, key in (("anon", "RssAnon"), ("file", "RssFile"))
    }


def overlap(found: list[list[str]], exact: list[list[str]]) -> float:
    """Mean share of the exact top 10 that a two-stage top 10 holds."""
    shares = [len(set(a) & set(b)) / max(len(b), 1) for a, b in zip(found, exact, strict=True)]
    return float(np.mean(shares))


def rows_within(corpus: int, rows: int, dimension: int, max_gb: float) -> int:
    """``rows``, or fewer when the float16 multi-vectors would exceed ``max_gb``."""
    fitting = int(max_gb * 1e9 // (corpus * dimension * 2))
    return max(1, min(rows, fitting))


def optimize(store: EdgeStore) -> tuple[float, dict[str, int]]:
    """Run qdrant-edge's segment optimizers, which build the ``page_pooled`` HNSW graph; the
    seconds and the segment counts. EdgeStore has no method for it and nothing in mmrag
    calls one, so the benchmark reaches the adapter's open shard."""
    shard = store._shard
    segments = {"before": shard.info().segments_count}
    started = time.perf_counter()
    shard.optimize()
    seconds = time.perf_counter() - started
    info = shard.info()
    segments.update(after=info.segments_count, indexed_vectors=info.indexed_vectors_count)
    logger.info("optimize: %.0f s, %s", seconds, segments)
    return seconds, segments


def measure_search(
    corpus: int, rows_wanted: int, arguments: argparse.Namespace, work: Path
) -> SearchResult:
    dimension = arguments.dim
    rows = rows_within(corpus, rows_wanted, dimension, arguments.max_gb)
    gigabytes = corpus * rows * dimension * 2 / 1e9
    store = EdgeStore(root=work, collection=f"pages-{corpus}")
    embedder = ShapeOnly(dimension)
    two_stage = PageChannel(embedder, arguments.first_stage)
    exact = PageChannel(embedder, 0)
    store.ensure_collection(CollectionSchema(tuple(two_stage.vectors())))
    logger.info(
        "%s pages x %d rows x %d: %.2f GB float16", f"{corpus:,}", rows, dimension, gigabytes
    )
    inserted, filled = fill(store, corpus, rows, dimension, arguments.insert_batch)
    queries = unit_rows(
        np.random.default_rng(1), (arguments.queries, arguments.query_rows, dimension)
    )
    name = f"first stage {arguments.first_stage}"
    before = run_phase(
        store, two_stage, Phase(f"{name}, before optimize", arguments.first_stage), queries
    )
    optimized, segments = optimize(store)
    after = run_phase(
        store, two_stage, Phase(f"{name}, after optimize", arguments.first_stage), queries
    )
    full = run_phase(store, exact, Phase("exact MaxSim (first stage 0)", 0), queries)
    disk = sum(f.stat().st_size for f in store.path.rglob("*") if f.is_file()) / 1e9
    resident = resident_gb()
    store.close()
    shutil.rmtree(store.path, ignore_errors=True)
    return SearchResult(
        corpus=corpus,
        rows=rows,
        rows_wanted=rows_wanted,
        dimension=dimension,
        multivector_gb=gigabytes,
        insert_seconds=inserted,
        fill_seconds=filled,
        optimize_seconds=optimized,
        segments=segments,
        disk_gb=disk,
        phases=[before, after, full],
        overlap_at_10={
            "before optimize": overlap(before.top, full.top),
            "after optimize": overlap(after.top, full.top),
        },
        resident_gb=resident,
    )


# --------------------------------------------------------------------------- report


def machine(arguments: argparse.Namespace) -> dict[str, Any]:
    from importlib.metadata import version

    import torch
    import transformers

    from mmrag.models.device import cpu_has_fast_bf16

    gpu = torch.cuda.get_device_name() if arguments.device == "cuda" else None
    return {
        "cpu": cpu_name(),
        "cores": len(os.sched_getaffinity(0)),
        "cpu_bf16": cpu_has_fast_bf16(),
        "gpu": gpu,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "transformers": transformers.__version__,
        "qdrant_edge": version("qdrant-edge-py"),
        "python": platform.python_version(),
        "git_commit": git_commit(),
    }


def git_commit() -> str:
    """HEAD, marked ``+dirty`` with uncommitted changes (eval.report's git_commit, without
    importing the eval runner's whole pipeline)."""
    folder = Path(__file__).parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=folder,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if status else "")


def print_embedding(results: Sequence[EmbedResult]) -> None:
    print(
        "\n| model | params | device / weights | batch | pages | pages/s | s/page | rows/page "
        "| grid | dim | query rows | query p50 ms | load s |"
    )
    print("|" + "---|" * 13)
    for r in results:
        rows = f"{min(r.rows_per_page)}-{max(r.rows_per_page)}"
        grid = "x".join(map(str, r.grid)) if r.grid else "-"
        print(
            f"| {r.model} | {r.parameters_millions:.0f}M | {r.device} / {r.weights_dtype} "
            f"({r.precision}) | {r.batch_size} | {r.pages} | {r.pages_per_second:.2f} "
            f"| {1 / r.pages_per_second:.1f} | {rows} | {grid} | {r.dimension} "
            f"| {min(r.query_rows)}-{max(r.query_rows)} | {percentile(r.query_ms, 50):.0f} "
            f"| {r.load_seconds:.0f} |"
        )


def print_search(results: Sequence[SearchResult], arguments: argparse.Namespace) -> None:
    print(
        f"\nQueries: {arguments.queries} random unit multi-vectors of {arguments.query_rows} "
        "rows each, top 10, tenant filter, through PageChannel.request -> EdgeStore.search."
    )
    for r in results:
        if r.rows < r.rows_wanted:
            print(
                f"NOTE {r.corpus:,} pages: {r.rows_wanted} rows/page x {r.dimension} x 2 B would "
                f"be {r.corpus * r.rows_wanted * r.dimension * 2 / 1e9:.1f} GB > --max-gb "
                f"{arguments.max_gb:g}; rows cut to {r.rows}/page. MaxSim's cost grows with "
                f"rows: at full rows expect about {r.rows_wanted / r.rows:.1f}x the exact scan's "
                "latency, and the two-stage query's MaxSim part grows the same way."
            )
    print(
        "\n| pages | rows/page | float16 GB | upsert pages/s | optimize s | disk GB "
        "| RSS GB anon + file | query | p50 ms | p95 ms | overlap@10 vs exact |"
    )
    print("|" + "---|" * 11)
    for r in results:
        for phase in r.phases:
            key = phase.name.rsplit(", ", 1)[-1]
            share = r.overlap_at_10.get(key)
            print(
                f"| {r.corpus:,} | {r.rows} | {r.multivector_gb:.2f} | {r.insert_rate:.0f} "
                f"| {r.optimize_seconds:.0f} | {r.disk_gb:.1f} "
                f"| {r.resident_gb['anon']:.1f} + {r.resident_gb['file']:.1f} "
                f"| {phase.name} | {phase.ms(50):.0f} | {phase.ms(95):.0f} "
                f"| {'-' if share is None else f'{share:.2f}'} |"
            )
    chance = ", ".join(
        f"{min(1, arguments.first_stage / r.corpus):.3f} at {r.corpus:,}" for r in results
    )
    print(
        "\noverlap@10: share of the exact MaxSim top 10 that the two-stage top 10 holds. Random "
        "vectors give the pooled (mean) vector nothing to find, so the first stage does no "
        f"better than chance (first_stage / pages: {chance}): a pessimistic floor, not the "
        "recall on real pages, where the mean of a page's patches does carry its content. "
        "File-backed RSS is the store's memory-mapped files (page cache, reclaimable)."
    )


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto")
    parser.add_argument(
        "--models",
        help="comma list of colmodernvbert, colqwen2, or none "
        "(default: colmodernvbert on cpu, both on cuda)",
    )
    parser.add_argument("--pages", type=int, help="pages timed (default 4 on cpu, 128 on cuda)")
    parser.add_argument("--batch-size", type=int, default=4, help="page_embedder.batch_size")
    parser.add_argument("--corpus", default="10000,100000", help="store sizes, or none")
    parser.add_argument("--rows", type=int, help="rows per page (default: as embedded)")
    parser.add_argument("--dim", type=int, help="dimension (default: as embedded, else 128)")
    parser.add_argument("--query-rows", type=int, default=20)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--first-stage", type=int, default=200)
    parser.add_argument("--max-gb", type=float, default=6.0, help="float16 multi-vectors")
    parser.add_argument("--insert-batch", type=int, default=64)
    parser.add_argument("--workdir", type=Path, help="models and stores here (default: temp)")
    parser.add_argument("--out", type=Path, help="write the figures as JSON")
    arguments = parser.parse_args(argv)
    if arguments.models is None:
        arguments.models = (
            "colmodernvbert" if arguments.device == "cpu" else "colmodernvbert,colqwen2"
        )
    arguments.models = [m for m in arguments.models.split(",") if m and m != "none"]
    unknown = sorted(set(arguments.models) - set(BUILDERS))
    if unknown:
        parser.error(f"unknown models {unknown}; use {', '.join(BUILDERS)} or none")
    arguments.pages = arguments.pages or (4 if arguments.device == "cpu" else 128)
    corpus = "" if arguments.corpus == "none" else arguments.corpus
    arguments.corpus = [int(size) for size in corpus.split(",") if size]
    if arguments.corpus and not arguments.models and arguments.rows is None:
        parser.error("--rows is needed when no model is embedded (e.g. --rows 1100)")
    return arguments


def run(arguments: argparse.Namespace, work: Path) -> tuple[list[EmbedResult], list[SearchResult]]:
    embedded = [measure_embedding(name, arguments, work) for name in arguments.models]
    if embedded:
        print_embedding(embedded)
    rows = arguments.rows or (int(np.mean(embedded[0].rows_per_page)) if embedded else 0)
    arguments.dim = arguments.dim or (embedded[0].dimension if embedded else 128)
    searched = [measure_search(size, rows, arguments, work) for size in arguments.corpus]
    if searched:
        print_search(searched, arguments)
    return embedded, searched


def main(argv: list[str] | None = None) -> int:
    arguments = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("mmrag").setLevel(logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    info = machine(arguments)
    loads = {"start": os.getloadavg()}
    started = time.perf_counter()
    if arguments.workdir:
        arguments.workdir.mkdir(parents=True, exist_ok=True)
        embedded, searched = run(arguments, arguments.workdir.resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="mmrag-page-bench-") as work:
            embedded, searched = run(arguments, Path(work))
    loads["end"] = os.getloadavg()
    total = time.perf_counter() - started
    print(
        f"\nMachine: {info['cpu']}, {info['cores']} cores, GPU {info['gpu'] or 'none'}; "
        f"load average {loads['start'][0]:.1f} at start, {loads['end'][0]:.1f} at end. "
        f"Total {total:.0f} s."
    )
    if arguments.out:
        payload = {
            "arguments": {
                k: str(v) if isinstance(v, Path) else v for k, v in vars(arguments).items()
            },
            "machine": info,
            "load_average": loads,
            "total_seconds": total,
            "embedding": [result.as_dict() for result in embedded],
            "search": [result.as_dict() for result in searched],
        }
        write_report(arguments.out, payload)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
