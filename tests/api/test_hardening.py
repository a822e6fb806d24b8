"""Hostile requests: refused early and cheaply, with a 4xx and a clear message, never a 500.

Uploads are sent straight to the ASGI app, chunk by chunk as a server would pass them
on, so a test sees how many bytes the app read before it answered; what was written is
the process's own count of bytes written (``write_chars``: to every file, the blob store
and the temp folder included: nothing is spooled anywhere). The 2 GiB variant, over a
real socket, is in the ``hostile`` tier.
"""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.uploads import MAX_FILES
from mmrag.errors import InvalidRequestError, TooLargeError
from mmrag.retrieval import SearchFilters, checked_text
from mmrag.services import build_services
from mmrag.settings import Settings
from mmrag.testing import FakeTextEmbedder
from tests.api.test_api import error_of

MiB = 1 << 20
CHUNK = 64 * 1024  # what uvicorn hands on at a time
KEYS = {"admin": "hard-admin-key", "write": "hard-write-key", "read": "hard-read-key"}
BOUNDARY = "hardening-boundary"


def auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[role]}"}


def settings_for(data_dir: Path, **api: Any) -> Settings:
    keys = [{"key": key, "tenant": "acme", "role": role} for role, key in KEYS.items()]
    return Settings(data_dir=data_dir, profile="offline", api={"keys": keys, **api})


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """Real offline models (the tokenizer a lone surrogate used to crash), a 1 MB upload limit."""
    settings = settings_for(tmp_path_factory.mktemp("hardening"), max_upload_mb=1)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@contextmanager
def bytes_written() -> Iterator[Callable[[], int]]:
    """Bytes this process writes (to any file) inside the block."""
    process = psutil.Process()
    start = process.io_counters().write_chars
    yield lambda: process.io_counters().write_chars - start


@dataclass
class Answered:
    status: int
    body: dict
    read: int  # request body bytes the app had taken when it answered
    headers: dict[str, str] = field(default_factory=dict)


def post_stream(
    client: TestClient, path: str, headers: dict[str, str], chunks: Iterator[bytes]
) -> Answered:
    """POST ``chunks`` to the running app through ASGI, one message per chunk (sent
    chunked, as a client does with a body of unknown length, unless given a length)."""
    if "Content-Length" not in headers:
        headers = {**headers, "Transfer-Encoding": "chunked"}
    return client.portal.call(_post_stream, client.app, path, headers, chunks)  # type: ignore[union-attr]


async def _post_stream(
    app: FastAPI, path: str, headers: dict[str, str], chunks: Iterator[bytes]
) -> Answered:
    answered = Answered(0, {}, 0)
    body = bytearray()

    async def receive() -> dict:
        if answered.status:  # answered: the client stops sending
            return {"type": "http.disconnect"}
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        answered.read += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            answered.status = message["status"]
            answered.headers = {k.decode(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    await app(scope, receive, send)
    answered.body = json.loads(body)
    return answered


def multipart(size: int, filename: str = "big.txt") -> Iterator[bytes]:
    """One file part of ``size`` bytes, in `CHUNK`s, made as it is read."""
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; '
        f'filename="{filename}"\r\nContent-Type: text/plain\r\n\r\n'
    ).encode()
    block = b"x" * CHUNK
    for _ in range(size // CHUNK):
        yield block
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def leftovers(client: TestClient) -> list[Path]:
    root = client.app.state.services.settings.blob_root  # type: ignore[attr-defined]
    return [path for path in (root / "uploads").rglob("*") if path.is_file()]


# 1. Uploads: the key first, then the body as a stream, refused as soon as it is too big.


@pytest.mark.parametrize("role, status", [(None, 401), ("read", 403)])
def test_upload_refused_before_reading_the_body(
    client: TestClient, role: str | None, status: int
) -> None:
    headers = {**MULTIPART, **(auth(role) if role else {})}
    with bytes_written() as written:
        answered = post_stream(client, "/v1/documents", headers, multipart(64 * MiB))
    assert answered.status == status, answered.body
    assert answered.read == 0  # not a byte of the 64 MiB body was read
    assert answered.headers["connection"] == "close"  # the server stops receiving it
    assert written() < MiB
    assert not leftovers(client)


def test_upload_over_the_limit_stops_at_the_limit(client: TestClient) -> None:
    limit = MiB  # api.max_upload_mb = 1
    with bytes_written() as written:
        answered = post_stream(
            client, "/v1/documents", {**MULTIPART, **auth("write")}, multipart(64 * MiB)
        )
    assert answered.status == 413 and answered.body["error"]["type"] == "too_large"
    assert "big.txt" in answered.body["error"]["message"]
    assert answered.read < limit + 2 * MiB  # the rest of the 64 MiB is never read
    assert answered.headers["connection"] == "close"
    assert written() < limit + MiB
    assert not leftovers(client)


def test_upload_declaring_too_much_is_refused_at_once(client: TestClient) -> None:
    headers = {**MULTIPART, **auth("write"), "Content-Length": str(2 << 30)}
    answered = post_stream(client, "/v1/documents", headers, multipart(64 * MiB))
    assert answered.status == 413 and answered.read == 0


def test_upload_under_the_limit_is_accepted(client: TestClient) -> None:
    answered = post_stream(
        client, "/v1/documents", {**MULTIPART, **auth("write")}, multipart(MiB // 2)
    )
    assert answered.status == 202, answered.body
    assert "connection" not in answered.headers  # read to its end: the connection is kept
    assert not leftovers(client)  # moved to the document's original


def files(*named: tuple[str, bytes]) -> list[tuple[str, tuple[str, bytes]]]:
    return [("files", (name, content)) for name, content in named]


def test_equal_safe_names_never_share_a_file(client: TestClient) -> None:
    sent = files(("a/report.txt", b"first report"), ("b\\report.txt", b"second report"))
    response = client.post("/v1/documents", files=sent, headers=auth("write"))
    first, second = response.json()["documents"]
    assert first["id"] != second["id"]
    blobs = client.app.state.services.blobs  # type: ignore[attr-defined]
    stored = [
        blobs.path(key).read_bytes()
        for document in (first, second)
        for key in blobs.keys(f"originals/{document['id']}/")
    ]
    assert sorted(stored) == [b"first report", b"second report"]


def test_library_uploads_from_a_stream(client: TestClient) -> None:
    documents = client.app.state.services.documents  # type: ignore[attr-defined]
    first = documents.submit_upload("acme", "x/same.txt", io.BytesIO(b"one"), max_bytes=100)
    second = documents.submit_upload("acme", "y\\same.txt", io.BytesIO(b"two"), max_bytes=100)
    assert first.record and second.record
    assert first.record.document_id != second.record.document_id
    with pytest.raises(TooLargeError):
        documents.submit_upload("acme", "big.txt", io.BytesIO(b"x" * 101), max_bytes=100)
    assert not leftovers(client)


def test_long_file_names(client: TestClient) -> None:
    fits = client.post(
        "/v1/documents", files=files(("n" * 251 + ".txt", b"long name")), headers=auth("write")
    )
    assert fits.status_code == 202, fits.text  # was a 500 (file name too long on disk)
    too_long = client.post(
        "/v1/documents", files=files(("n" * 300 + ".txt", b"x")), headers=auth("write")
    )
    assert "255" in error_of(too_long, 400)["message"]


@pytest.mark.parametrize(
    "headers, body, status, words",
    [
        ({"Content-Type": "application/json"}, b'{"files": []}', 415, "multipart/form-data"),
        (MULTIPART, f"--{BOUNDARY}--\r\n".encode(), 400, "no files"),
        (MULTIPART, b"not multipart at all", 400, "malformed multipart"),
        (MULTIPART, f"--{BOUNDARY}\r\n".encode(), 400, "closing boundary"),
        (
            MULTIPART,
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"'
            f"\r\n\r\nabc\r\n--{BOUNDARY}--\r\n".encode(),
            400,
            "'files'",
        ),
        (
            MULTIPART,
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="'.encode()
            + b"\xff\xfe.txt"
            + f'"\r\n\r\nabc\r\n--{BOUNDARY}--\r\n'.encode(),
            400,
            "UTF-8",
        ),
    ],
)
def test_malformed_uploads(
    client: TestClient, headers: dict, body: bytes, status: int, words: str
) -> None:
    response = client.post("/v1/documents", content=body, headers={**headers, **auth("write")})
    assert words in error_of(response, status)["message"]
    assert not leftovers(client)


def test_upload_counts_are_bounded(client: TestClient) -> None:
    many = files(*((f"{n}.txt", b"x") for n in range(MAX_FILES + 1)))
    response = client.post("/v1/documents", files=many, headers=auth("write"))
    assert str(MAX_FILES) in error_of(response, 400)["message"]
    fields = {f"field{n}": "value" for n in range(40)}
    response = client.post(
        "/v1/documents", data=fields, files=files(("a.txt", b"a")), headers=auth("write")
    )
    assert "form fields" in error_of(response, 400)["message"]
    assert not leftovers(client)


# 2. Invalid Unicode, huge integers, unbounded lists and strings: 400 (or 413), never 500.

SURROGATE = '"\\ud800"'  # a JSON escape Python decodes to a lone surrogate


@pytest.mark.parametrize(
    "path, body",
    [
        ("/v1/search", f'{{"query": {SURROGATE}}}'),
        ("/v1/search", f'{{"query": "a {SURROGATE[1:-1]} b"}}'),
        ("/v1/ask", f'{{"question": {SURROGATE}}}'),
        ("/v1/ask", f'{{"question": "x", "stream": true, "filters": {{"kinds": [{SURROGATE}]}}}}'),
        ("/v1/search", f'{{"query": "x", "filters": {{"document_ids": [{SURROGATE}]}}}}'),
        ("/v1/search", f'{{"query": "x", "filters": {{"metadata": {{"k": {SURROGATE}}}}}}}'),
        ("/v1/search", f'{{"query": "x", "filters": {{"metadata": {{{SURROGATE}: 1}}}}}}'),
        ("/v1/search", f'{{"query": "x", "unknown": {SURROGATE}}}'),
    ],
)
def test_lone_surrogates_in_json_are_400(client: TestClient, path: str, body: str) -> None:
    response = client.post(
        path, content=body.encode(), headers={**auth("read"), "content-type": "application/json"}
    )
    assert "invalid Unicode" in error_of(response, 400)["message"]


@pytest.mark.parametrize(
    "method, url",
    [
        ("GET", "/v1/documents/%ED%A0%80"),  # a surrogate, UTF-8 encoded
        ("GET", "/v1/documents/%FF%FE/events"),
        ("DELETE", "/v1/documents/a%C0%AF"),
        ("GET", "/v1/jobs/%ED%BF%BF"),
        ("GET", "/v1/images/%80"),
        ("GET", "/v1/documents?limit=%ED%A0%80"),
        ("GET", "/v1/documents?offset=1&x=%FF"),
    ],
)
def test_invalid_utf8_in_the_url_is_400(client: TestClient, method: str, url: str) -> None:
    response = client.request(method, url, headers=auth("admin"))
    assert "UTF-8" in error_of(response, 400)["message"]


@pytest.mark.parametrize(
    "filters",
    [
        {"metadata": {"n": 10**30}},
        {"metadata": {"n": -(10**30)}},
        {"metadata": {"n": 2**63}},
        {"page_from": 10**30},
        {"page_to": 2**64},
    ],
)
def test_integers_past_int64_are_400(client: TestClient, filters: dict) -> None:
    for path, text_field in (("/v1/search", "query"), ("/v1/ask", "question")):
        response = client.post(
            path, json={text_field: "x", "filters": filters}, headers=auth("read")
        )
        error_of(response, 400)


def test_int64_integers_are_fine(client: TestClient) -> None:
    filters = {"metadata": {"n": 2**63 - 1, "m": -(2**63)}, "page_from": 2**63 - 1}
    response = client.post(
        "/v1/search", json={"query": "x", "filters": filters}, headers=auth("read")
    )
    assert response.status_code == 200, response.text
    listed = client.get(f"/v1/documents?offset={2**63 - 1}", headers=auth("read"))
    assert listed.status_code == 200, listed.text
    error_of(client.get(f"/v1/documents?offset={10**30}", headers=auth("read")), 400)


@pytest.mark.parametrize(
    "filters, words",
    [
        ({"document_ids": ["d"] * 1001}, "at most 1000"),
        ({"document_ids": ["d" * 257]}, "at most 256"),
        ({"kinds": ["text"] * 17}, "at most 16"),
        ({"file_types": ["pdf"] * 17}, "at most 16"),
        ({"metadata": {f"k{n}": n for n in range(33)}}, "at most 32"),
        ({"metadata": {"k" * 257: 1}}, "at most 256"),
        ({"metadata": {"k": "v" * 1025}}, "at most 1024 characters"),
        ({"metadata": {"a.b": 1}}, "pattern"),
        ({"metadata": {"k": [1, 2]}}, "64-bit integer or a boolean"),
        ({"metadata": {"k": 10**30}}, "64-bit integer"),
    ],
)
def test_filters_are_bounded(client: TestClient, filters: dict, words: str) -> None:
    response = client.post(
        "/v1/search", json={"query": "x", "filters": filters}, headers=auth("read")
    )
    assert words in error_of(response, 400)["message"]


def test_strings_are_bounded(client: TestClient) -> None:
    long = "why " * 600  # over api.max_question_chars (2000)
    for path, text_field in (("/v1/search", "query"), ("/v1/ask", "question")):
        response = client.post(path, json={text_field: long}, headers=auth("read"))
        assert "max_question_chars" in error_of(response, 400)["message"]
    channels = client.post(
        "/v1/search", json={"query": "x", "channels": ["text"] * 17}, headers=auth("read")
    )
    error_of(channels, 400)


def test_json_bodies_are_bounded_before_they_are_read(client: TestClient) -> None:
    huge_value = {"query": "x", "filters": {"metadata": {"k": "v" * (50 * MiB)}}}
    started = time.monotonic()
    response = client.post("/v1/search", json=huge_value, headers=auth("read"))
    assert error_of(response, 413)["type"] == "too_large"
    many_ids = {"query": "x", "filters": {"document_ids": [f"{n:016x}" for n in range(10**6)]}}
    response = client.post("/v1/search", json=many_ids, headers=auth("read"))
    error_of(response, 413)
    assert time.monotonic() - started < 10  # was 40 s and +820 MB for the ids alone

    def endless() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"query": "'
        while True:
            yield b"x" * CHUNK

    headers = {**auth("read"), "Content-Type": "application/json"}
    answered = post_stream(client, "/v1/search", headers, endless())
    assert answered.status == 413 and answered.read <= MiB + CHUNK


def test_the_library_refuses_them_too() -> None:
    with pytest.raises(InvalidRequestError, match="lone surrogate"):
        checked_text("a\ud800", 100)
    for filters in (
        SearchFilters(metadata={"n": 10**30}),
        SearchFilters(page_to=2**63),
        SearchFilters(metadata={"a[0]": 1}),
    ):
        with pytest.raises(InvalidRequestError):
            filters.to_point_filter("acme")


def test_405_names_every_method(client: TestClient) -> None:
    response = client.request("PATCH", "/v1/documents/abc", headers=auth("read"))
    assert error_of(response, 405)["type"] == "method_not_allowed"
    assert {m.strip() for m in response.headers["allow"].split(",")} >= {"GET", "DELETE"}


# 3. The API's documentation and metrics take a key, unless a setting opens them.

DOCS = ("/openapi.json", "/docs", "/redoc")


def test_docs_and_metrics_take_a_key(client: TestClient) -> None:
    for path in (*DOCS, "/metrics"):
        error_of(client.get(path), 401)
        error_of(client.get(path, headers={"Authorization": "Bearer wrong"}), 401)
    for path in DOCS:
        assert client.get(path, headers=auth("read")).status_code == 200  # any role
    error_of(client.get("/metrics", headers=auth("write")), 403)  # admin only
    assert client.get("/metrics", headers=auth("admin")).status_code == 200
    assert client.get("/healthz").status_code == 200
    served = client.get("/openapi.json", headers=auth("read")).json()
    assert served == client.app.openapi()  # type: ignore[attr-defined]  # what test_fuzz uses
    assert "/openapi.json" not in served["paths"] and "/v1/ask" in served["paths"]


@pytest.mark.parametrize(
    "opened, open_paths, closed_paths",
    [
        ({"open_docs": True}, DOCS, ("/metrics",)),
        ({"open_metrics": True}, ("/metrics",), DOCS),
    ],
)
def test_settings_open_docs_or_metrics(
    tmp_path: Path, opened: dict, open_paths: tuple, closed_paths: tuple
) -> None:
    settings = settings_for(tmp_path, **opened)
    app = create_app(settings, build_services(settings, text_embedder=FakeTextEmbedder()))
    with TestClient(app) as open_client:
        for path in open_paths:
            assert open_client.get(path).status_code == 200, path
        for path in closed_paths:
            error_of(open_client.get(path), 401)
        error_of(open_client.post("/v1/search", json={"query": "x"}), 401)  # the API is not


def test_the_upload_route_documents_its_body(client: TestClient) -> None:
    schema = client.get("/openapi.json", headers=auth("read")).json()
    upload = schema["paths"]["/v1/documents"]["post"]
    body = upload["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["properties"]["files"]["items"] == {"type": "string", "format": "binary"}
    assert {"401", "403", "413", "415"} <= set(upload["responses"])


# The 2 GiB upload of the finding, over a real socket: its own tier.


@pytest.mark.hostile
@pytest.mark.parametrize("role, status", [(None, 401), ("write", 413)])
def test_two_gib_upload_over_a_socket(tmp_path: Path, role: str | None, status: int) -> None:
    settings = settings_for(tmp_path)  # api.max_upload_mb at its default, 100
    limit = int(settings.api.max_upload_mb * MiB)
    app = create_app(settings, build_services(settings, text_embedder=FakeTextEmbedder()))
    with serving(app) as url, bytes_written() as written:
        sent = 0

        def body() -> Iterator[bytes]:
            nonlocal sent
            for chunk in multipart(2 << 30):
                sent += len(chunk)
                yield chunk

        headers = {**MULTIPART, **(auth(role) if role else {})}
        started = time.monotonic()
        try:
            response = httpx.post(f"{url}/v1/documents", content=body(), headers=headers)
            assert response.status_code == status, response.text
        except httpx.TransportError:
            pass  # the server answered and closed while the client was still sending
        seconds = time.monotonic() - started
    bound = MiB if role is None else limit + MiB
    assert written() < bound, (written(), sent, seconds)
    assert sent < (2 << 30) // 4, sent  # the client was stopped long before 2 GiB


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
