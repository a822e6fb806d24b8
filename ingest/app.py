"""The ``mmrag`` Typer app, its root options, and what every subcommand shares."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from api.requests import RequestIdFilter
from mmrag.errors import ConfigError
from mmrag.services import Services, build_services
from mmrag.settings import Settings, load_settings
from mmrag.tenancy import TENANT_PATTERN

app = typer.Typer(
    name="mmrag",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish
    help="Multimodal RAG: ingest documents and images, search and ask.",
)
docs_app = typer.Typer(no_args_is_help=True, help="List, show and delete ingested documents.")
app.add_typer(docs_app, name="docs")

console = Console()
errors = Console(stderr=True)


class _State:
    """Options of the root command, shared with the subcommands."""

    config: Path | None = None
    data_dir: Path | None = None
    profile: str | None = None
    tenant: str | None = None


def settings() -> Settings:
    """The settings tree from the root options, the environment and the config file."""
    overrides: dict[str, Any] = {}
    if _State.data_dir is not None:
        overrides["data_dir"] = _State.data_dir
    if _State.profile is not None:
        overrides["profile"] = _State.profile
    return load_settings(_State.config, **overrides)


def tenant() -> str:
    """The tenant the command acts for: --tenant, else ingest.tenant."""
    return _State.tenant or settings().ingest.tenant


def services(*, announce: bool = True) -> Services:
    """Build the services; ``announce`` prints what the profile decided (for commands
    that use models)."""
    built = build_services(settings())
    for note in built.profile.notes if announce else ():
        errors.print(f"[cyan]note[/cyan] {note}", highlight=False, soft_wrap=True)
    return built


def _print_version(value: bool) -> None:
    if value:
        from mmrag import __version__

        console.out(f"mmrag {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def root(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="TOML settings file")
    ] = None,
    data_dir: Annotated[Path | None, typer.Option(help="data directory (MMRAG_DATA_DIR)")] = None,
    profile: Annotated[str | None, typer.Option(help="auto, default or offline")] = None,
    tenant: Annotated[
        str | None, typer.Option(help="act for this tenant (default: ingest.tenant)")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log details")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_print_version, help="print the version"),
    ] = False,
) -> None:
    if tenant is not None and not re.fullmatch(TENANT_PATTERN, tenant):
        raise ConfigError(f"--tenant {tenant!r}: use 1-64 letters, digits, '.', '_' or '-'")
    _State.config, _State.data_dir, _State.profile = config, data_dir, profile
    _State.tenant = tenant
    _configure_logging(verbose)


def _configure_logging(verbose: bool) -> None:
    if not verbose:
        # Model libraries draw their own progress bars and chatter while loading.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if sys.stderr.isatty():
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(console=errors, show_path=False)
    else:
        handler = logging.StreamHandler()
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s%(request)s: %(message)s")
        )
    handler.addFilter(RequestIdFilter())  # names the HTTP request a line was written for
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    logging.getLogger("mmrag").setLevel(logging.INFO if verbose else logging.WARNING)
    if not sys.stderr.isatty():
        logging.getLogger("mmrag.ingest").setLevel(logging.INFO)  # worker-style log lines


class JsonLogFormatter(logging.Formatter):
    """One JSON object per log line: time, level, logger, request id, message."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request = getattr(record, "request", "").strip(" []")
        if request:
            line["request_id"] = request
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def use_json_logs() -> None:
    """Write every log line as JSON on stderr (``--json`` of the long-running commands)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLogFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers = [handler]
    logging.getLogger("mmrag").setLevel(logging.INFO)


def print_json(data: Any) -> None:
    console.out(json.dumps(data, indent=2, default=str), highlight=False)
