"""The ``mmrag`` command: a thin shell over the library.

Errors are mapped to messages and exit codes in one place, `main`.
"""

from __future__ import annotations

import sys

import click
import typer

from ingest import (  # noqa: F401  (they register subcommands)
    docs_commands,
    eval_commands,
    ingest_commands,
    query_commands,
    worker_commands,
)
from ingest.app import app, errors, settings
from mmrag.errors import DocumentNotFoundError, MmragError, StoreLockedError
from mmrag.services import running_service

EXIT_FAILED_FILES = 1  # some inputs failed; the rest were processed
EXIT_ERROR = 2  # bad settings, a model that cannot load, an unreachable store
EXIT_NOT_FOUND = 3


def main() -> None:
    """Entry point: run the app; map library errors to a message and an exit code."""
    try:
        # Outside standalone mode click returns the code a command exits with.
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except typer.Exit as exit_:
        sys.exit(exit_.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        errors.print("interrupted")
        sys.exit(130)
    except StoreLockedError as exc:
        errors.print(f"[red]error[/red] {held_store_hint(exc)}", highlight=False)
        sys.exit(EXIT_ERROR)
    except DocumentNotFoundError as exc:
        errors.print(f"[red]error[/red] {exc}", highlight=False)
        sys.exit(EXIT_NOT_FOUND)
    except MmragError as exc:
        errors.print(f"[red]error[/red] {exc}", highlight=False)
        sys.exit(EXIT_ERROR)
    except click.ClickException as exc:  # usage errors
        exc.show()
        sys.exit(exc.exit_code)


def held_store_hint(exc: StoreLockedError) -> str:
    """Say who holds the embedded store and what to do instead."""
    holder = running_service(settings())
    if holder is None:
        return str(exc)
    return (
        f"mmrag serve (pid {holder['pid']}) holds the embedded store at {exc.path}: use its "
        f"HTTP API at {holder['url']} (or stop it); `mmrag ingest` submits to it by itself"
    )


if __name__ == "__main__":
    main()
