"""Tenants over HTTP: each key sees its own tenant's data only, and a foreign id is a 404."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from mmrag.settings import Settings
from tests.api.test_api import error_of, upload

KEYS = {
    "acme": "acme-admin-key",
    "globex": "globex-admin-key",
    "acme-reader": "acme-read-key",
}
FACTS = {
    "acme": [
        "The Acme Falcon rover carries 14 spectrometers across the Dune plateau.",
        "Acme's Halcyon reactor runs at 390 kelvin during the night shift.",
        "The Acme archive in Lowmoor stores 8000 maps of coastal caves.",
    ],
    "globex": [
        "The Globex Falcon rover carries 22 barometers across the Dune plateau.",
        "Globex's Halcyon reactor runs at 410 kelvin during the night shift.",
        "The Globex archive in Lowmoor stores 6000 maps of coastal caves.",
    ],
}
QUESTIONS = [
    "How many instruments does the Falcon rover carry?",
    "What temperature does the Halcyon reactor run at?",
    "How many maps are stored in the Lowmoor archive?",
    "What does the rover carry across the Dune plateau?",
    "Which archive stores maps of coastal caves?",
]


def auth(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[who]}"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    keys = [
        {"key": KEYS["acme"], "tenant": "acme", "role": "admin"},
        {"key": KEYS["globex"], "tenant": "globex", "role": "admin"},
        {"key": KEYS["acme-reader"], "tenant": "acme", "role": "read"},
    ]
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("tenants"), profile="offline", api={"keys": keys}
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def uploads(client: TestClient, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    """Each tenant uploads its own facts, plus one byte-identical file both upload."""
    folder = tmp_path_factory.mktemp("tenant-files")
    shared = folder / "shared.txt"
    shared.write_text("Both tenants keep the same Lowmoor visitor guide with 12 pages.")
    uploaded: dict[str, list[dict]] = {}
    for tenant, facts in FACTS.items():
        paths = []
        for number, fact in enumerate(facts):
            path = folder / f"{tenant}-{number}.txt"
            path.write_text(fact)
            paths.append(path)
        uploaded[tenant] = upload(client, *paths, shared, headers=auth(tenant))
        assert all(doc["status"] == "queued" and doc["job_id"] for doc in uploaded[tenant])
    return uploaded


@pytest.fixture(scope="module")
def documents(uploads: dict[str, list[dict]]) -> dict[str, set[str]]:
    ids = {tenant: {doc["id"] for doc in docs} for tenant, docs in uploads.items()}
    assert not ids["acme"] & ids["globex"]  # the same bytes are two documents, one per tenant
    return ids


def test_each_tenant_sees_only_its_own_data(
    client: TestClient, documents: dict[str, set[str]]
) -> None:
    for tenant, other in (("acme", "globex"), ("globex", "acme")):
        listed = client.get("/v1/documents", headers=auth(tenant)).json()
        assert {doc["id"] for doc in listed["documents"]} == documents[tenant]
        assert listed["total"] == len(documents[tenant])
        for number in range(50):
            question = QUESTIONS[number % len(QUESTIONS)]
            filters = {"kinds": ["text"]} if number % 2 else {}
            hits = client.post(
                "/v1/search",
                json={"query": question, "limit": 20, "filters": filters},
                headers=auth(tenant),
            ).json()["hits"]
            assert hits and {hit["document_id"] for hit in hits} <= documents[tenant]
            assert not any(other.capitalize() in hit["text"] for hit in hits)
            if number % 10 == 0:
                answer = client.post(
                    "/v1/ask", json={"question": question}, headers=auth(tenant)
                ).json()
                cited = {c["document_id"] for c in answer["citations"]}
                shown = {s["document_id"] for s in answer["sources"]}
                assert (cited | shown) <= documents[tenant]
                assert other.capitalize() not in answer["answer"]


def test_foreign_ids_are_not_found(
    client: TestClient, documents: dict[str, set[str]], uploads: dict[str, list[dict]]
) -> None:
    foreign = next(iter(documents["globex"]))
    error_of(client.get(f"/v1/documents/{foreign}", headers=auth("acme")), 404)
    error_of(client.get(f"/v1/documents/{foreign}/events", headers=auth("acme")), 404)
    error_of(client.delete(f"/v1/documents/{foreign}", headers=auth("acme")), 404)
    assert client.get(f"/v1/documents/{foreign}", headers=auth("globex")).status_code == 200
    foreign_job = uploads["globex"][0]["job_id"]
    error_of(client.get(f"/v1/jobs/{foreign_job}", headers=auth("acme")), 404)
    assert client.get(f"/v1/jobs/{foreign_job}", headers=auth("globex")).status_code == 200


def test_foreign_images_are_not_found(client: TestClient, tmp_path: Path) -> None:
    from PIL import Image, ImageDraw

    picture = Image.new("RGB", (320, 200), "white")
    ImageDraw.Draw(picture).text((20, 80), "GLOBEX SECRET CHART 42", fill="black")
    picture.save(tmp_path / "chart.png")
    (uploaded,) = upload(client, tmp_path / "chart.png", headers=auth("globex"))
    hits = client.post(
        "/v1/search",
        json={"query": "secret chart", "filters": {"kinds": ["image"]}},
        headers=auth("globex"),
    ).json()["hits"]
    image_url = next(hit["image_url"] for hit in hits if hit["document_id"] == uploaded["id"])
    assert client.get(image_url, headers=auth("globex")).status_code == 200
    error_of(client.get(image_url, headers=auth("acme")), 404)


def test_filters_cannot_widen_the_scope(client: TestClient, documents: dict[str, set[str]]) -> None:
    foreign = sorted(documents["globex"])
    widened = client.post(
        "/v1/search",
        json={"query": "Falcon rover", "filters": {"document_ids": foreign}},
        headers=auth("acme"),
    )
    assert widened.status_code == 200 and widened.json()["hits"] == []
    for field in ("tenant", "document_id", "run_id"):
        body = {"query": "Falcon rover", "filters": {"metadata": {field: "globex"}}}
        error_of(client.post("/v1/search", json=body, headers=auth("acme")), 400)


def test_roles(client: TestClient, documents: dict[str, set[str]], tmp_path: Path) -> None:
    (tmp_path / "note.txt").write_text("A reader may not upload this.")
    files = [("files", ("note.txt", (tmp_path / "note.txt").read_bytes()))]
    reader = auth("acme-reader")
    assert error_of(client.post("/v1/documents", files=files, headers=reader), 403)
    own = next(iter(documents["acme"]))
    error_of(client.delete(f"/v1/documents/{own}", headers=reader), 403)
    error_of(client.get("/metrics", headers=reader), 403)
    listed = client.get("/v1/documents", headers=reader).json()["documents"]
    assert {doc["id"] for doc in listed} == documents["acme"]
    assert client.get("/metrics", headers=auth("acme")).status_code == 200
