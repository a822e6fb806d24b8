"""The ingest pipeline end to end, with fake models and the embedded store."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from mmrag.documents import Submission
from mmrag.errors import StoreError
from mmrag.files import document_id_for, find_files
from mmrag.pipeline import Ingestor
from mmrag.services import Services, build_services
from mmrag.settings import Settings
from mmrag.store import PointFilter, VectorStore
from mmrag.testing import FakeCaptioner, FakeImageEmbedder, FakeTextEmbedder
from mmrag.testing.documents import FACTS, GeneratedCorpus, write_long_pdf
from mmrag.types import DocumentRecord, DocumentStatus, StoredPoint


class RecordingStore(VectorStore):
    """Wraps a store; records upsert sizes; can fail after a number of upserts."""

    def __init__(self, inner: VectorStore, fail_after: int | None = None) -> None:
        self.inner = inner
        self.upserts: list[int] = []
        self.fail_after = fail_after

    def ensure_collection(self, schema):  # type: ignore[no-untyped-def]
        self.inner.ensure_collection(schema)

    def upsert(self, points: Sequence[StoredPoint]) -> None:
        if self.fail_after is not None and len(self.upserts) >= self.fail_after:
            raise KeyboardInterrupt  # what Ctrl-C does in the middle of a document
        self.upserts.append(len(points))
        self.inner.upsert(points)

    def delete(self, where: PointFilter) -> None:
        self.inner.delete(where)

    def count(self, where: PointFilter | None = None) -> int:
        return self.inner.count(where)

    def payloads(self, where: PointFilter, limit: int = 10_000) -> list[dict]:
        return self.inner.payloads(where, limit)

    def vectors(self, point_ids, name):  # type: ignore[no-untyped-def]
        return self.inner.vectors(point_ids, name)

    def search(self, queries):  # type: ignore[no-untyped-def]
        return self.inner.search(queries)

    def close(self) -> None:
        self.inner.close()


def make_services(settings: Settings, **parts: object) -> Services:
    defaults: dict[str, object] = {
        "text_embedder": FakeTextEmbedder(),
        "image_embedder": FakeImageEmbedder(),
        "captioner": FakeCaptioner(),
    }
    return build_services(settings, **{**defaults, **parts})


@pytest.fixture
def services(settings: Settings):  # type: ignore[no-untyped-def]
    built = make_services(settings)
    yield built
    built.close()


def good_files(corpus: GeneratedCorpus) -> list[Path]:
    files = find_files([corpus.root / "good"]).files
    return files


def points_of(services: Services, path: Path) -> list[dict]:
    document_id = document_id_for(services.settings.ingest.tenant, str(path.resolve()))
    return services.store.payloads(PointFilter(match={"document_id": document_id}))


def ingest(services: Services, paths: list[Path], *, force: bool = False) -> list[Submission]:
    return services.ingest_here(paths, tenant="default", force=force)


def ingest_one(services: Services, path: Path) -> Submission:
    (result,) = ingest(services, [path])
    return result


def record_of(result: Submission) -> DocumentRecord:
    assert result.record is not None, result.error
    return result.record


def test_ingest_indexes_every_good_document(services: Services, corpus: GeneratedCorpus) -> None:
    results = ingest(services, good_files(corpus))

    assert [r.outcome for r in results] == ["indexed"] * len(results)
    assert services.store.count() == sum(record_of(r).points for r in results)
    for result in results:
        record = services.catalog.require("default", record_of(result).document_id)
        assert record.status is DocumentStatus.INDEXED
        assert record.points == len(points_of(services, Path(result.source)))
        assert record.content_hash and record.version == 1


def test_points_carry_citation_fields(services: Services, corpus: GeneratedCorpus) -> None:
    ingest(services, [corpus.good["pdf"]])
    payloads = points_of(services, corpus.good["pdf"])

    texts = [p for p in payloads if p["kind"] == "text"]
    assert any(FACTS["pdf"].split()[1] in p["text"] and p["page"] == 1 for p in texts)
    images = [p for p in payloads if p["kind"] == "image"]
    assert len(images) == 1 and images[0]["page"] == 2
    assert services.blobs.path(images[0]["image_path"]).is_file()
    assert images[0]["caption"].startswith("an image of")
    left, top, right, bottom = images[0]["bbox"]
    assert 0 <= left < right <= 612 and 0 <= top < bottom <= 792


def test_reingest_unchanged_does_no_model_work(services: Services, corpus: GeneratedCorpus) -> None:
    files = good_files(corpus)
    ingest(services, files)
    before = services.store.count()
    calls = [
        services.text_embedder.items_processed,
        services.image_embedder.items_processed,
        services.captioner.items_processed,
    ]

    again = ingest(services, files)

    assert {r.outcome for r in again} == {"unchanged"}
    assert services.store.count() == before
    assert [
        services.text_embedder.items_processed,
        services.image_embedder.items_processed,
        services.captioner.items_processed,
    ] == calls


def test_forced_reingest_overwrites_without_duplicates(
    services: Services, corpus: GeneratedCorpus
) -> None:
    files = good_files(corpus)
    ingest(services, files)
    before = services.store.count()

    forced = ingest(services, files, force=True)

    assert {r.outcome for r in forced} == {"indexed"}

    assert services.store.count() == before


def test_changed_file_replaces_its_points(services: Services, tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("The Juniper library holds 9000 maps.\n\nIt opens at nine.")
    first = ingest_one(services, path)
    path.write_text("The Cedar archive stores 12 telescopes.")

    second = ingest_one(services, path)

    assert second.outcome == "indexed"
    assert record_of(second).document_id == record_of(first).document_id
    texts = " ".join(p["text"] for p in points_of(services, path))
    assert "Cedar" in texts and "Juniper" not in texts
    record = services.catalog.require("default", record_of(second).document_id)
    assert record.version == 2 and record.points == len(points_of(services, path))


def test_failed_new_version_keeps_the_old_points(services: Services, tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("The Juniper library holds 9000 maps.")
    ingest_one(services, path)
    path.write_bytes(b"\x00\x01binary garbage\x00")

    result = ingest_one(services, path)

    assert result.outcome == "failed" and path.name in result.message
    assert "Juniper" in " ".join(p["text"] for p in points_of(services, path))
    record = services.catalog.require("default", record_of(result).document_id)
    assert record.status is DocumentStatus.FAILED and record.error == result.message


def test_delete_removes_points_images_and_record(
    services: Services, corpus: GeneratedCorpus
) -> None:
    results = ingest(services, [corpus.good["pdf"], corpus.good["docx"]])
    pdf_id = record_of(results[0]).document_id
    images = services.blobs.keys(f"images/{pdf_id}/")
    (original,) = services.blobs.keys(f"originals/{pdf_id}/")
    assert images
    assert services.blobs.path(original).read_bytes() == corpus.good["pdf"].read_bytes()

    services.documents.delete("default", pdf_id)

    assert services.store.count(PointFilter(match={"document_id": pdf_id})) == 0
    assert not services.blobs.keys(f"images/{pdf_id}/") and not services.blobs.exists(original)
    assert services.catalog.get("default", pdf_id) is None
    assert services.store.count() == record_of(results[1]).points  # the other is untouched


def test_bad_files_fail_alone(services: Services, corpus: GeneratedCorpus) -> None:
    bad = [corpus.bad[name] for name in ("corrupt_pdf", "encrypted_pdf", "no_text")]
    files = [corpus.good["text"], *bad, corpus.good["markdown"]]

    results = ingest(services, files)

    assert [r.outcome for r in results] == ["indexed", "failed", "failed", "failed", "indexed"]
    for result in results[1:4]:
        assert Path(result.source).name in result.message and record_of(result).points == 0
    assert "no text and no usable images" in results[3].message
    listed = {r.path: r for r in services.catalog.list("default")}
    assert all(listed[str(p.resolve())].status is DocumentStatus.FAILED for p in bad)


def test_image_without_text_needs_the_pixel_channel(settings: Settings, tmp_path: Path) -> None:
    from PIL import Image, ImageDraw

    photo = Image.new("RGB", (200, 150), (30, 90, 160))
    ImageDraw.Draw(photo).ellipse((40, 30, 160, 120), fill=(240, 200, 40))
    photo.save(tmp_path / "sun.png")
    # Nothing reads text from it, and its name is not used as context.
    no_ocr = settings.parsing.model_copy(update={"ocr": False, "chunk_context": False})
    settings = settings.model_copy(update={"parsing": no_ocr})
    no_pixels = make_services(settings, image_embedder=None, captioner=None)

    failed = ingest_one(no_pixels, tmp_path / "sun.png")
    no_pixels.close()
    with_pixels = make_services(settings, captioner=None)
    indexed = ingest_one(with_pixels, tmp_path / "sun.png")
    with_pixels.close()

    assert failed.outcome == "failed" and "pixel channel is off" in failed.message
    assert indexed.outcome == "indexed" and record_of(indexed).points == 1


def test_an_image_file_is_found_by_its_name(settings: Settings, tmp_path: Path) -> None:
    """With chunk context (the default) an image file's name is its title: a photo with
    no text of its own is indexed, and found, by what its name says."""
    from PIL import Image

    Image.new("RGB", (200, 150), (30, 90, 160)).save(tmp_path / "harbour_lighthouse.png")
    no_ocr = settings.parsing.model_copy(update={"ocr": False})
    services = make_services(
        settings.model_copy(update={"parsing": no_ocr}), image_embedder=None, captioner=None
    )
    try:
        indexed = ingest_one(services, tmp_path / "harbour_lighthouse.png")
        assert indexed.outcome == "indexed" and record_of(indexed).points == 1
        hits = services.retriever.search("lighthouse by the harbour", tenant="default").hits
        assert hits and hits[0].is_image and hits[0].source.endswith("harbour_lighthouse.png")
    finally:
        services.close()


def test_captions_are_cached_across_documents(
    services: Services, corpus: GeneratedCorpus, tmp_path: Path
) -> None:
    copy = tmp_path / "copy.pdf"
    shutil.copy(corpus.good["pdf"], copy)
    ingest(services, [corpus.good["pdf"]])
    captioned = services.captioner.items_processed

    ingest(services, [copy])

    assert captioned == 1 and services.captioner.items_processed == captioned
    assert len(points_of(services, copy)) == len(points_of(services, corpus.good["pdf"]))


def test_long_document_streams_in_batches(settings: Settings, tmp_path: Path) -> None:
    settings = settings.model_copy(
        update={"ingest": settings.ingest.model_copy(update={"batch_size": 16})}
    )
    inner = make_services(settings)
    store = RecordingStore(inner.store)
    built = make_services(settings, store=store)
    pdf = write_long_pdf(tmp_path / "long.pdf", pages=60, image_every=10)

    result = ingest_one(built, pdf)

    assert result.outcome == "indexed"
    assert record_of(result).pages == 60 and record_of(result).images == 6
    assert len(store.upserts) > 3 and max(store.upserts) <= 16
    assert max(built.text_embedder.batches) <= built.text_embedder.batch_size
    built.close()


class ThreadRecordingEmbedder(FakeTextEmbedder):
    """Records the thread of each batch; fails from the ``fail_at``-th batch on."""

    def __init__(self, fail_at: int | None = None) -> None:
        super().__init__()
        self.threads: set[str] = set()
        self.fail_at = fail_at

    def _embed_batch(self, texts: list[str], *, query: bool) -> np.ndarray:
        self.threads.add(threading.current_thread().name)
        if self.fail_at is not None and len(self.batches) >= self.fail_at:
            raise RuntimeError("the embedder broke")
        return super()._embed_batch(texts, query=query)


def test_batches_are_written_in_a_background_thread_in_order(
    settings: Settings, tmp_path: Path
) -> None:
    settings = settings.model_copy(
        update={"ingest": settings.ingest.model_copy(update={"batch_size": 8})}
    )
    embedder = ThreadRecordingEmbedder()
    built = make_services(settings, text_embedder=embedder)
    pdf = write_long_pdf(tmp_path / "long.pdf", pages=30, image_every=10)

    record = record_of(ingest_one(built, pdf))

    assert embedder.threads == {"mmrag-ingest-write_0"}  # not the reading thread
    payloads = built.store.payloads(PointFilter(match={"document_id": record.document_id}))
    indexes = sorted(p["element_index"] for p in payloads)
    assert indexes == list(range(len(indexes))) and len(indexes) == record.points
    built.close()


def test_a_failing_batch_fails_the_document_and_nothing_is_written_after(
    settings: Settings, tmp_path: Path
) -> None:
    settings = settings.model_copy(
        update={"ingest": settings.ingest.model_copy(update={"batch_size": 8})}
    )
    inner = make_services(settings)
    store = RecordingStore(inner.store)
    embedder = ThreadRecordingEmbedder(fail_at=3)
    built = make_services(settings, store=store, text_embedder=embedder)
    pdf = write_long_pdf(tmp_path / "long.pdf", pages=30, image_every=10)

    result = ingest_one(built, pdf)

    assert result.outcome == "failed" and result.record is not None
    assert "the embedder broke" in result.record.error
    written = len(store.upserts)
    time.sleep(0.2)  # a write left running behind the failed run would land now
    assert len(store.upserts) == written <= 3
    assert built.store.count(PointFilter(match={"document_id": result.record.document_id})) == 0
    built.close()


def test_interrupted_run_then_rerun_has_no_duplicates(settings: Settings, tmp_path: Path) -> None:
    pdf = write_long_pdf(tmp_path / "long.pdf", pages=40, image_every=10)
    small = settings.model_copy(
        update={"ingest": settings.ingest.model_copy(update={"batch_size": 8})}
    )
    clean = make_services(small.model_copy(update={"data_dir": tmp_path / "clean"}))
    expected = record_of(ingest_one(clean, pdf)).points
    clean.close()

    interrupted = make_services(small)
    interrupted_store = RecordingStore(interrupted.store, fail_after=3)
    crashing = make_services(small, store=interrupted_store, catalog=interrupted.catalog)
    with pytest.raises(KeyboardInterrupt):
        ingest_one(crashing, pdf)
    assert 0 < interrupted.store.count() < expected
    document_id = document_id_for("default", str(pdf.resolve()))
    assert interrupted.catalog.require("default", document_id).status is DocumentStatus.PROCESSING

    result = ingest_one(interrupted, pdf)

    assert result.outcome == "indexed"
    assert interrupted.store.count() == record_of(result).points == expected
    interrupted.close()


def test_embedded_store_refuses_a_second_process_clearly(
    services: Services, corpus: GeneratedCorpus
) -> None:
    ingest(services, [corpus.good["text"]])
    from mmrag.store import open_store

    other = open_store(services.settings.store, embedded_root=services.settings.qdrant_path)
    with pytest.raises(StoreError, match="open in another process"):
        other.count()


def test_find_files_takes_files_folders_and_globs(corpus: GeneratedCorpus) -> None:
    good = corpus.root / "good"
    found = find_files(
        [good / "report.pdf", good, str(good / "*.png"), str(good / "nothing-*.pdf")]
    )
    files, missing = found.files, found.missing

    assert files[0] == good / "report.pdf"
    assert len(files) == len(set(files)) == len(list(good.iterdir()))
    assert missing == [str(good / "nothing-*.pdf")]


def test_ingestor_type_is_built_once(services: Services) -> None:
    assert isinstance(services.ingestor, Ingestor)
    assert services.ingestor is services.ingestor


def test_relative_image_links_of_local_files_resolve(
    services: Services, corpus: GeneratedCorpus
) -> None:
    """HTML and Markdown name their pictures relative to themselves: a job parses the
    original file where it can (the stored copy sits elsewhere)."""
    results = ingest(services, [corpus.good["markdown"], corpus.good["html"]])

    assert [record_of(r).images for r in results] == [1, 2]  # html: a data URI and a file
