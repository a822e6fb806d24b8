"""``mmrag ingest`` and ``mmrag models``."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ingest.app import app, console, errors, print_json, services, settings, tenant
from ingest.progress import RichObserver, wait_for_jobs
from mmrag.documents import Submission
from mmrag.errors import InvalidRequestError, MmragError, StoreLockedError
from mmrag.files import find_files
from mmrag.models.vlm import server_problem
from mmrag.services import Services, running_service

logger = logging.getLogger("mmrag.ingest")


@app.command()
def ingest(
    paths: Annotated[list[str], typer.Argument(help="files, folders (recursive) or glob patterns")],
    force: Annotated[bool, typer.Option(help="re-index files even when unchanged")] = False,
    wait: Annotated[
        bool, typer.Option(help="when workers run the jobs: wait for them to finish")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print results as JSON")] = False,
) -> None:
    """Index documents and images. Exits 1 if any file failed (the others are indexed).

    Runs the jobs in this process when it can hold the embedded store; otherwise (a
    running `mmrag serve`, or workers on a queue server) submits them and waits."""
    scope = tenant()
    # The paths first: a typo is reported at once, before any store or model is opened.
    found = find_files(paths, follow_symlinks=settings().ingest.follow_symlinks)
    files, missing = found.files, found.missing
    for pattern in missing:
        errors.print(f"[red]not found[/red] {pattern}", highlight=False)
    for skipped in found.skipped:
        errors.print(
            f"[yellow]skipped[/yellow] {skipped.path}: {skipped.reason}",
            highlight=False,
            soft_wrap=True,
        )
    if missing and not files and not found.skipped:
        raise InvalidRequestError("nothing to ingest: no path given exists")
    with services() as built:
        if _runs_jobs_here(built):
            results = _ingest_here(built, files, scope, force, as_json)
            _finish_index(built, as_json)
        else:
            results = _ingest_through_queue(built, files, scope, force, wait, as_json)
    if as_json:
        print_json(
            [_result_dict(r) for r in results]
            + [{"path": s.path, "outcome": "skipped", "error": s.reason} for s in found.skipped]
        )
    else:
        _summary(results)
    if missing or any(r.outcome == "failed" for r in results):
        raise typer.Exit(1)


def _runs_jobs_here(built: Services) -> bool:
    """Whether this process may run the jobs: the queue is embedded and nobody else holds
    the embedded store (a running `mmrag serve` runs them instead)."""
    if not built.queue.embedded:
        return False
    if running_service(built.settings) is not None:
        return False
    try:
        built.store.count()
    except StoreLockedError:
        return False
    return True


def _ingest_here(
    built: Services, files: list[Path], scope: str, force: bool, as_json: bool
) -> list[Submission]:
    # Models load on the first file that needs indexing: an unchanged re-run loads none.
    if sys.stderr.isatty() and not as_json:
        with RichObserver(errors, len(files)) as observer:
            return built.ingest_here(
                files, tenant=scope, force=force, observer=observer, finished=observer.file_finished
            )
    return built.ingest_here(files, tenant=scope, force=force)  # the runner logs each file


def _finish_index(built: Services, as_json: bool) -> None:
    """Let a search-index build started by this ingest finish before exiting (Ctrl-C
    skips it: the next ingest past the threshold builds again)."""
    if not built.store.indexing():
        return
    if not as_json:
        errors.print("[cyan]note[/cyan] building the search index (Ctrl-C skips it)")
    built.store.wait_for_index()


def _ingest_through_queue(
    built: Services, files: list[Path], scope: str, force: bool, wait: bool, as_json: bool
) -> list[Submission]:
    holder = running_service(built.settings)
    where = f"mmrag serve (pid {holder['pid']}, {holder['url']})" if holder else "the workers"
    if not as_json:
        errors.print(f"[cyan]note[/cyan] submitting {len(files)} file(s) to {where}")
    submitted = list(built.documents.submit_files(scope, files, force=force))
    if not wait:
        return submitted
    return wait_for_jobs(built, submitted, errors if sys.stderr.isatty() and not as_json else None)


def _result_dict(result: Submission) -> dict[str, Any]:
    record, job = result.record, result.job
    return {
        "path": result.source,
        "outcome": result.outcome,
        "id": record.document_id if record else None,
        "job_id": job.job_id if job else None,
        "error": result.message,
        "warnings": list(record.warnings) if record else [],
        "pages": record.pages if record else 0,
        "chunks": record.chunks if record else 0,
        "images": record.images if record else 0,
        "points": record.points if record else 0,
        "seconds": round(job.seconds, 3) if job else 0.0,
    }


def _summary(results: list[Submission]) -> None:
    paths = [Path(r.source).resolve() for r in results]
    root = Path(os.path.commonpath([p.parent for p in paths])) if paths else None
    table = Table(title=f"ingest summary ({root})" if root else "ingest summary")
    table.add_column("file", overflow="fold", ratio=1)
    for column in ("outcome", "pages", "chunks", "images", "points", "seconds"):
        table.add_column(column, justify="right" if column != "outcome" else "left")
    style = {"indexed": "green", "unchanged": "cyan", "failed": "red"}
    for result, path in zip(results, paths, strict=True):
        row = _result_dict(result)
        name = str(path.relative_to(root)) if root else result.source
        table.add_row(
            name,
            f"[{style.get(result.outcome, 'yellow')}]{result.outcome}",
            *(str(row[key]) for key in ("pages", "chunks", "images", "points")),
            f"{row['seconds']:.1f}",
        )
    console.print(table)
    for result in results:
        if result.outcome == "failed":
            console.print(f"[red]failed[/red] {result.message}", highlight=False, soft_wrap=True)
    counts = {o: sum(r.outcome == o for r in results) for o in ("indexed", "unchanged", "failed")}
    seconds = sum(r.job.seconds for r in results if r.job)
    pages = sum(r.record.pages for r in results if r.record and r.outcome == "indexed")
    waiting = len(results) - sum(counts.values())
    console.print(
        f"{counts['indexed']} indexed, {counts['unchanged']} unchanged, "
        f"{counts['failed']} failed"
        + (f", {waiting} still queued" if waiting else "")
        + f"; {pages} pages in {seconds:.1f}s",
        highlight=False,
    )


def channel_rows(built: Services) -> list[dict[str, Any]]:
    """The channels these models make available, with their fusion settings."""
    retrieval = built.settings.retrieval
    return [
        {
            "name": channel.name,
            "weight": retrieval.weight(channel.name),
            "candidates": retrieval.candidates_for(channel.name),
            "summary": channel.summary,
        }
        for channel in built.channels
    ]


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
            ("page embedder", settings.page_embedder, "page_embedder"),
            ("reranker", settings.reranker, "reranker"),
            ("captioner", settings.captioner, "captioner"),
            ("answerer", settings.answerer, "answerer"),
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
                if model is not None and section.backend == "openai":  # a client loads; ask it
                    problem = server_problem(section.base_url, section.api_key)
                    if problem:
                        row["status"], row["detail"] = "error", problem
            except MmragError as exc:
                row["status"], row["detail"] = "error", str(exc)
            rows.append(row)
        profile = built.profile.name
        channels = channel_rows(built) if not any(r["status"] == "error" for r in rows) else []
    if as_json:
        print_json({"profile": profile, "roles": rows, "channels": channels})
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
        if channels:
            searched = Table(title="channels")
            for column in ("channel", "weight", "candidates", "searches"):
                searched.add_column(column, overflow="fold")
            for channel in channels:
                searched.add_row(
                    channel["name"],
                    f"{channel['weight']:g}",
                    str(channel["candidates"]),
                    channel["summary"],
                )
            console.print(searched)
    if any(row["status"] == "error" for row in rows):
        raise typer.Exit(2)
