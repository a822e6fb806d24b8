"""Text-embedding speed on this machine, per runtime, and agreement with PyTorch fp32.

    python benchmarks/text_embedding.py [--model DIR] [--chunks 512] [--repeats 3]

Embeds ``--chunks`` document chunks that fill the model's window (256 tokens for the
shipped all-MiniLM-L6-v2), through the loaders ingest uses,
once per runtime: PyTorch fp32, PyTorch with the default precision (bf16 autocast on CPUs
with bf16 instructions), OpenVINO with the default precision, and the same OpenVINO
export loaded alone (no PyTorch: what every start after the first uses). Prints a Markdown
table: chunks per second (best of ``--repeats``), and the lowest cosine between each
runtime's vectors and PyTorch fp32's. Then this CPU's ceiling: the model's floating-point
operations per full-window chunk (from its config), this CPU's measured matrix-multiply
rate at the model's shapes (fp32, and bf16 where the CPU has it), and each runtime's rate
as a share of that ceiling.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np
import torch

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


def flops_per_chunk(config: Any, window: int) -> float:
    """Floating-point operations of one full-window chunk through a BERT-style encoder:
    per layer and token, the four attention projections, the two feed-forward matrices
    and the attention products over the window (multiply-adds count two)."""
    hidden, inner = config.hidden_size, config.intermediate_size
    per_token = 4 * hidden * hidden + 2 * hidden * inner + 2 * window * hidden
    return 2.0 * config.num_hidden_layers * window * per_token


def matmul_rate(config: Any, dtype: torch.dtype, rows: int = 4096) -> float:
    """This CPU's best measured matrix-multiply rate (FLOP/s, all cores) at the model's
    feed-forward shape: ``rows`` tokens times hidden x intermediate."""
    left = torch.randn(rows, config.hidden_size, dtype=dtype)
    right = torch.randn(config.hidden_size, config.intermediate_size, dtype=dtype)
    operations = 2.0 * rows * config.hidden_size * config.intermediate_size
    best = float("inf")
    with torch.inference_mode():
        for _ in range(3):
            left @ right  # warm up
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(10):
                left @ right
            best = min(best, (time.perf_counter() - started) / 10)
    return operations / best


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
        label = getattr(embedder, "runtime", runtime)
        if runtime == "torch" and precision == "auto":
            label += " (bf16 autocast)" if autocast else " (default precision: fp32 on this CPU)"
        label += ", from its export alone" if runtime == "export" else ""
        rows.append((label, len(texts) / best, cosine))

    print(f"{cpu_name()}, {os.cpu_count()} CPUs; {len(texts)} chunks of {args.model}'s window")
    print()
    print("| runtime | chunks/s | lowest cosine to PyTorch fp32 |")
    print("|---|---|---|")
    for label, rate, cosine in rows:
        print(f"| {label} | {rate:.1f} | {cosine:.5f} |")

    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(args.model)
    window = embedder.max_tokens or 256
    per_chunk = flops_per_chunk(config, window)
    print()
    print(f"{per_chunk / 1e9:.2f} GFLOP per {window}-token chunk")
    print()
    print("| matrix multiply | GFLOP/s measured | ceiling chunks/s | best runtime's share |")
    print("|---|---|---|---|")
    dtypes = [("fp32", torch.float32)]
    if use_cpu_autocast("cpu", "auto"):
        dtypes.append(("bf16", torch.bfloat16))
    fastest = max(rate for _, rate, _ in rows)
    for name, dtype in dtypes:
        flops = matmul_rate(config, dtype)
        ceiling = flops / per_chunk
        print(f"| {name} | {flops / 1e9:.1f} | {ceiling:.1f} | {fastest / ceiling:.0%} |")


if __name__ == "__main__":
    main()
