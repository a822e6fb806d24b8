"""The exception tree of mmrag.

Every error the library raises on purpose derives from `MmragError`; third-party
errors are translated where they enter (parsers, model loaders, store adapter)
with ``raise ... from exc`` so the original stays attached.

    MmragError
    ├── ConfigError              a setting is invalid or inconsistent
    ├── ModelLoadError           a model role could not be loaded (names model, reason, fix)
    ├── ModelRuntimeError        a loaded model failed while running (e.g. HTTP VLM down)
    │   └── ModelTimeoutError        ... or did not answer in time
    ├── DocumentError            one input file cannot be ingested (names the file)
    │   ├── UnsupportedFileError     type not supported (or not recognisable)
    │   ├── CorruptFileError         damaged, truncated or not what it claims to be
    │   ├── EncryptedFileError       password-protected
    │   ├── EmptyDocumentError       zero bytes, zero pages, or no text and no images
    │   ├── ImageTooLargeError       pixel count over the limit (decompression bomb)
    │   └── LimitExceededError       over a parsing limit (pages, size, depth, time, memory)
    ├── DocumentNotFoundError    no document (or image) with that id
    ├── InvalidRequestError      a question or search the library cannot take (empty, too long)
    │   └── TooLargeError            an upload over its size limit
    ├── StoreError               the vector store or the catalog is unreachable or refused
    │   └── StoreLockedError         the embedded store is held by another process
    └── JobStopped               an ingest job stopped before its end
        ├── JobCancelled             its document was deleted or superseded
        └── JobInterrupted           its worker is shutting down (it goes back to the queue)

Model runtime errors and store errors are *transient* for ingest jobs: the job is
retried with backoff before its document is marked failed.
"""

from __future__ import annotations

from pathlib import Path


class MmragError(Exception):
    """Base class of every error mmrag raises on purpose."""


class ConfigError(MmragError):
    """A setting is invalid or two settings contradict each other."""


class ModelLoadError(MmragError):
    """A model role could not be loaded.

    The message names the role, the model, the reason and the setting that fixes it.
    """

    def __init__(self, *, role: str, model: str, reason: str, fix: str) -> None:
        self.role = role
        self.model = model
        self.reason = reason
        self.fix = fix
        super().__init__(f"cannot load {role} model {model!r}: {reason}. Fix: {fix}")


class ModelRuntimeError(MmragError):
    """A loaded model (or a model server) failed while running."""


class ModelTimeoutError(ModelRuntimeError):
    """A model server did not answer within its timeout."""


class DocumentError(MmragError):
    """One input file cannot be ingested; the message names the file and the reason."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class UnsupportedFileError(DocumentError):
    """The file type is not supported or not recognisable."""


class CorruptFileError(DocumentError):
    """The file is damaged, truncated, or not what its name says."""


class EncryptedFileError(DocumentError):
    """The file is password-protected."""


class EmptyDocumentError(DocumentError):
    """The file is empty, has no pages, or yields neither text nor images."""


class ImageTooLargeError(DocumentError):
    """An image declares more pixels than allowed (decompression-bomb guard)."""


class LimitExceededError(DocumentError):
    """Parsing the file went past one of the ``parsing.*`` limits (pages, unpacked size,
    entries, line length, nesting, wall-clock time, memory); the reason names the limit."""


class NotFoundError(MmragError):
    """What was asked for does not exist (or belongs to another tenant)."""


class DocumentNotFoundError(NotFoundError):
    """No document with the given id is known."""

    def __init__(self, document_id: str) -> None:
        self.document_id = document_id
        super().__init__(f"no document with id {document_id!r}")


class InvalidRequestError(MmragError):
    """A question or search request the library cannot take (empty, too long, bad filter)."""


class TooLargeError(InvalidRequestError):
    """An upload passed its size limit while it was being received."""


class StoreError(MmragError):
    """The vector store (or the catalog, or the queue) is unreachable or rejected a request."""


class StoreLockedError(StoreError):
    """The embedded store is open in another process (a running ``mmrag serve``?)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(
            f"the embedded store at {path} is open in another process; stop it, or run a "
            "Qdrant server (store.qdrant_url) for several processes"
        )


class JobStopped(MmragError):
    """An ingest job stopped before its end (not a failure of its document)."""


class JobCancelled(JobStopped):
    """An ingest job stopped because its document was deleted or a newer version came."""


class JobInterrupted(JobStopped):
    """The worker is shutting down: the job goes back to the queue unfinished."""


# Failures an ingest job retries (with backoff) before failing its document.
TRANSIENT_ERRORS: tuple[type[MmragError], ...] = (ModelRuntimeError, StoreError)
