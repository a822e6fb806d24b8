"""``mmrag ingest`` and ``mmrag models``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ingest.app import app, console, errors, print_json, services
from ingest.progress import RichObserver
from mmrag.errors import MmragError
from mmrag.observe import IngestObserver, LoggingObserver
from mmrag.pipeline import IngestResult, expand_paths


@app.command()
def ingest(
    paths: Annotated[list[str], typer.Argument(help="files, folders (recursive) or glob patterns")],
    force: Annotated[bool, typer.Option(help="re-index files even when unchanged")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print results as JSON")] = False,
) -> None:
    """Index documents and images. Exits 1 if any file failed (the others are indexed)."""
    files, missing = expand_paths(paths)
    for pattern in missing:
        errors.print(f"[red]not found[/red] {pattern}", highlight=False)
    with services() as built:
        ingestor = built.ingestor  # loads every model once, before the first file
        if sys.stderr.isatty() and not as_json:
            with RichObserver(errors, len(files)) as observer:
                results = ingestor.ingest(files, observer, force=force)
        else:
            logging_observer: IngestObserver = LoggingObserver()
            results = ingestor.ingest(files, logging_observer, force=force)
    if as_json:
        print_json([_result_dict(r) for r in results])
    else:
        _summary(results)
    if missing or any(r.outcome == "failed" for r in results):
        raise typer.Exit(1)


def _result_dict(result: IngestResult) -> dict[str, Any]:
    return {
        "path": str(result.path),
        "outcome": result.outcome,
        "id": result.document_id,
        "error": result.error,
        "warnings": list(result.warnings),
        "pages": result.pages,
        "chunks": result.chunks,
        "images": result.images,
        "points": result.points,
        "seconds": round(result.seconds, 3),
    }


def _summary(results: list[IngestResult]) -> None:
    root = Path(os.path.commonpath([r.path.resolve().parent for r in results])) if results else None
    table = Table(title=f"ingest summary ({root})" if root else "ingest summary")
    table.add_column("file", overflow="fold", ratio=1)
    for column in ("outcome", "pages", "chunks", "images", "points", "seconds"):
        table.add_column(column, justify="right" if column != "outcome" else "left")
    style = {"indexed": "green", "unchanged": "cyan", "failed": "red"}
    for r in results:
        name = str(r.path.resolve().relative_to(root)) if root else str(r.path)
        table.add_row(
            name,
            f"[{style[r.outcome]}]{r.outcome}",
            str(r.pages),
            str(r.chunks),
            str(r.images),
            str(r.points),
            f"{r.seconds:.1f}",
        )
    console.print(table)
    for r in results:
        if r.outcome == "failed":
            console.print(f"[red]failed[/red] {r.error}", highlight=False, soft_wrap=True)
    counts = {o: sum(r.outcome == o for r in results) for o in ("indexed", "unchanged", "failed")}
    seconds = sum(r.seconds for r in results)
    pages = sum(r.pages for r in results if r.outcome == "indexed")
    console.print(
        f"{counts['indexed']} indexed, {counts['unchanged']} unchanged, "
        f"{counts['failed']} failed; {pages} pages in {seconds:.1f}s",
        highlight=False,
    )


@app.command()
def models(
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
) -> None:
    """Which backend and model each role uses, and whether it loads."""
    rows = []
    with services() as built:
        settings = built.settings
        roles: list[tuple[str, Any, str]] = [
            ("text embedder", settings.text_embedder, "text_embedder"),
            ("image embedder", settings.image_embedder, "image_embedder"),
            ("captioner", settings.captioner, "captioner"),
        ]
        for role, section, attribute in roles:
            row = {
                "role": role,
                "backend": section.backend,
                "model": section.model,
                "status": "ok",
                "detail": "",
            }
            try:
                model = getattr(built, attribute)
                if model is None:
                    row["status"], row["detail"] = "off", "disabled"
                elif hasattr(model, "dimension"):
                    row["detail"] = f"{model.dimension}-d"
            except MmragError as exc:
                row["status"], row["detail"] = "error", str(exc)
            rows.append(row)
        profile = built.profile.name
    if as_json:
        print_json({"profile": profile, "roles": rows})
    else:
        table = Table(title=f"models (profile: {profile})")
        for column in ("role", "backend", "model", "status", "detail"):
            table.add_column(column, overflow="fold")
        colour = {"ok": "green", "off": "yellow", "error": "red"}
        for row in rows:
            table.add_row(
                row["role"],
                row["backend"],
                row["model"],
                f"[{colour[row['status']]}]{row['status']}",
                row["detail"],
            )
        console.print(table)
    if any(row["status"] == "error" for row in rows):
        raise typer.Exit(2)
