"""The HTTP service end to end: real offline models, the embedded store, TestClient."""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api.app import create_app
from mmrag.models.answerers import OpenAIAnswerer
from mmrag.services import build_services
from mmrag.settings import AnswererSettings, Settings
from mmrag.store import PointFilter
from mmrag.testing.documents import CHART_LABELS, FACTS, GeneratedCorpus, write_long_pdf


def make_client(settings: Settings, **parts: object) -> TestClient:
    services = build_services(settings, **parts) if parts else None
    return TestClient(create_app(settings, services=services))


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("api"), profile="offline")
    with make_client(settings) as test_client:
        yield test_client


def upload(client: TestClient, *paths: Path, headers: dict | None = None) -> list[dict]:
    """Upload and wait until the service's worker has finished every document."""
    files = [("files", (path.name, path.read_bytes())) for path in paths]
    response = client.post("/v1/documents", files=files, headers=headers)
    assert response.status_code == 202, response.text
    documents = response.json()["documents"]
    for document in documents:
        wait_finished(client, document["id"], headers=headers)
    return documents


def wait_finished(
    client: TestClient, document_id: str, headers: dict | None = None, timeout_s: float = 120
) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        record = client.get(f"/v1/documents/{document_id}", headers=headers).json()
        if record["status"] not in ("queued", "processing"):
            return record
        assert time.monotonic() < deadline, f"{document_id} still {record['status']}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def uploaded(client: TestClient, corpus: GeneratedCorpus) -> dict[str, str]:
    names = ("pdf", "docx", "text", "png")
    documents = upload(client, *(corpus.good[name] for name in names))
    return {name: doc["id"] for name, doc in zip(names, documents, strict=True)}


def error_of(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["message"] and "Traceback" not in response.text
    return body


def test_upload_status_search_image_delete(client: TestClient, uploaded: dict[str, str]) -> None:
    document = client.get(f"/v1/documents/{uploaded['pdf']}").json()
    assert document["status"] == "indexed" and document["pages"] == 2
    listed = {d["id"] for d in client.get("/v1/documents").json()["documents"]}
    assert set(uploaded.values()) <= listed

    hits = client.post("/v1/search", json={"query": "Zephyr turbine megawatts"}).json()["hits"]
    assert hits[0]["document_id"] == uploaded["pdf"] and "42 megawatts" in hits[0]["text"]

    images = client.post(
        "/v1/search",
        json={"query": f"{CHART_LABELS['pdf']} chart", "filters": {"kinds": ["image"]}},
    ).json()["hits"]
    image = client.get(images[0]["image_url"])
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")

    assert client.delete(f"/v1/documents/{uploaded['png']}").status_code == 200
    error_of(client.get(f"/v1/documents/{uploaded['png']}"), 404)


def test_page_images_crops_and_regions_show_the_evidence(
    client: TestClient, uploaded: dict[str, str]
) -> None:
    pdf = uploaded["pdf"]
    answer = client.post("/v1/ask", json={"question": "How often are Zephyr blades inspected?"})
    citation = answer.json()["citations"][0]
    assert citation["document_id"] == pdf and citation["bbox"] is not None
    page = client.get(f"/v1/documents/{pdf}/pages/{citation['page']}", params={"width": 800})
    assert page.status_code == 200 and page.headers["content-type"] == "image/png"
    width, height = float(page.headers["X-Page-Width"]), float(page.headers["X-Page-Height"])
    assert (width, height) == (612, 792)  # US Letter, in points: the unit of the boxes
    with Image.open(io.BytesIO(page.content)) as shown:
        assert shown.width == 800 and abs(shown.height - 800 * height / width) <= 1
        scale = shown.width / width
        x0, y0, x1, y1 = (round(v * scale) for v in citation["bbox"])
        cited = shown.crop((x0, y0, x1, y1)).convert("L")
        assert cited.getextrema()[0] < 100, "the cited box on the page holds dark text"

    bbox = ",".join(str(v) for v in citation["bbox"])
    crop = client.get(f"/v1/documents/{pdf}/pages/{citation['page']}", params={"bbox": bbox})
    with Image.open(io.BytesIO(crop.content)) as region:
        x0, y0, x1, y1 = citation["bbox"]
        assert abs(float(crop.headers["X-Page-Width"]) - (x1 - x0)) < 1
        assert abs(region.width - (x1 - x0) * 1000 / width) <= 2  # at the default width

    regions = client.get(f"/v1/documents/{pdf}/pages/{citation['page']}/regions").json()
    assert regions["page"] == citation["page"]
    texts = [r for r in regions["regions"] if r["kind"] == "text"]
    assert any("90 days" in r["text"] and r["bbox"] for r in texts), regions

    # The page as a picture is a query too: its OCR'd text finds the page it shows.
    hits = client.post(
        "/v1/search/image", content=page.content, headers={"content-type": "image/png"}
    )
    assert hits.status_code == 200, hits.text
    assert hits.json()["hits"][0]["document_id"] == pdf


def test_page_image_errors_say_why(client: TestClient, uploaded: dict[str, str]) -> None:
    pdf = uploaded["pdf"]
    error = error_of(client.get(f"/v1/documents/{pdf}/pages/9"), 404)
    assert "has no page 9 (it has 2)" in error["message"]
    error = error_of(client.get(f"/v1/documents/{uploaded['docx']}/pages/1"), 415)
    assert "DOCX documents have no page images" in error["message"]
    error_of(client.get(f"/v1/documents/{pdf}/pages/1", params={"bbox": "1,2,3"}), 400)
    error_of(client.get(f"/v1/documents/{pdf}/pages/0"), 400)
    error_of(client.get("/v1/documents/nope/pages/1"), 404)
    error_of(client.post("/v1/search/image", content=b"not an image"), 422)
    error_of(client.post("/v1/search/image", content=b""), 400)


def test_unchanged_reupload_is_recognised(
    client: TestClient, uploaded: dict[str, str], corpus: GeneratedCorpus
) -> None:
    (again,) = upload(client, corpus.good["text"])
    assert again == {
        "id": uploaded["text"],
        "filename": "plain.txt",
        "status": "indexed",
        "job_id": None,
    }


def test_corrupt_upload_is_accepted_then_fails_with_reason(
    client: TestClient, corpus: GeneratedCorpus
) -> None:
    (document,) = upload(client, corpus.bad["encrypted_pdf"])
    status = client.get(f"/v1/documents/{document['id']}").json()
    assert status["status"] == "failed" and "password" in status["error"]


def test_ask_answers_with_citations(client: TestClient, uploaded: dict[str, str]) -> None:
    body = client.post("/v1/ask", json={"question": "How often are Zephyr blades inspected?"})
    answer = body.json()
    assert body.status_code == 200 and not answer["abstained"] and "90 days" in answer["answer"]
    citation = answer["citations"][0]
    assert f"[{citation['marker']}]" in answer["answer"]
    assert citation["document_id"] == uploaded["pdf"] and citation["page"] == 2


def test_ask_abstains_without_evidence(client: TestClient, uploaded: dict[str, str]) -> None:
    answer = client.post("/v1/ask", json={"question": "Who won the 1998 football world cup?"})
    assert answer.json()["abstained"] is True and answer.json()["citations"] == []


def test_streaming_ask_sends_typed_events_in_order(
    client: TestClient, uploaded: dict[str, str]
) -> None:
    question = {"question": FACTS["docx"].replace("requires", "needs how many"), "stream": True}
    with client.stream("POST", "/v1/ask", json=question) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [
            line.removeprefix("event: ")
            for line in response.iter_lines()
            if line.startswith("event: ")
        ]
    assert events[0] == "retrieval" and events[-1] == "done"
    tokens = [i for i, e in enumerate(events) if e == "token"]
    citations = [i for i, e in enumerate(events) if e == "citation"]
    assert tokens and citations and max(tokens) < min(citations)


@pytest.mark.parametrize(
    "body, status",
    [
        ({"question": ""}, 400),
        ({"question": "   "}, 400),
        ({"question": "why " * 1000}, 400),
        ({"question": "x", "filters": {"kinds": ["video"]}}, 400),
        ({"question": 42}, 400),
        ({}, 400),
    ],
)
def test_bad_questions(client: TestClient, body: dict, status: int) -> None:
    error_of(client.post("/v1/ask", json=body), status)


def test_malformed_json_and_unknown_ids(client: TestClient) -> None:
    response = client.post(
        "/v1/search", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert error_of(response, 400)["type"] == "validation"
    error_of(client.get("/v1/documents/nope"), 404)
    error_of(client.delete("/v1/documents/nope"), 404)
    error_of(client.get("/v1/images/" + "0" * 64), 404)
    error_of(client.get("/v1/images/../../etc/passwd"), 404)


def test_unsupported_and_oversized_uploads(
    client: TestClient, corpus: GeneratedCorpus, tmp_path: Path
) -> None:
    unsupported = client.post(
        "/v1/documents", files=[("files", ("archive.xyz", corpus.bad["unsupported"].read_bytes()))]
    )
    assert error_of(unsupported, 415)["type"] == "unsupported_file"

    settings = Settings(data_dir=tmp_path, profile="offline", api={"max_upload_mb": 0.001})
    with make_client(settings) as small:
        big = small.post("/v1/documents", files=[("files", ("big.txt", b"word " * 1000))])
        assert error_of(big, 413)["type"] == "too_large"


def test_api_keys(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, profile="offline", api={"keys": ["s3cret"]})
    with make_client(settings) as locked:
        missing = locked.post("/v1/search", json={"query": "x"})
        assert error_of(missing, 401)["message"] == "missing API key"
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = locked.post(
            "/v1/search", json={"query": "x"}, headers={"Authorization": "Bearer nope"}
        )
        assert error_of(wrong, 401)["message"] == "invalid API key"
        right = locked.post(
            "/v1/search", json={"query": "x"}, headers={"Authorization": "Bearer s3cret"}
        )
        assert right.status_code == 200
        assert locked.get("/healthz").status_code == 200  # probes stay open


def failing_answerer(error: Exception) -> OpenAIAnswerer:
    def handle(request: httpx.Request) -> httpx.Response:
        raise error

    client = httpx.Client(base_url="http://vlm.test/v1", transport=httpx.MockTransport(handle))
    return OpenAIAnswerer(client=client, settings=AnswererSettings(model="served-vlm"))


@pytest.mark.parametrize(
    "error, status",
    [
        (httpx.ConnectError("connection refused"), 502),
        (httpx.ReadTimeout("timed out"), 504),
    ],
)
def test_vlm_down_or_slow(
    tmp_path: Path, corpus: GeneratedCorpus, error: Exception, status: int
) -> None:
    settings = Settings(data_dir=tmp_path, profile="offline")
    with make_client(settings, answerer=failing_answerer(error)) as client:
        upload(client, corpus.good["text"])
        question = {"question": "How many maps does the Juniper library hold?"}
        error_of(client.post("/v1/ask", json=question), status)
        with client.stream("POST", "/v1/ask", json={**question, "stream": True}) as response:
            lines = list(response.iter_lines())
        assert "event: error" in lines
        failure = json.loads(lines[lines.index("event: error") + 1].removeprefix("data: "))
        assert failure["error"]["status"] == status
        assert client.get("/healthz").json() == {"status": "ok"}  # still up


def test_health_ready_metrics_and_docs(client: TestClient, uploaded: dict[str, str]) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["checks"]["store"] == "ok"
    metrics = client.get("/metrics").text
    assert 'mmrag_http_requests_total{method="POST",route="/v1/search",status="200"}' in metrics
    assert 'mmrag_ingest_jobs_total{outcome="indexed"}' in metrics
    assert "mmrag_ingest_queue_depth 0.0" in metrics
    assert 'mmrag_catalog_jobs{state="done"}' in metrics
    assert "/v1/ask" in client.get("/openapi.json").json()["paths"]
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assert "cdn" not in html.lower() and "fonts.googleapis" not in html
        for asset in re.findall(r'(?:src|href)="(/docs-assets/[^"]+)"', html):
            assert client.get(asset).status_code == 200, asset
        assert "/docs-assets/" in html


def test_the_schema_describes_every_field_and_names_its_values(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    undescribed = [
        f"{name}.{field}"
        for name, schema in schemas.items()
        for field, spec in schema.get("properties", {}).items()
        if "description" not in spec
    ]
    assert not undescribed, undescribed

    def values(model: str, field: str) -> list[str]:
        spec = schemas[model]["properties"][field]
        ref = next((s["$ref"] for s in spec.get("allOf", [spec]) if "$ref" in s), None)
        return schemas[ref.rsplit("/", 1)[-1]]["enum"] if ref else spec["enum"]

    assert values("HitOut", "kind") == ["text", "table", "image", "page"]
    assert "indexed" in values("DocumentOut", "status")
    assert "cancelled" in values("JobOut", "state")


def test_progress_events_follow_a_job(client: TestClient, tmp_path: Path) -> None:
    pdf = write_long_pdf(tmp_path / "progress.pdf", pages=30, image_every=10)
    files = [("files", (pdf.name, pdf.read_bytes()))]
    (document,) = client.post("/v1/documents", files=files).json()["documents"]

    with client.stream("GET", f"/v1/documents/{document['id']}/events") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = list(response.iter_lines())

    events = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    data = [json.loads(line.removeprefix("data: ")) for line in lines if line.startswith("data: ")]
    assert events[-1] == "document" and data[-1]["status"] == "indexed"
    progress = [item for event, item in zip(events, data, strict=True) if event == "progress"]
    assert progress and progress[-1]["state"] == "done"
    assert progress[-1]["progress"]["pages"] == progress[-1]["progress"]["pages_total"] == 30
    assert progress[-1]["id"] == document["job_id"]
    job = client.get(f"/v1/jobs/{document['job_id']}").json()
    assert job["state"] == "done" and job["attempts"] == 1 and job["progress"]["images"] == 3


def test_delete_while_queued_or_running_never_comes_back(
    client: TestClient, tmp_path: Path
) -> None:
    long_pdf = write_long_pdf(tmp_path / "running.pdf", pages=120, image_every=10)
    queued_pdf = write_long_pdf(tmp_path / "queued.pdf", pages=20, image_every=10)
    files = [("files", (p.name, p.read_bytes())) for p in (long_pdf, queued_pdf)]
    running, queued = client.post("/v1/documents", files=files).json()["documents"]
    deadline = time.monotonic() + 60
    while client.get(f"/v1/jobs/{running['job_id']}").json()["state"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.02)

    for document in (running, queued):
        assert client.delete(f"/v1/documents/{document['id']}").status_code == 200

    assert wait_job_finished(client, queued["job_id"])["progress"]["stage"] == "cancelled"
    # The running job is "cancelling" until its worker notices and drops what it wrote.
    deadline = time.monotonic() + 60
    while (job := client.get(f"/v1/jobs/{running['job_id']}").json())["progress"][
        "stage"
    ] != "cancelled":
        assert job["state"] == "cancelled" and time.monotonic() < deadline, job
        time.sleep(0.05)
    services = client.app.state.services  # type: ignore[attr-defined]
    for _ in range(2):  # right away, and once more after any late step would have shown
        for document in (running, queued):
            assert services.store.count(PointFilter(match={"document_id": document["id"]})) == 0
            assert not services.blobs.keys(f"images/{document['id']}/")
            assert not services.blobs.keys(f"originals/{document['id']}/")
        time.sleep(1.0)
    for document in (running, queued):
        error_of(client.get(f"/v1/documents/{document['id']}"), 404)


def wait_job_finished(client: TestClient, job_id: str, timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while (job := client.get(f"/v1/jobs/{job_id}").json())["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
    return job
