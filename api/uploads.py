"""Multipart uploads, received as a stream.

A ``File()`` parameter would have FastAPI read the whole body (onto disk) before any
dependency ran: the key check and the size limit came after the bytes. Here the route
checks the key first; then the body is parsed as it arrives (python-multipart's
streaming parser) and each file goes straight into the blob store's upload area,
refused (413) the moment it passes ``api.max_upload_mb``. A refused upload leaves at
most the limit on disk for a moment, and nothing in the temp folder.

A request holds at most `MAX_FILES` files, sent as ``files``; other form fields are
read and dropped, at most `MAX_FIELDS` of `MAX_FIELD_BYTES` each.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from mmrag.blobs import BlobStore, BlobWriter, upload_folder, upload_key
from mmrag.documents import safe_filename
from mmrag.errors import InvalidRequestError, TooLargeError

FIELD = "files"
MAX_FILES = 100
MAX_FIELDS = 16
MAX_FIELD_BYTES = 64 * 1024
MAX_FILENAME_CHARS = 255
# A part's boundary and headers: python-multipart allows 8 header lines of 4 KiB each.
PART_OVERHEAD = 40 * 1024
# Received bytes handed to the parser (in a worker thread: it writes files) at once.
FEED_BYTES = 1 << 20

# The request body as OpenAPI documents it (the route reads it itself, so FastAPI
# cannot derive it from a parameter).
REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FIELD],
                    "properties": {
                        FIELD: {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "minItems": 1,
                            "maxItems": MAX_FILES,
                            "description": "one or more documents, each at most "
                            "api.max_upload_mb; the file name is kept for display",
                        }
                    },
                }
            }
        },
    }
}


@dataclass(frozen=True)
class ReceivedFile:
    filename: str  # as the client named it
    key: str  # its bytes in the blob store's upload area (`DocumentService.submit_received`)


@asynccontextmanager
async def receive_files(
    request: Request, *, blobs: BlobStore, tenant: str, max_file_bytes: int
) -> AsyncIterator[list[ReceivedFile]]:
    """The files of a multipart request, each already in the upload area; whatever is
    still there on leaving (not taken over by a submission) is deleted."""
    receiver = MultipartReceiver(
        _boundary(request), blobs=blobs, tenant=tenant, max_file_bytes=max_file_bytes
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > receiver.max_request_bytes:
        raise TooLargeError(
            f"the upload is {int(declared)} bytes; a request takes at most {MAX_FILES} files "
            f"of {max_file_bytes / 2**20:.3g} MB each (api.max_upload_mb)"
        )
    try:
        await _pump(request, receiver)
        if not receiver.files:
            raise InvalidRequestError(f"no files in the upload (send them as {FIELD!r})")
        yield receiver.files
    finally:
        await run_in_threadpool(receiver.discard)


async def _pump(request: Request, receiver: MultipartReceiver) -> None:
    """Feed the body to the parser until its closing boundary; after that, read on to
    the end of the body only while it is short (a longer epilogue is never read)."""
    pending = bytearray()
    done, after_end = False, 0
    try:
        async for chunk in request.stream():
            if done:
                after_end += len(chunk)
                if after_end > PART_OVERHEAD:
                    return
                continue
            pending += chunk
            if len(pending) >= FEED_BYTES:
                done = await run_in_threadpool(receiver.feed, bytes(pending))
                pending.clear()
    except ClientDisconnect as exc:
        raise InvalidRequestError("the client went away during the upload") from exc
    if not done and not await run_in_threadpool(receiver.feed, bytes(pending)):
        raise InvalidRequestError("the multipart body ends before its closing boundary")


def _boundary(request: Request) -> bytes:
    kind, options = parse_options_header(request.headers.get("content-type"))
    if kind != b"multipart/form-data":
        raise HTTPException(415, "send the files as multipart/form-data")
    boundary = options.get(b"boundary", b"")
    if not boundary or len(boundary) > 200:
        raise InvalidRequestError("multipart/form-data without a valid boundary")
    return boundary


class MultipartReceiver:
    """python-multipart's callbacks: each file part written into the blob store as its
    bytes come, every count and size bounded. Not thread-safe: one request's parts."""

    def __init__(
        self, boundary: bytes, *, blobs: BlobStore, tenant: str, max_file_bytes: int
    ) -> None:
        self._blobs = blobs
        self._tenant = tenant
        self.max_file_bytes = max_file_bytes
        self.max_request_bytes = (
            MAX_FILES * (max_file_bytes + PART_OVERHEAD)
            + MAX_FIELDS * (MAX_FIELD_BYTES + PART_OVERHEAD)
            + PART_OVERHEAD
        )
        self.files: list[ReceivedFile] = []
        self._parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
                "on_end": self._end,
            },
        )
        self._done = False
        self._received = self._data = self._parts = self._fields = 0
        self._name_bytes = bytearray()
        self._value_bytes = bytearray()
        self._disposition = b""
        self._open: tuple[ReceivedFile, BlobWriter] | None = None  # the file being received
        self._field_bytes = 0

    def feed(self, chunk: bytes) -> bool:
        """Parse the next bytes of the body; True once its closing boundary has come."""
        try:
            self._parser.write(chunk)
        except FormParserError as exc:
            raise InvalidRequestError(f"malformed multipart body: {exc}") from exc
        self._received += len(chunk)
        if not self._done and self._received - self._data > PART_OVERHEAD * (self._parts + 1):
            raise InvalidRequestError("malformed multipart body: too much besides the parts")
        return self._done

    def discard(self) -> None:
        """Drop a file cut short and every received upload still in the upload area."""
        cut_short = [self._open[0]] if self._open else []
        if self._open is not None:
            self._open[1].discard()
            self._open = None
        for received in [*self.files, *cut_short]:
            self._blobs.delete(upload_folder(received.key))

    def _part_begin(self) -> None:
        self._parts += 1
        self._disposition = b""
        self._field_bytes = 0

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._name_bytes += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value_bytes += data[start:end]

    def _header_end(self) -> None:
        if bytes(self._name_bytes).strip().lower() == b"content-disposition":
            self._disposition = bytes(self._value_bytes)
        self._name_bytes.clear()
        self._value_bytes.clear()

    def _headers_finished(self) -> None:
        kind, options = parse_options_header(self._disposition)
        if kind != b"form-data" or b"name" not in options:
            raise InvalidRequestError("a multipart part without Content-Disposition: form-data")
        name, filename = options[b"name"], options.get(b"filename")
        if filename is None and name != FIELD.encode():
            self._fields += 1
            if self._fields > MAX_FIELDS:
                raise InvalidRequestError(f"more than {MAX_FIELDS} form fields")
            return
        if filename is None or name != FIELD.encode():
            raise InvalidRequestError(
                f"send each file as a {FIELD!r} part with a file name "
                f"(got a part named {name.decode('latin-1')!r})"
            )
        if len(self.files) >= MAX_FILES:
            raise InvalidRequestError(f"more than {MAX_FILES} files in one upload")
        self._start_file(_file_name(filename))

    def _start_file(self, filename: str) -> None:
        key = upload_key(self._tenant, safe_filename(filename))
        self._open = (
            ReceivedFile(filename, key),
            self._blobs.writer(key, max_bytes=self.max_file_bytes),
        )

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        self._data += end - start
        if self._open is None:
            self._field_bytes += end - start  # a form field: dropped, but bounded
            if self._field_bytes > MAX_FIELD_BYTES:
                raise InvalidRequestError(f"a form field over {MAX_FIELD_BYTES} bytes")
            return
        received, writer = self._open
        try:
            writer.write(data[start:end])
        except TooLargeError as exc:
            raise TooLargeError(
                f"{received.filename}: larger than the limit of "
                f"{self.max_file_bytes / 2**20:.3g} MB (api.max_upload_mb)"
            ) from exc

    def _part_end(self) -> None:
        if self._open is not None:
            received, writer = self._open
            writer.commit()
            self.files.append(received)
            self._open = None

    def _end(self) -> None:
        self._done = True


def _file_name(raw: bytes) -> str:
    """The client's file name: UTF-8, and short enough for any file system."""
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequestError("a file name that is not valid UTF-8") from exc
    if len(name) > MAX_FILENAME_CHARS:
        raise InvalidRequestError(f"a file name over {MAX_FILENAME_CHARS} characters")
    return name
