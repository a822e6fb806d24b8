"""Ingest throughput (pages/s, images/s, chunks/s) of three model configurations.

Runs the real ingest pipeline (`build_services(...).ingest_here`) on one generated,
deterministic corpus, once per configuration, each with a fresh data directory:

- ``offline``: the offline profile (shipped all-MiniLM-L6-v2, OCR captions, no pixels).
- ``siglip-base``: plus the real SigLIP base architecture (siglip-base-patch16-224,
  random weights) as the pixel channel.
- ``siglip-base+smolvlm-256m``: plus the real SmolVLM-256M-Instruct architecture
  (random weights) as the captioner.

Random weights do not emit the end-of-sequence token (the report counts the generated
tokens), so every caption runs the full ``captioner.max_new_tokens``: the VLM row is the
worst case for that setting. Only the ingest is timed; model loading is reported apart,
and the seconds spent inside each model role are broken out. Timings are wall clock: the
report prints the load average so a run that shared the CPU can be recognised.

    HF_HUB_OFFLINE=1 python benchmarks/ingest_throughput.py  # --pages 200 --vlm-pages 20
    ... --only siglip-base+smolvlm-256m --no-image-splitting --precision fp32 --json out.json
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mmrag.services import Services
    from mmrag.settings import Settings

from mmrag.testing.real_architectures import build_siglip_base, build_smolvlm_256m

logger = logging.getLogger("benchmarks.ingest_throughput")

OFFLINE = "offline"
SIGLIP = "siglip-base"
SMOLVLM = "siglip-base+smolvlm-256m"
CONFIGURATIONS = (OFFLINE, SIGLIP, SMOLVLM)
CHART_EVERY = 10


# --------------------------------------------------------------------------- corpus


def write_corpus(target: Path, pages: int) -> list[Path]:
    """A ``pages``-page born-digital PDF with a chart every 10 pages, then the good
    documents (images, scanned PDF, docx, pptx, html, ...). Files the HTML and Markdown
    documents reference are written beside them but are not ingested on their own."""
    from mmrag.testing.documents import write_good_documents, write_long_pdf

    long_pdf = write_long_pdf(target / f"long-{pages}p.pdf", pages, image_every=CHART_EVERY)
    return [long_pdf, *write_good_documents(target / "good").values()]


def describe_corpus(files: list[Path], pages: int) -> str:
    kinds = sorted({f.suffix.lstrip(".") for f in files[1:]})
    charts = pages // CHART_EVERY
    return (
        f"{len(files)} files: a {pages}-page born-digital PDF ({charts} chart"
        f"{'' if charts == 1 else 's'}) "
        f"+ {len(files) - 1} good documents ({', '.join(kinds)})"
    )


# --------------------------------------------------------------------------- running


@dataclass
class Result:
    """One configuration's ingest of one corpus."""

    configuration: str
    corpus: str
    files: int
    failed: int
    pages: int
    images: int
    chunks: int
    points: int
    seconds: float
    load_seconds: float
    captioned: int = 0  # images run through the captioner (cache misses)
    generated_tokens: list[int] = field(default_factory=list)  # per VLM caption
    load_average: float = 0.0  # 1-minute load average at the end: above ~cores = contention
    stages: dict[str, float] = field(default_factory=dict)

    def rate(self, count: int) -> float:
        return count / self.seconds if self.seconds else 0.0


class StageClock:
    """Accumulates wall time spent inside wrapped model methods, by stage name."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, owner: object, method: str, stage: str) -> None:
        """Shadow ``owner.method`` with a timed version (an instance attribute)."""
        original: Callable[..., Any] = getattr(owner, method)
        self.seconds.setdefault(stage, 0.0)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[stage] += time.perf_counter() - started

        setattr(owner, method, timed)


def count_generated_tokens(model: Any, stop_ids: set[int], counts: list[int]) -> None:
    """Shadow ``model.generate`` to append, per generated row, the new tokens before the
    first end-of-sequence or padding token to ``counts``."""
    original: Callable[..., Any] = model.generate

    @functools.wraps(original)
    def generate(*args: Any, **kwargs: Any) -> Any:
        output = original(*args, **kwargs)  # [batch, prompt + new]
        for row in output[:, kwargs["input_ids"].shape[1] :].tolist():
            counts.append(next((i for i, t in enumerate(row) if t in stop_ids), len(row)))
        return output

    model.generate = generate


def instrument(services: Services, generated: list[int]) -> StageClock:
    """Time the model calls; a VLM captioner also reports its generated lengths."""
    clock = StageClock()
    clock.wrap(services.text_embedder, "embed_documents", "text embedding")
    if services.image_embedder is not None:
        clock.wrap(services.image_embedder, "embed_images", "image embedding")
    captioner = services.captioner
    if captioner is not None:
        clock.wrap(captioner, "caption", "OCR captions" if captioner.reads_text else "VLM captions")
    model = getattr(captioner, "_model", None)  # TransformersCaptioner's VLM (diagnostic)
    if model is not None and hasattr(model, "generate"):
        config = model.generation_config
        eos = config.eos_token_id
        stop_ids = {config.pad_token_id, *(eos if isinstance(eos, list) else [eos])} - {None}
        count_generated_tokens(model, stop_ids, generated)
    return clock


def settings_for(
    name: str, data_dir: Path, models: dict[str, Path], precision: str | None
) -> Settings:
    """The offline profile, plus the local SigLIP / SmolVLM directories the name asks for;
    ``precision`` (fp32, bf16, auto) for every model role, or the settings default."""
    from mmrag.settings import Settings

    roles: dict[str, Any] = {"text_embedder": {}, "image_embedder": {}, "captioner": {}}
    if name in (SIGLIP, SMOLVLM):
        roles["image_embedder"] = {"backend": "siglip", "model": str(models[SIGLIP])}
    if name == SMOLVLM:
        roles["captioner"] = {"backend": "transformers", "model": str(models[SMOLVLM])}
    if precision is not None:
        for section in roles.values():
            section["precision"] = precision
    return Settings(profile="offline", data_dir=data_dir, **roles)


def run_configuration(
    name: str,
    files: list[Path],
    corpus: str,
    data_dir: Path,
    models: dict[str, Path],
    precision: str | None,
) -> Result:
    """Load the models (timed apart), then time the ingest of ``files`` alone."""
    from mmrag.services import build_services

    shutil.rmtree(data_dir, ignore_errors=True)  # no caption cache from an earlier run
    logger.info("%s: loading models", name)
    with build_services(settings_for(name, data_dir, models, precision)) as services:
        started = time.perf_counter()
        services.ingestor  # noqa: B018 - builds every model the ingest needs
        load_seconds = time.perf_counter() - started
        for note in services.profile.notes:
            logger.info("%s: %s", name, note)
        generated: list[int] = []
        clock = instrument(services, generated)
        logger.info("%s: ingesting %s", name, corpus)
        started = time.perf_counter()
        submitted = services.ingest_here(files, tenant="default", force=True)
        results = [s.record for s in submitted if s.record is not None]
        seconds = time.perf_counter() - started
        captioner = services.captioner
    return Result(
        configuration=name,
        corpus=corpus,
        files=len(submitted),
        failed=sum(s.outcome == "failed" for s in submitted),
        pages=sum(r.pages for r in results),
        images=sum(r.images for r in results),
        chunks=sum(r.chunks for r in results),
        points=sum(r.points for r in results),
        seconds=seconds,
        load_seconds=load_seconds,
        captioned=captioner.items_processed if captioner is not None else 0,
        stages=clock.seconds,
        generated_tokens=generated,
        load_average=os.getloadavg()[0],
    )


# --------------------------------------------------------------------------- report


def machine() -> dict[str, Any]:
    import torch
    import transformers

    from mmrag.models.device import cpu_has_fast_bf16, cpu_name

    return {
        "cpu": cpu_name(),
        "cores": len(os.sched_getaffinity(0)),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_bf16": cpu_has_fast_bf16(),
        "python": platform.python_version(),
    }


def results_table(results: list[Result]) -> str:
    header = (
        "| configuration | pages | images | chunks | points | seconds | pages/s | images/s "
        "| chunks/s | model load s |"
    )
    rows = [header, "|" + "---|" * 10]
    for r in results:
        rows.append(
            f"| {r.configuration} | {r.pages} | {r.images} | {r.chunks} | {r.points} "
            f"| {r.seconds:.1f} | {r.rate(r.pages):.2f} | {r.rate(r.images):.2f} "
            f"| {r.rate(r.chunks):.2f} | {r.load_seconds:.1f} |"
        )
    return "\n".join(rows)


def stages_table(results: list[Result]) -> str:
    """Seconds inside each model call; the rest is parsing, page OCR, saving and upserts."""
    names = list(dict.fromkeys(s for r in results for s in r.stages))
    rows = [
        "| configuration | "
        + " | ".join(names)
        + " | rest (parse, page + image OCR, store) | total |",
        "|" + "---|" * (len(names) + 3),
    ]
    for r in results:
        cells = [f"{r.stages[n]:.1f}" if n in r.stages else "-" for n in names]
        rest = r.seconds - sum(r.stages.values())
        rows.append(
            f"| {r.configuration} | " + " | ".join(cells) + f" | {rest:.1f} | {r.seconds:.1f} |"
        )
    return "\n".join(rows)


def precision_used(precision: str | None) -> str:
    """What the model roles ran in on the CPU, in words."""
    from mmrag.models.device import use_cpu_autocast
    from mmrag.settings import TextEmbedderSettings

    setting = precision or TextEmbedderSettings().precision
    mode = "bf16 autocast" if use_cpu_autocast("cpu", setting) else "fp32"
    return f"precision={setting} -> {mode} compute, fp32 weights"


def print_report(
    results: list[Result], info: dict[str, Any], splitting: bool, precision: str | None
) -> None:
    bf16 = "with" if info["cpu_bf16"] else "without"
    print(
        f"Machine: {info['cpu']}, {info['cores']} cores ({bf16} AVX512-BF16/AMX); torch "
        f"{info['torch']} ({info['torch_threads']} threads), transformers "
        f"{info['transformers']}, Python {info['python']}; CPU only; models "
        f"{precision_used(precision)}."
    )
    print()
    for r in results:
        failed = f"; {r.failed} FAILED" if r.failed else ""
        print(
            f"- {r.configuration}: {r.corpus}{failed}; 1-min load average at the end "
            f"{r.load_average:.1f} ({info['cores']} cores)"
        )
    print()
    print(results_table(results))
    print()
    print("Seconds inside model calls (of the ingest seconds above):")
    print()
    print(stages_table(results))
    for r in results:
        if r.configuration.startswith(SMOLVLM) and r.captioned:
            print_vlm_note(r, splitting)


def print_vlm_note(result: Result, splitting: bool) -> None:
    from mmrag.settings import CaptionerSettings

    limit = CaptionerSettings().max_new_tokens
    view = "2048 px, split into 512 px tiles + a global view" if splitting else "one 512 px view"
    per_image = result.stages.get("VLM captions", 0.0) / result.captioned
    tokens = result.generated_tokens or [0]
    ran_to_limit = (
        "every caption ran to the limit: random weights do not emit end-of-sequence, "
        "so this is the worst case for that setting"
        if min(tokens) >= limit
        else "some captions stopped early at end-of-sequence"
    )
    print()
    print(
        f"{result.configuration}: {result.captioned} images captioned, {per_image:.1f} s each "
        f"(images resized to {view}). Generated tokens per caption: min {min(tokens)}, "
        f"max {max(tokens)}, captioner.max_new_tokens {limit}: {ran_to_limit}."
    )


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=200, help="pages of the long PDF")
    parser.add_argument(
        "--vlm-pages", type=int, default=20, help=f"long PDF pages for {SMOLVLM} (slow)"
    )
    parser.add_argument("--only", choices=CONFIGURATIONS, help="run one configuration")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument(
        "--no-image-splitting",
        action="store_true",
        help="SmolVLM sees one 512 px view per image instead of 2048 px tiles",
    )
    parser.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        help="precision of every model role (default: the settings default, auto: bf16 "
        "autocast on CPUs with AVX512-BF16 or AMX, else fp32)",
    )
    parser.add_argument("--keep", type=Path, help="work here (kept) instead of a temp dir")
    return parser.parse_args(argv)


def build_models(names: list[str], target: Path, splitting: bool) -> dict[str, Path]:
    models: dict[str, Path] = {}
    if SIGLIP in names or SMOLVLM in names:
        started = time.perf_counter()
        models[SIGLIP] = build_siglip_base(target / "siglip-base")
        logger.info("built SigLIP base in %.1fs", time.perf_counter() - started)
    if SMOLVLM in names:
        started = time.perf_counter()
        models[SMOLVLM] = build_smolvlm_256m(target / "smolvlm-256m", splitting=splitting)
        logger.info("built SmolVLM-256M in %.1fs", time.perf_counter() - started)
    return models


def run_all(arguments: argparse.Namespace, work: Path) -> list[Result]:
    names = [arguments.only] if arguments.only else list(CONFIGURATIONS)
    splitting = not arguments.no_image_splitting
    models = build_models(names, work / "models", splitting)
    corpora: dict[int, list[Path]] = {}
    results = []
    for name in names:
        pages = arguments.vlm_pages if name == SMOLVLM else arguments.pages
        if pages not in corpora:
            corpora[pages] = write_corpus(work / f"corpus-{pages}p", pages)
        files = corpora[pages]
        corpus = describe_corpus(files, pages)
        data_dir = work / f"data-{name}"
        result = run_configuration(name, files, corpus, data_dir, models, arguments.precision)
        if name == SMOLVLM and not splitting:
            result.configuration += " (no image splitting)"
        results.append(result)
        logger.info("%s: done in %.1fs", name, result.seconds)
    return results


def main(argv: list[str] | None = None) -> int:
    arguments = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    started = time.perf_counter()
    if arguments.keep:
        arguments.keep.mkdir(parents=True, exist_ok=True)
        results = run_all(arguments, arguments.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="mmrag-bench-") as work:
            results = run_all(arguments, Path(work))
    info = machine()
    print_report(results, info, not arguments.no_image_splitting, arguments.precision)
    total = time.perf_counter() - started
    print(f"\nTotal benchmark time (corpus, model builds, loads, ingests): {total:.0f} s")
    if arguments.json:
        payload = {
            "machine": info,
            "precision": precision_used(arguments.precision),
            "image_splitting": not arguments.no_image_splitting,
            "total_seconds": total,
            "results": [asdict(r) for r in results],
        }
        arguments.json.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
