"""``mmrag eval run`` and ``mmrag eval compare``."""

from __future__ import annotations

import dataclasses
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ingest.app import app, console, errors, print_json, settings

eval_app = typer.Typer(no_args_is_help=True, help="Evaluate retrieval on labelled questions.")
app.add_typer(eval_app, name="eval")


@eval_app.command("run")
def run(
    dataset: Annotated[
        str,
        typer.Argument(
            help="a folder (queries.jsonl + docs/ or images/; or BEIR corpus/queries/qrels), "
            "or vidore:<hub id>"
        ),
    ],
    out: Annotated[Path, typer.Option(help="where report.json, report.md and plots go")],
    limit: Annotated[int | None, typer.Option(help="only the first N questions")] = None,
    answers: Annotated[bool, typer.Option(help="also evaluate answers (slow with a VLM)")] = False,
    configuration: Annotated[
        list[str] | None,
        typer.Option(help="extra fusion to score, NAME=channel:weight,... (repeatable)"),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="print the overall scores as JSON, not the report")
    ] = False,
) -> None:
    """Ingest the dataset's corpus into its own collection (reused when unchanged), run
    every question, and score each channel, each fusion and the default."""
    from eval.datasets import load_dataset
    from eval.report import write_report
    from eval.runner import eval_settings, parse_configuration, run_eval
    from ingest.progress import RichObserver
    from mmrag.services import build_services

    extra = dict(parse_configuration(text) for text in configuration or ())
    loaded = settings()
    data = load_dataset(dataset, cache=loaded.data_dir / "eval-cache")
    built = build_services(eval_settings(loaded, data))
    for note in built.profile.notes:
        errors.print(f"[cyan]note[/cyan] {note}", highlight=False, soft_wrap=True)
    bars = RichObserver(errors, len(data.corpus)) if sys.stderr.isatty() else nullcontext()
    with built, bars as bar:
        result = run_eval(
            data,
            loaded,
            observer=bar,
            finished=bar.file_finished if bar else None,
            limit=limit,
            answers=answers,
            services=built,
            extra=extra,
        )
    report = write_report(result, out)
    if as_json:
        print_json(
            {
                "report": str(out / "report.json"),
                "overall": report["overall"],
                "ingest_failed": report["ingest"]["failed"],
            }
        )
    else:
        console.print((out / "report.md").read_text(), markup=False, highlight=False)
        console.print(f"report: {out / 'report.json'}", highlight=False)
    if report["ingest"]["failed"]:
        errors.print(
            f"[yellow]{len(report['ingest']['failed'])} corpus files failed to "
            "ingest[/yellow] (listed in report.json)"
        )


@eval_app.command("compare")
def compare(
    before: Annotated[Path, typer.Argument(help="report folder or report.json (baseline)")],
    after: Annotated[Path, typer.Argument(help="report folder or report.json (candidate)")],
    metric: Annotated[list[str] | None, typer.Option(help="metrics, e.g. ndcg@5")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the rows as JSON")] = False,
) -> None:
    """Per configuration and metric: before, after, difference and its 95% paired
    bootstrap confidence interval over the shared questions."""
    from eval.compare import DEFAULT_METRICS, load_report
    from eval.compare import compare as compare_reports

    rows = compare_reports(
        load_report(before), load_report(after), tuple(metric) if metric else DEFAULT_METRICS
    )
    if as_json:
        print_json([dataclasses.asdict(row) for row in rows])
        return
    table = Table(title=f"{after} vs {before} ({rows[0].questions if rows else 0} questions)")
    for column in ("configuration", "metric", "before", "after", "difference", "95% CI", "p"):
        table.add_column(column)
    for row in rows:
        colour = "green" if row.low > 0 else "red" if row.high < 0 else "white"
        table.add_row(
            row.configuration,
            row.metric,
            f"{row.before:.3f}",
            f"{row.after:.3f}",
            f"[{colour}]{row.difference:+.3f}",
            f"[{row.low:+.3f}, {row.high:+.3f}]",
            f"{row.p_value:.3f}",
        )
    console.print(table)
