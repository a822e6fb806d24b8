"""The blob store: uploads, originals, extracted images and page renders, by key.

Keys are relative, slash-separated paths (``images/<document>/<image>.png``); the
default store is a folder (the data directory, or ``blobs.root``: a shared volume
when workers run on several machines). Workers parse from a local path, so the
interface hands out paths for reading; everything else goes through keys.

Bytes go in through a `BlobWriter`: pushed as they arrive (an HTTP upload) or pulled
from a stream (`BlobStore.write`); either way the blob appears under its key whole, or
not at all.
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from abc import ABC, abstractmethod
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import BinaryIO

from mmrag.errors import DocumentNotFoundError, InvalidRequestError, TooLargeError

_BLOCK = 1 << 20
UPLOADS = "uploads/"
# One name in a key: file systems refuse names over 255 bytes, so keys built here keep
# the client's part of a name well under that, its extension kept (it decides the parser).
_MAX_NAME_CHARS = 120
_MAX_SUFFIX_CHARS = 16


def upload_key(tenant: str, filename: str) -> str:
    """A fresh key for an upload of ``filename`` (a safe base name): a folder of its own,
    named by a random id, so that no two uploads ever share a file, whatever their names."""
    return f"{UPLOADS}{tenant}/{uuid.uuid4().hex}/{bounded_name(filename)}"


def upload_folder(key: str) -> str:
    """The folder (a prefix ending in ``/``) holding the upload under ``key``."""
    if not key.startswith(UPLOADS) or key.count("/") != 3:
        raise ValueError(f"not an upload key: {key!r}")
    return key.rsplit("/", 1)[0] + "/"


def image_key(document_id: str, image_id: str) -> str:
    return f"images/{document_id}/{image_id[:32]}.png"


def renders_prefix(document_id: str) -> str:
    """Where the page images rendered on demand for a document are cached."""
    return f"renders/{document_id}/"


def original_key(document_id: str, filename: str) -> str:
    return f"originals/{document_id}/{bounded_name(filename)}"


def bounded_name(filename: str) -> str:
    """``filename`` cut to a length every file system takes, its extension kept."""
    if len(filename) <= _MAX_NAME_CHARS:
        return filename
    suffix = PurePosixPath(filename).suffix
    suffix = suffix if len(suffix) <= _MAX_SUFFIX_CHARS else ""
    return filename[: _MAX_NAME_CHARS - len(suffix)] + suffix


class BlobWriter(ABC):
    """A blob being written: bytes pushed in as they arrive, then `commit` (the blob
    appears under its key, whole) or `discard` (nothing is left). As a context manager
    it commits on success and discards on an error."""

    def __init__(self, name: str, max_bytes: int | None) -> None:
        self.name = name
        self.max_bytes = max_bytes
        self.written = 0

    def write(self, data: bytes) -> None:
        """Append ``data``; `TooLargeError` (nothing of ``data`` written) when it would
        take the blob past ``max_bytes``."""
        if self.max_bytes is not None and self.written + len(data) > self.max_bytes:
            raise TooLargeError(
                f"{self.name}: larger than the limit of {self.max_bytes / 2**20:g} MB"
            )
        self._append(data)
        self.written += len(data)

    @abstractmethod
    def _append(self, data: bytes) -> None: ...

    @abstractmethod
    def commit(self) -> None:
        """Put the blob under its key (replacing any there)."""

    @abstractmethod
    def discard(self) -> None:
        """Drop what was written; safe to call more than once, and after `commit`."""

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if kind is None:
                self.commit()
        finally:
            self.discard()


class BlobStore(ABC):
    """Bytes by key."""

    @abstractmethod
    def writer(self, key: str, *, max_bytes: int | None = None) -> BlobWriter:
        """A writer for a new blob under ``key``, refusing more than ``max_bytes``."""

    def write(self, key: str, stream: BinaryIO, *, max_bytes: int | None = None) -> int:
        """Store a stream under ``key`` (replacing it), stopping at ``max_bytes`` with
        `TooLargeError` and nothing left behind; the number of bytes written."""
        with self.writer(key, max_bytes=max_bytes) as out:
            while block := stream.read(_BLOCK):
                out.write(block)
        return out.written

    @abstractmethod
    def copy_in(self, key: str, source: Path) -> None:
        """Store a local file under ``key``."""

    def move(self, source_key: str, key: str) -> None:
        """Put the blob under ``source_key`` under ``key`` instead (replacing it)."""
        self.copy_in(key, self.path(source_key))
        self.delete(source_key)

    @abstractmethod
    def path(self, key: str) -> Path:
        """A local path to read the blob from; `DocumentNotFoundError` when absent."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove a blob, or every blob under a key prefix ending in ``/``."""

    @abstractmethod
    def keys(self, prefix: str) -> set[str]:
        """Keys under a prefix ending in ``/``."""


class _LocalWriter(BlobWriter):
    """A hidden partial file beside the target, renamed onto it on commit."""

    def __init__(self, target: Path, max_bytes: int | None) -> None:
        super().__init__(target.name, max_bytes)
        target.parent.mkdir(parents=True, exist_ok=True)
        self._target = target
        # Named apart from the target, so a long target name never makes it too long.
        self._partial = target.with_name(f".{uuid.uuid4().hex}.partial")
        self._file: BinaryIO | None = self._partial.open("wb")

    def _append(self, data: bytes) -> None:
        if self._file is None:
            raise ValueError(f"{self.name}: written after commit or discard")
        self._file.write(data)

    def commit(self) -> None:
        if self._file is None:
            raise ValueError(f"{self.name}: committed after commit or discard")
        self._file.close()
        self._file = None
        self._partial.replace(self._target)

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._partial.unlink(missing_ok=True)


class LocalBlobStore(BlobStore):
    """Blobs as files under a root folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _file(self, key: str) -> Path:
        parts = key.split("/")
        if not key or key.startswith("/") or ".." in parts:
            raise InvalidRequestError(f"invalid blob key {key!r}")
        if any(len(part.encode("utf-8", "surrogatepass")) > 255 for part in parts):
            raise InvalidRequestError(f"blob key with a name over 255 bytes: {key[:300]!r}")
        return self.root / key

    def writer(self, key: str, *, max_bytes: int | None = None) -> BlobWriter:
        return _LocalWriter(self._file(key), max_bytes)

    def copy_in(self, key: str, source: Path) -> None:
        target = self._file(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{uuid.uuid4().hex}.partial")
        try:
            shutil.copyfile(source, partial)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)

    def move(self, source_key: str, key: str) -> None:
        source, target = self.path(source_key), self._file(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(source, target)  # one rename: no second copy of a large upload
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            super().move(source_key, key)  # uploads/ mounted apart: copy across

    def path(self, key: str) -> Path:
        file = self._file(key)
        if not file.is_file():
            raise DocumentNotFoundError(key)
        return file

    def exists(self, key: str) -> bool:
        return self._file(key).is_file()

    def delete(self, key: str) -> None:
        if key.endswith("/"):
            shutil.rmtree(self._file(key.rstrip("/")), ignore_errors=True)
        else:
            self._file(key).unlink(missing_ok=True)

    def keys(self, prefix: str) -> set[str]:
        folder = self._file(prefix.rstrip("/"))
        if not folder.is_dir():
            return set()
        return {
            str(path.relative_to(self.root))
            for path in folder.rglob("*")
            if path.is_file() and not path.name.startswith(".")
        }
