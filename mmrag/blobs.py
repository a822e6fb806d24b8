"""The blob store: uploads, originals, extracted images and page renders, by key.

Keys are relative, slash-separated paths (``images/<document>/<image>.png``); the
default store is a folder (the data directory, or ``blobs.root``: a shared volume
when workers run on several machines). Workers parse from a local path, so the
interface hands out paths for reading; everything else goes through keys.
"""

from __future__ import annotations

import shutil
import uuid
from abc import ABC, abstractmethod
from pathlib import Path
from typing import BinaryIO

from mmrag.errors import DocumentNotFoundError, InvalidRequestError, TooLargeError

_BLOCK = 1 << 20


def upload_key(tenant: str, filename: str) -> str:
    """A fresh key for an upload: its own folder, so equal names never collide."""
    return f"uploads/{tenant}/{uuid.uuid4().hex}/{filename}"


def image_key(document_id: str, image_id: str) -> str:
    return f"images/{document_id}/{image_id[:32]}.png"


def original_key(document_id: str, filename: str) -> str:
    return f"originals/{document_id}/{filename}"


class BlobStore(ABC):
    """Bytes by key."""

    @abstractmethod
    def write(self, key: str, stream: BinaryIO, *, max_bytes: int | None = None) -> int:
        """Store a stream under ``key`` (replacing it), stopping at ``max_bytes`` with
        `TooLargeError` and nothing left behind; the number of bytes written."""

    @abstractmethod
    def copy_in(self, key: str, source: Path) -> None:
        """Store a local file under ``key``."""

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


class LocalBlobStore(BlobStore):
    """Blobs as files under a root folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _file(self, key: str) -> Path:
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise InvalidRequestError(f"invalid blob key {key!r}")
        return self.root / key

    def write(self, key: str, stream: BinaryIO, *, max_bytes: int | None = None) -> int:
        target = self._file(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
        written = 0
        try:
            with partial.open("wb") as out:
                while block := stream.read(_BLOCK):
                    written += len(block)
                    if max_bytes is not None and written > max_bytes:
                        raise TooLargeError(
                            f"{target.name}: larger than the limit of "
                            f"{max_bytes / 2**20:.0f} MB (api.max_upload_mb)"
                        )
                    out.write(block)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
        return written

    def copy_in(self, key: str, source: Path) -> None:
        target = self._file(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
        try:
            shutil.copyfile(source, partial)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)

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
