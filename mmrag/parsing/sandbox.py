"""Parsing untrusted files in a child process held to a wall-clock and a memory limit.

A file's parser runs in its own process, forked from a server process that has
imported every parser once (`multiprocessing`'s forkserver), so a file costs a fork,
not an import. The child streams the file's elements back through a pipe as the
pipeline takes them; its memory is capped (``RLIMIT_AS``: ``parsing.memory_mb`` over
what the parsers need loaded), and the parent kills it, with every process it
started (tesseract), once its parsing time passes ``parsing.timeout_s``. Time the
child spends blocked because the pipeline is busy embedding is not counted: the
clock runs only while the parent waits for the next element.

So a runaway file (a decompression bomb, a pathological input, a parser bug that
loops or crashes) fails alone, reported by name with the limit it hit, and the
process that ingests (possibly `mmrag serve`) stays up.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import resource
import signal
import threading
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from mmrag import errors
from mmrag.errors import CorruptFileError, DocumentError, LimitExceededError
from mmrag.parsing import ParsedFile, parse_file
from mmrag.settings import ParsingSettings

logger = logging.getLogger(__name__)

# Imported once by the fork server, so every child starts with the parsers loaded.
_PRELOAD = [
    "mmrag.parsing.without_torch",  # first: before anything can import torch
    "mmrag.parsing.sandbox",
    "mmrag.parsing.pdf",
    "mmrag.parsing.office",
    "mmrag.parsing.web",
    "mmrag.parsing.images",
    "pypdf",
    "unstructured.partition.docx",
    "unstructured.partition.pptx",
    "mmrag.parsing.preload",
]
_CONTEXT_LOCK = threading.Lock()
_context: multiprocessing.context.BaseContext | None = None


def parse_untrusted(path: Path, settings: ParsingSettings, *, name: str) -> ParsedFile:
    """Open ``path`` with its parser, inside the limits of ``settings`` (in a child
    process unless ``parsing.isolate`` is off). Errors name the file as ``name``."""
    if not settings.isolate:
        return parse_file(path, settings)
    return _ChildParser(path, settings, name).open()


def start_sandbox(settings: ParsingSettings) -> None:
    """Start the parser server in the background (it imports every parser: seconds),
    so that it is ready by the first file; a no-op unless ``parsing.isolate``."""
    if settings.isolate and _context is None:
        threading.Thread(target=_sandbox_context, name="parser-server", daemon=True).start()


def _sandbox_context() -> multiprocessing.context.BaseContext:
    """The fork server where the platform has one (Linux, macOS), else spawn."""
    global _context
    with _CONTEXT_LOCK:
        if _context is None:
            context: multiprocessing.context.BaseContext
            if "forkserver" in multiprocessing.get_all_start_methods():
                server = multiprocessing.get_context("forkserver")
                server.set_forkserver_preload(_PRELOAD)
                context = server
            else:  # pragma: no cover - Windows
                context = multiprocessing.get_context("spawn")
            # Start the server (it imports every parser: seconds) before any file's
            # clock runs.
            ready = context.Process(target=_ready, daemon=True)
            ready.start()
            ready.join()
            _context = context
        return _context


def _ready() -> None:
    """A child that does nothing: starting one waits for the server to be ready."""


class _ChildParser:
    """One file's parser process, seen from the parent."""

    def __init__(self, path: Path, settings: ParsingSettings, name: str) -> None:
        self._path = path
        self._settings = settings
        self._name = name
        self._waited = 0.0
        self._process: BaseProcess | None = None
        self._connection: Connection | None = None

    def open(self) -> ParsedFile:
        context = _sandbox_context()
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(  # type: ignore[attr-defined]
            target=_child_main,
            args=(sender, str(self._path), self._settings),
            name=f"mmrag-parse-{self._name[:40]}",
            daemon=True,
        )
        process.start()
        sender.close()  # the child holds the only sending end: its death is an EOF here
        self._process, self._connection = process, receiver
        try:
            file_type, page_count, warnings = self._expect("opened")
        except BaseException:
            self.stop()
            raise
        parsed = ParsedFile(file_type=file_type, page_count=page_count, elements=iter(()))
        parsed.warnings[:] = warnings
        parsed.elements = self._elements(parsed.warnings)
        return parsed

    def _elements(self, warnings: list[str]) -> Iterator[Any]:
        try:
            while True:
                kind, payload = self._receive()
                if kind == "element":
                    yield payload
                elif kind == "done":
                    warnings[:] = payload
                    return
                else:
                    raise self._failure(kind, payload)
        finally:
            self.stop()

    def _expect(self, wanted: str) -> Any:
        kind, payload = self._receive()
        if kind != wanted:
            raise self._failure(kind, payload)
        return payload

    def _receive(self) -> tuple[str, Any]:
        assert self._connection is not None
        remaining = self._settings.timeout_s - self._waited
        started = time.monotonic()
        try:
            ready = remaining > 0 and self._connection.poll(remaining)
            if not ready:
                raise LimitExceededError(
                    self._name,
                    f"parsing took longer than parsing.timeout_s ({self._settings.timeout_s:g} s);"
                    " stopped",
                )
            message: tuple[str, Any] = self._connection.recv()
            return message
        except (EOFError, OSError):
            raise self._died() from None
        finally:
            self._waited += time.monotonic() - started

    def _failure(self, kind: str, payload: Any) -> DocumentError:
        if kind == "error":
            error_name, reason = payload
            error_type = getattr(errors, error_name, DocumentError)
            if not (isinstance(error_type, type) and issubclass(error_type, DocumentError)):
                error_type = DocumentError
            return error_type(self._name, reason)
        if kind == "memory":
            return self._over_memory()
        return CorruptFileError(self._name, f"the parser failed on this file ({payload})")

    def _over_memory(self) -> LimitExceededError:
        return LimitExceededError(
            self._name,
            f"parsing needed more than parsing.memory_mb ({self._settings.memory_mb} MiB); stopped",
        )

    def _died(self) -> DocumentError:
        """The child ended without a word: killed by the kernel or crashed in C code,
        most often because an allocation failed at the memory limit."""
        assert self._process is not None
        self._process.join(timeout=5)
        code = self._process.exitcode
        if code is not None and code < 0:
            what = signal.Signals(-code).name
        else:
            what = f"exit status {code}"
        logger.warning("parser process for %s died (%s)", self._name, what)
        return CorruptFileError(
            self._name,
            f"the parser process died ({what}): the file is damaged or needs more than "
            f"parsing.memory_mb ({self._settings.memory_mb} MiB)",
        )

    def stop(self) -> None:
        """End the child and everything it started; idempotent."""
        process, self._process = self._process, None
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        if process is None:
            return
        if process.is_alive() and process.pid is not None:
            try:
                os.killpg(process.pid, signal.SIGKILL)  # the child leads its own group
            except (ProcessLookupError, PermissionError):
                process.kill()
        process.join(timeout=5)
        process.close()


# ---------------------------------------------------------------- in the child


def _child_main(connection: Connection, path: str, settings: ParsingSettings) -> None:
    os.setpgrp()  # one group with the tools it starts (tesseract), killed together
    _limit_memory(settings.memory_mb)
    try:
        parsed = parse_file(Path(path), settings)
        connection.send(("opened", (parsed.file_type, parsed.page_count, list(parsed.warnings))))
        for element in parsed.elements:
            connection.send(("element", element))
        connection.send(("done", list(parsed.warnings)))
    except DocumentError as exc:
        connection.send(("error", (type(exc).__name__, exc.reason)))
    except MemoryError:
        connection.send(("memory", None))
    except RecursionError:
        connection.send(("error", ("LimitExceededError", "nested too deeply to parse")))
    except BrokenPipeError:
        pass  # the parent stopped listening (the job was cancelled)
    except Exception as exc:  # a parser bug on this input: reported, never raised
        connection.send(("crash", f"{type(exc).__name__}: {exc}"[:500]))
    finally:
        connection.close()


def _limit_memory(memory_mb: int) -> None:
    """Cap the address space at what is mapped now (the parsers' libraries) plus
    ``memory_mb``: an allocation past it fails (MemoryError) instead of growing."""
    import psutil

    mapped = psutil.Process().memory_info().vms
    limit = mapped + memory_mb * 2**20
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ValueError, OSError):  # pragma: no cover - a lower hard limit was set
        logger.warning("cannot cap the parser's memory at %d MiB", memory_mb)
