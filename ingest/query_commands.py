"""``mmrag search``, ``mmrag ask`` and ``mmrag serve``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ingest.app import app, console, print_json, services, settings, tenant, use_json_logs
from mmrag.errors import InvalidRequestError
from mmrag.retrieval import SearchFilters
from mmrag.types import Answer, Citation, Hit

DocumentOption = Annotated[
    list[str] | None, typer.Option("--document", "-d", help="only these document ids")
]
KindOption = Annotated[list[str] | None, typer.Option("--kind", help="text, table, image, page")]
PagesOption = Annotated[str | None, typer.Option(help="page range, e.g. 3-7 or 5")]


def filters_from(
    documents: list[str] | None, kinds: list[str] | None, pages: str | None
) -> SearchFilters:
    page_from = page_to = None
    if pages:
        low, _, high = pages.partition("-")
        try:
            page_from, page_to = int(low), int(high or low)
        except ValueError:
            raise InvalidRequestError(f"--pages {pages!r}: use N or N-M") from None
    return SearchFilters(
        document_ids=tuple(documents or ()),
        kinds=tuple(kinds or ()),
        page_from=page_from,
        page_to=page_to,
    ).checked()


def hit_dict(hit: Hit, data_dir: Path) -> dict[str, Any]:
    return {**hit.as_dict(), "image_path": _absolute(hit.image_path, data_dir)}


def citation_dict(citation: Citation, data_dir: Path) -> dict[str, Any]:
    return {**citation.as_dict(), "image_path": _absolute(citation.image_path, data_dir)}


def _absolute(relative: str | None, data_dir: Path) -> str | None:
    """Stored image paths are relative to the data directory; a terminal user wants a path
    they can open."""
    return str(data_dir / relative) if relative else None


@app.command()
def search(
    query: Annotated[str | None, typer.Argument(help="what to look for")] = None,
    image: Annotated[Path | None, typer.Option(help="search with an image instead")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 10,
    document: DocumentOption = None,
    kind: KindOption = None,
    pages: PagesOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
) -> None:
    """Ranked hits from every channel, fused."""
    filters = filters_from(document, kind, pages)
    if image is None and not (query and query.strip()):
        raise InvalidRequestError("give a QUERY or --image PATH")
    if image is not None and not image.is_file():
        raise InvalidRequestError(f"--image {image}: no such file")
    with services() as built:
        if image is not None:
            from PIL import Image

            with Image.open(image) as picture:
                result = built.retriever.search_image(
                    picture.convert("RGB"), tenant=tenant(), limit=limit, filters=filters
                )
        else:
            assert query is not None  # checked above
            result = built.retriever.search(query, tenant=tenant(), limit=limit, filters=filters)
        data_dir = built.settings.blob_root
    hits = [hit_dict(hit, data_dir) for hit in result.hits]
    if as_json:
        print_json({"hits": hits, "timings": result.timings})
        return
    table = Table(title=f"{len(hits)} hits in {result.timings['total_s'] * 1000:.0f} ms")
    for column in ("#", "score", "document", "page", "kind", "channels", "text"):
        table.add_column(column, overflow="fold", ratio=4 if column == "text" else None)
    for rank, hit in enumerate(hits, start=1):
        channels = " ".join(f"{name}#{c['rank']}" for name, c in hit["channels"].items())
        text = hit["text"][:300] + (f"\n{hit['image_path']}" if hit["image_path"] else "")
        table.add_row(
            str(rank),
            f"{hit['score']:.4f}",
            Path(hit["source"]).name,
            str(hit["page"]),
            hit["kind"],
            channels,
            text,
        )
    console.print(table)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="a question about the ingested documents")],
    document: DocumentOption = None,
    kind: KindOption = None,
    pages: PagesOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the answer as JSON")] = False,
) -> None:
    """Answer from the retrieved text and images, streamed, then the citations."""
    filters = filters_from(document, kind, pages)
    with services() as built:
        data_dir = built.settings.blob_root
        answer: Answer | None = None
        for event in built.asker.events(question, tenant=tenant(), filters=filters):
            if event.kind == "token" and not as_json:
                console.out(event.data, end="", highlight=False)
            elif event.kind == "done":
                answer = event.data
    if answer is None:  # pragma: no cover - events always end with done
        raise typer.Exit(2)
    citations = [citation_dict(c, data_dir) for c in answer.citations]
    if as_json:
        print_json(
            {
                "question": answer.question,
                "answer": answer.text,
                "abstained": answer.abstained,
                "citations": citations,
                "timings": answer.timings,
            }
        )
        return
    console.out("")
    for citation in citations:
        where = f"{citation['source']}, page {citation['page']}"
        extra = f"\n    image: {citation['image_path']}" if citation["image_path"] else ""
        console.print(f"[bold][{citation['marker']}][/bold] {where}{extra}", highlight=False)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address (api.host)")] = None,
    port: Annotated[int | None, typer.Option(help="port (api.port)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="log lines as JSON objects")] = False,
) -> None:
    """Start the HTTP API and the web page (OpenAPI docs at /docs)."""
    import uvicorn

    from api.app import create_app  # the one place the CLI reaches into the service

    loaded = settings()
    api = loaded.api.model_copy(
        update={"host": host or loaded.api.host, "port": port or loaded.api.port}
    )
    loaded = loaded.model_copy(update={"api": api})
    if as_json:
        use_json_logs()  # uvicorn's own lines too: it leaves logging to us (log_config=None)
    uvicorn.run(
        create_app(loaded),
        host=api.host,
        port=api.port,
        log_level="info",
        log_config=None if as_json else uvicorn.config.LOGGING_CONFIG,
        # Inside Docker's 10 s stop grace: open streams are closed after 5 s, and the
        # in-process worker hands its running job back to the queue meanwhile.
        timeout_graceful_shutdown=5,
    )
