"""The ``mmrag`` command: a thin shell over the library.

Errors are mapped to messages and exit codes in one place, `main`.
"""

from __future__ import annotations

import sys

import typer
from typer.exceptions import TyperException

from ingest import (  # noqa: F401  (they register subcommands)
    docs_commands,
    eval_commands,
    ingest_commands,
    query_commands,
    worker_commands,
)
from ingest.app import app, console, errors, settings
from mmrag.errors import MmragError, NotFoundError, StoreLockedError
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
    except NotFoundError as exc:
        errors.print(f"[red]error[/red] {exc}", highlight=False)
        sys.exit(EXIT_NOT_FOUND)
    except MmragError as exc:
        errors.print(f"[red]error[/red] {exc}", highlight=False)
        sys.exit(EXIT_ERROR)
    except TyperException as exc:  # usage errors (Typer's own copy of click raises them)
        sys.exit(usage_error(exc))


def usage_error(exc: TyperException) -> int:
    """Say what was wrong with the command line in one line (the help, when no command
    was given); usage errors exit 2."""
    context = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError" and context is not None:
        help_text = context.get_help()  # Typer's rich help prints itself and returns ""
        if help_text:
            console.out(help_text, highlight=False)
        return EXIT_ERROR
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    command = context.command_path if context is not None else "mmrag"
    one_line = " ".join(message.split())
    errors.print(
        f"[red]error[/red] {one_line} (see: {command} --help)", highlight=False, soft_wrap=True
    )
    return EXIT_ERROR


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
