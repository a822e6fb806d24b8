"""``mmrag docs list|show|delete``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ingest.app import console, docs_app, print_json, services, tenant
from mmrag.types import DocumentRecord


@docs_app.command("list")
def list_documents(
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
) -> None:
    """Every document: id, path, status, error, pages, images, points."""
    with services(announce=False) as built:
        records = built.catalog.list(tenant())
    if as_json:
        print_json([record.as_dict() for record in records])
        return
    root = os.path.commonpath([str(Path(r.path).parent) for r in records]) if records else ""
    table = Table(title=f"{len(records)} documents" + (f" under {root}" if root else ""))
    table.add_column("id", no_wrap=True)
    table.add_column("file", overflow="fold", ratio=1)
    for column in ("status", "v", "pages", "chunks", "images", "points"):
        table.add_column(column, justify="left" if column == "status" else "right")
    colour = {"indexed": "green", "failed": "red", "processing": "yellow", "queued": "yellow"}
    for r in records:
        table.add_row(
            r.document_id,
            os.path.relpath(r.path, root) if root and not r.path.startswith("upload:") else r.path,
            f"[{colour[r.status.value]}]{r.status.value}",
            str(r.version),
            str(r.pages),
            str(r.chunks),
            str(r.images),
            str(r.points),
        )
    console.print(table)
    for r in records:
        if r.error:
            console.print(f"[red]{r.document_id}[/red] {r.error}", highlight=False, soft_wrap=True)


@docs_app.command("show")
def show_document(
    document_id: Annotated[str, typer.Argument(help="document id (see `mmrag docs list`)")],
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
) -> None:
    """One document in full, with its warnings."""
    with services(announce=False) as built:
        record = built.catalog.require(tenant(), document_id)
    if as_json:
        print_json(record.as_dict())
    else:
        _print_record(record)


def _print_record(record: DocumentRecord) -> None:
    table = Table(show_header=False, title=record.document_id)
    for key, value in record.as_dict().items():
        if key == "warnings":
            value = "\n".join(value) or "-"
        table.add_row(key, str(value if value not in (None, "") else "-"))
    console.print(table)


@docs_app.command("delete")
def delete_document(
    document_id: Annotated[str, typer.Argument(help="document id (see `mmrag docs list`)")],
    as_json: Annotated[bool, typer.Option("--json", help="print the record as JSON")] = False,
) -> None:
    """Remove a document's points, stored images and catalog entry."""
    with services(announce=False) as built:
        record = built.documents.delete(tenant(), document_id)
    if as_json:
        print_json(record.as_dict())
    else:
        console.print(f"deleted {record.document_id} ({record.path})", highlight=False)
