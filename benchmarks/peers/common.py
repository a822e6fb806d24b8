"""What every peer runner shares: arguments, the embedded-characters count, peak memory and
the one JSON line a runner ends its standard output with.

Imported by the runners beside it (each runs in its own virtual environment, so this
module needs only the standard library and, for counting, ``transformers``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

COUNT_BATCH = 256  # texts per tokenizer call when counting
WARM_UP = "A first sentence. A second one."  # embedded once before the clock starts


@dataclass
class RunResult:
    """One pipeline's ingest of the files, as a runner reports it."""

    pipeline: str
    files: int
    failed: int
    pages: int
    chunks: int  # what the pipeline's store holds
    texts_embedded: int  # what went through the dense embedder (mmrag: chunks + captions)
    characters_embedded: int  # of those texts, what fits the model's window
    characters_sent: int  # of those texts, untruncated
    seconds: float  # the timed ingest alone
    setup_seconds: float  # imports, model load, parser start: not in ``seconds``
    peak_self_mb: float
    peak_children_mb: float
    load_average_end: float  # 1-minute, right after the ingest
    notes: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)


def parse_args(description: str, extra: Sequence[str] = ()) -> argparse.Namespace:
    """``--model DIR`` and the files; ``extra`` names optional flags (``--ocr``,
    ``--runtime``) a runner accepts."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", type=Path, required=True, help="MiniLM directory")
    if "ocr" in extra:
        parser.add_argument("--ocr", choices=("off", "on"), default="off")
    if "runtime" in extra:
        parser.add_argument("--runtime", choices=("auto", "torch", "openvino"), default="auto")
    parser.add_argument("files", type=Path, nargs="+")
    return parser.parse_args()


def setup_logging(name: str) -> logging.Logger:
    """Log lines to standard error; standard output carries only the result line."""
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s"
    )
    return logging.getLogger(f"peers.{name}")


class Stopwatch:
    """``with Stopwatch() as clock: ...`` then ``clock.seconds``."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0

    def __enter__(self) -> Stopwatch:
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.seconds = time.perf_counter() - self._started


def model_window(model_dir: Path) -> int:
    """The model's ``max_seq_length`` (sentence-transformers config), 256 for MiniLM."""
    config = model_dir / "sentence_bert_config.json"
    if config.exists():
        return int(json.loads(config.read_text()).get("max_seq_length", 256))
    return 256


def _batches(texts: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(texts), size):
        yield texts[start : start + size]


def embedded_characters(texts: Sequence[str], model_dir: Path) -> int:
    """Characters of ``texts`` the model sees: each text cut where MiniLM's own tokenizer
    truncates it to the window (special tokens included), measured as the end offset of
    the last kept non-special token. Run after the timed section."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=model_window(model_dir))
    total = 0
    for batch in _batches(texts, COUNT_BATCH):
        for encoding in tokenizer.encode_batch(list(batch)):
            ends = [
                end
                for (_, end), special in zip(
                    encoding.offsets, encoding.special_tokens_mask, strict=True
                )
                if not special
            ]
            total += ends[-1] if ends else 0
    return total


@dataclass(frozen=True)
class Peak:
    """Peak resident set of this process and of its largest waited-for descendant (MB),
    and the 1-minute load average, taken right after the ingest: before the counting."""

    self_mb: float
    children_mb: float
    load_average: float


def peak_now() -> Peak:
    """Linux reports ``ru_maxrss`` in KiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return Peak(own / 1024, children / 1024, os.getloadavg()[0])


def versions(packages: Sequence[str]) -> dict[str, str]:
    """Installed versions of ``packages`` (missing ones left out), and Python's."""
    found = {"python": sys.version.split()[0]}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def torch_threads() -> str:
    """How many threads torch computes with, where torch is imported."""
    torch = sys.modules.get("torch")
    return str(torch.get_num_threads()) if torch is not None else "not imported"


def report(result: RunResult) -> None:
    """Print the result as the last line of standard output (the orchestrator reads it)."""
    print(json.dumps(asdict(result)), flush=True)
