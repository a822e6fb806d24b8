"""Dataset loaders on small datasets written in tmp_path (the real sets are never read)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from eval.datasets import (
    DatasetError,
    DatasetUnavailable,
    Relevant,
    load_beir_dataset,
    load_dataset,
    load_mmrag_dataset,
    load_vidore_dataset,
    vidore_from_rows,
)
from mmrag.errors import MmragError

CORPUS = ("docs/a.pdf", "docs/b.pdf", "docs/sub/c.docx", "images/x.png", "images/y.jpg")


def write_mmrag(root: Path, lines: list[Any], files: tuple[str, ...] = CORPUS) -> Path:
    """A dataset folder: the corpus files, a LICENSE and SOURCE outside it, queries.jsonl."""
    for relative in files:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(f"content of {relative}".encode())
    (root / "LICENSE.md").write_text("licence")
    (root / "SOURCE.txt").write_text("source")
    (root / "docs" / ".DS_Store").write_bytes(b"hidden")
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
    (root / "queries.jsonl").write_text(text + "\n")
    return root


def query(identifier: str = "q1", **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"id": identifier, "question": f"question {identifier}?"}
    record.setdefault("relevant", [{"doc": "docs/a.pdf", "page": 2}])
    record.update(fields)
    return record


def test_page_level_dataset(tmp_path: Path) -> None:
    lines = [
        query("q1", answer="42", answerable=True, tags=["Chart"], meta={"doc_type": "report"}),
        query("q2", answer="Not answerable", answerable=False, relevant=[], tags=[]),
        query("q3", relevant=[{"doc": "docs/a.pdf", "page": 3}, {"doc": "docs/b.pdf"}]),
    ]
    dataset = load_mmrag_dataset(write_mmrag(tmp_path, lines))
    assert dataset.level == "page"
    assert dataset.name == tmp_path.name and dataset.root == tmp_path.resolve()
    assert [p.relative_to(dataset.root).as_posix() for p in dataset.corpus] == sorted(CORPUS)
    first, second, third = dataset.queries
    assert first.relevant == (Relevant(doc="docs/a.pdf", page=2),)
    assert first.relevant[0].key == "docs/a.pdf#page=2" and first.relevant[0].level == "page"
    assert (first.answer, first.answerable, first.tags) == ("42", True, ("Chart",))
    assert first.meta == {"doc_type": "report"}
    assert (second.answerable, second.relevant) == (False, ())
    assert [item.level for item in third.relevant] == ["page", "document"]


def test_document_level_dataset(tmp_path: Path) -> None:
    lines = [query(relevant=[{"doc": "docs/a.pdf"}, {"doc": "./docs/sub/c.docx"}])]
    dataset = load_mmrag_dataset(write_mmrag(tmp_path, lines))
    assert dataset.level == "document"
    relevant = dataset.queries[0].relevant
    assert relevant == (Relevant(doc="docs/a.pdf"), Relevant(doc="docs/sub/c.docx"))
    assert relevant[1].key == "docs/sub/c.docx"


def test_graded_relevant_entries(tmp_path: Path) -> None:
    entries = [
        {"doc": "docs/a.pdf", "page": 2, "grade": 3},
        {"doc": "docs/a.pdf", "page": 2, "grade": 3},  # a repeat: dropped
        {"doc": "docs/b.pdf", "page": 1},
        {"image": "images/x.png", "grade": 2},
    ]
    dataset = load_mmrag_dataset(write_mmrag(tmp_path, [query(relevant=entries)]))
    assert dataset.queries[0].relevant == (
        Relevant(doc="docs/a.pdf", page=2, grade=3),
        Relevant(doc="docs/b.pdf", page=1, grade=1),
        Relevant(image="images/x.png", grade=2),
    )
    assert dataset.queries[0].relevant[0].key == "docs/a.pdf#page=2"  # the grade is no part


def test_image_level_dataset_with_defaults(tmp_path: Path) -> None:
    # no answer, answerable, tags or meta: answerable follows from the relevant entries
    lines = [
        {"id": "i1", "question": "a cat", "relevant": [{"image": "images/x.png"}]},
        {"id": 7, "question": "a dog", "relevant": [{"image": "images/y.jpg"}] * 2},
    ]
    dataset = load_mmrag_dataset(write_mmrag(tmp_path, lines))
    assert dataset.level == "image"
    first, second = dataset.queries
    assert (first.answer, first.answerable, first.tags, first.meta) == (None, True, (), {})
    assert first.relevant[0] == Relevant(image="images/x.png")
    assert first.relevant[0].path == "images/x.png"
    assert second.id == "7"
    assert second.relevant == (Relevant(image="images/y.jpg"),)  # duplicates dropped
    assert hash(first)  # a frozen, hashable record


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ({"id": "q2", "relevant": [{"doc": "docs/a.pdf"}]}, "question"),
        ({"id": "q2", "question": "  ", "relevant": [{"doc": "docs/a.pdf"}]}, "question"),
        ({"question": "why?", "relevant": [{"doc": "docs/a.pdf"}]}, "'id'"),
        (query("q1"), "duplicate id 'q1'"),
        (query("q2", relevant=[{"doc": "docs/missing.pdf"}]), "not in the corpus"),
        (query("q2", relevant=[{"doc": "LICENSE.md"}]), "not in the corpus"),
        (query("q2", relevant=[{"doc": "docs/.DS_Store"}]), "not in the corpus"),
        (query("q2", relevant=[{"image": "images/z.png"}]), "not in the corpus"),
        (query("q2", relevant=[{"doc": "/docs/a.pdf"}]), "relative"),
        (query("q2", relevant=[{"doc": "docs/../docs/a.pdf"}]), "relative"),
        (query("q2", relevant=[{"doc": "docs/a.pdf", "page": 0}]), "1-based"),
        (query("q2", relevant=[{"doc": "docs/a.pdf", "page": "3"}]), "1-based"),
        (query("q2", relevant=[{"image": "images/x.png", "page": 1}]), "1-based"),
        (query("q2", relevant=[{"doc": "docs/a.pdf", "image": "images/x.png"}]), "exactly one"),
        (query("q2", relevant=[{"page": 1}]), "exactly one"),
        (query("q2", relevant=[{"file": "docs/a.pdf"}]), "expected"),
        (query("q2", relevant=[{"doc": "docs/a.pdf", "grade": 0}]), "positive integer"),
        (query("q2", relevant=[{"doc": "docs/a.pdf", "grade": 1.5}]), "positive integer"),
        (query("q2", relevant=[{"doc": "docs/a.pdf", "grade": True}]), "positive integer"),
        (
            query("q2", relevant=[{"doc": "docs/a.pdf"}, {"doc": "docs/a.pdf", "grade": 2}]),
            "grades 1 and 2",
        ),
        (query("q2", relevant=["docs/a.pdf"]), "expected"),
        (query("q2", relevant={"doc": "docs/a.pdf"}), "must be a list"),
        (query("q2", relevant=[], answerable=True), "answerable but lists no relevant"),
        (query("q2", answerable="yes"), "true or false"),
        (query("q2", tags="Chart"), "tags"),
        (query("q2", meta=["x"]), "meta"),
    ],
)
def test_validation_errors_name_file_and_line(tmp_path: Path, line: Any, message: str) -> None:
    root = write_mmrag(tmp_path, [query("q1"), "", line])  # the bad record is on line 3
    with pytest.raises(DatasetError, match=message) as caught:
        load_mmrag_dataset(root)
    assert caught.value.path == root.resolve() / "queries.jsonl"
    assert caught.value.line == 3
    assert "queries.jsonl:3: " in str(caught.value)
    assert isinstance(caught.value, MmragError)


def test_missing_queries_file_empty_queries_and_empty_corpus(tmp_path: Path) -> None:
    root = write_mmrag(tmp_path / "set", [query()])
    (root / "queries.jsonl").unlink()
    with pytest.raises(DatasetError, match="queries.jsonl: file not found"):
        load_mmrag_dataset(root)
    (root / "queries.jsonl").write_text("\n\n")
    with pytest.raises(DatasetError, match="no queries"):
        load_mmrag_dataset(root)
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "queries.jsonl").write_text(json.dumps(query()) + "\n")
    with pytest.raises(DatasetError, match="no corpus files"):
        load_mmrag_dataset(bare)


def test_content_hash(tmp_path: Path) -> None:
    root = write_mmrag(tmp_path / "one", [query()])
    original = load_mmrag_dataset(root).content_hash()
    assert len(original) == 64 and load_mmrag_dataset(root).content_hash() == original
    os.utime(root / "docs" / "a.pdf", (1, 1))  # modification times do not count
    assert load_mmrag_dataset(root).content_hash() == original
    copy = shutil.copytree(root, tmp_path / "two")  # nor does where the folder lies
    assert load_mmrag_dataset(copy).content_hash() == original
    (copy / "docs" / "b.pdf").write_bytes(b"content of docs/b.pdX")  # same size, new bytes
    assert load_mmrag_dataset(copy).content_hash() != original
    (root / "queries.jsonl").write_text(json.dumps(query(answer="changed")) + "\n")
    assert load_mmrag_dataset(root).content_hash() != original


def test_content_hash_covers_grades_but_not_the_default(tmp_path: Path) -> None:
    root = write_mmrag(tmp_path, [query()])
    original = load_mmrag_dataset(root).content_hash()
    for grade, same in ((1, True), (2, False)):
        relevant = [{"doc": "docs/a.pdf", "page": 2, "grade": grade}]
        (root / "queries.jsonl").write_text(json.dumps(query(relevant=relevant)) + "\n")
        assert (load_mmrag_dataset(root).content_hash() == original) is same


def write_beir(root: Path) -> Path:
    corpus = [
        {"_id": "d1", "title": "First", "text": "alpha text"},
        {"_id": "d2", "title": "", "text": "beta text"},
        {"_id": "doc/3 odd", "text": "gamma text"},
    ]
    queries = [
        {"_id": "q1", "text": "which alpha?"},
        {"_id": "q2", "text": "which gamma?"},
        {"_id": "q9", "text": "a train-split query"},
    ]
    root.mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps(item) + "\n" for item in corpus))
    (root / "queries.jsonl").write_text("".join(json.dumps(item) + "\n" for item in queries))
    (root / "qrels").mkdir()
    rows = ["query-id\tcorpus-id\tscore", "q1\td1\t1", "q1\td2\t2", "q2\tdoc/3 odd\t0"]
    (root / "qrels" / "test.tsv").write_text("\n".join(rows) + "\n")
    return root


def test_beir_materialises_corpus(tmp_path: Path) -> None:
    dataset = load_beir_dataset(write_beir(tmp_path / "scifact"), tmp_path / "cache")
    assert dataset.name == "scifact" and dataset.level == "document"
    assert dataset.root == (tmp_path / "cache" / "beir" / "scifact").resolve()
    assert len(dataset.corpus) == 3 and all(path.suffix == ".txt" for path in dataset.corpus)
    assert all(path.parent == dataset.root / "docs" for path in dataset.corpus)
    texts = sorted(path.read_text() for path in dataset.corpus)
    assert texts == ["First\n\nalpha text", "beta text", "gamma text"]
    first, second = dataset.queries  # q9 has no qrels in this split: left out
    assert (first.id, first.question, first.answer, first.answerable) == (
        "q1",
        "which alpha?",
        None,
        True,
    )
    # score order: d2 (2) before d1 (1), each graded by its score
    assert first.relevant == (
        Relevant(doc="docs/d2.txt", grade=2),
        Relevant(doc="docs/d1.txt", grade=1),
    )
    assert first.meta["qrels"] == {"d1": 1, "d2": 2}
    assert (second.answerable, second.relevant) == (False, ())  # score 0 is not relevant
    stamps = [path.stat().st_mtime_ns for path in dataset.corpus]
    again = load_beir_dataset(tmp_path / "scifact", tmp_path / "cache")
    assert [path.stat().st_mtime_ns for path in again.corpus] == stamps  # not rewritten
    assert again.content_hash() == dataset.content_hash()


@pytest.mark.parametrize(
    ("file", "content", "message", "line"),
    [
        ("qrels/test.tsv", "query-id\tcorpus-id\tscore\nq1\td7\t1\n", "'d7' is not in", 2),
        ("qrels/test.tsv", "q1\td1\tgood\n", "integer score", 1),
        ("qrels/test.tsv", "q1 d1 1\n", "integer score", 1),
        ("qrels/test.tsv", "q1\td1\t1\nq5\td1\t1\n", "not in queries.jsonl: q5", None),
        ("corpus.jsonl", '{"_id": "d1", "text": "x"}\n{"_id": "d1", "text": "y"}\n', "dupl", 2),
        ("corpus.jsonl", '{"_id": "d1", "text": "x"}\n{oops\n', "not valid JSON", 2),
        ("corpus.jsonl", '{"title": "no id"}\n', "'_id'", 1),
        ("queries.jsonl", '{"_id": "q1"}\n', "'text'", 1),
    ],
)
def test_beir_errors(
    tmp_path: Path, file: str, content: str, message: str, line: int | None
) -> None:
    root = write_beir(tmp_path / "set")
    (root / file).write_text(content)
    with pytest.raises(DatasetError, match=message) as caught:
        load_beir_dataset(root, tmp_path / "cache")
    assert caught.value.path == root.resolve() / file
    assert caught.value.line == line


def test_beir_missing_qrels_split(tmp_path: Path) -> None:
    root = write_beir(tmp_path / "set")
    with pytest.raises(DatasetError, match="dev.tsv: qrels file not found"):
        load_beir_dataset(root, tmp_path / "cache", split="dev")


def test_load_dataset_dispatch(tmp_path: Path) -> None:
    beir = load_dataset(str(write_beir(tmp_path / "beir-set")), tmp_path / "cache")
    assert beir.root.is_relative_to(tmp_path / "cache")  # BEIR wins over its queries.jsonl
    mmrag = load_dataset(str(write_mmrag(tmp_path / "mmrag-set", [query()])), tmp_path / "c")
    assert mmrag.root == (tmp_path / "mmrag-set").resolve()
    with pytest.raises(DatasetError, match="not a dataset"):
        load_dataset(str(tmp_path / "nowhere"), tmp_path / "cache")
    with pytest.raises(DatasetError, match="needs a hub id"):
        load_dataset("vidore:", tmp_path / "cache")
    with pytest.raises(DatasetUnavailable, match="HF_HUB_OFFLINE"):
        load_dataset("vidore:vidore/docvqa_test_subsampled", tmp_path / "cache")


def test_vidore_offline_is_unavailable(tmp_path: Path) -> None:
    assert os.environ["HF_HUB_OFFLINE"] == "1"  # set by tests/conftest.py
    with pytest.raises(DatasetUnavailable) as caught:
        load_vidore_dataset("vidore/docvqa_test_subsampled", tmp_path)
    assert str(caught.value).startswith("ViDoRe needs the Hugging Face hub; skipped: ")
    assert isinstance(caught.value, DatasetError)


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    return monkeypatch


def fake_datasets(load: Any) -> types.ModuleType:
    module = types.ModuleType("datasets")
    module.load_dataset = load  # type: ignore[attr-defined]
    return module


def test_vidore_without_the_datasets_package(online: pytest.MonkeyPatch, tmp_path: Path) -> None:
    online.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    with pytest.raises(DatasetUnavailable, match="'datasets' package is not installed"):
        load_vidore_dataset("vidore/docvqa_test_subsampled", tmp_path)


def test_vidore_hub_unreachable(online: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def unreachable(name: str, split: str) -> Any:
        raise ConnectionError("hub.example: connection refused")

    online.setitem(sys.modules, "datasets", fake_datasets(unreachable))
    with pytest.raises(DatasetUnavailable, match="connection refused") as caught:
        load_vidore_dataset("vidore/docvqa_test_subsampled", tmp_path)
    assert isinstance(caught.value.__cause__, ConnectionError)


def vidore_rows() -> list[dict[str, Any]]:
    def page(color: str, mode: str = "RGB") -> Image.Image:
        return Image.new("RGB", (8, 10), color).convert(mode)

    return [
        {"query": "what is red?", "image": page("red"), "image_filename": "p/one.jpg", "page": 1},
        {"query": "what is blue?", "image": page("blue"), "image_filename": "two.png", "page": 2},
        {"query": None, "image": page("green"), "image_filename": "three.jpg", "page": 3},
        {"query": "what is red?", "image": page("pink", "CMYK"), "image_filename": "four.jpg"},
        {"query": "what again?", "image": page("blue"), "image_filename": "two.png", "answer": 5},
    ]


def test_vidore_rows_become_image_dataset(online: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[tuple[str, str]] = []

    def load(name: str, split: str) -> list[dict[str, Any]]:
        calls.append((name, split))
        return vidore_rows()

    online.setitem(sys.modules, "datasets", fake_datasets(load))
    dataset = load_vidore_dataset("vidore/docvqa_test_subsampled", tmp_path)
    assert calls == [("vidore/docvqa_test_subsampled", "test")]
    assert dataset.level == "image" and dataset.root.is_relative_to(tmp_path.resolve())
    assert len(dataset.corpus) == 4  # four distinct image files, the distractor included
    for path in dataset.corpus:
        assert path.suffix == ".png" and path.parent == dataset.root / "images"
        with Image.open(path) as image:
            assert image.format == "PNG"
    red, blue, again = dataset.queries  # one query per distinct question
    assert red.id == "docvqa_test_subsampled-000000" and red.question == "what is red?"
    assert len(red.relevant) == 2 and {item.level for item in red.relevant} == {"image"}
    assert blue.relevant == again.relevant  # the same page image, saved once
    assert (blue.meta["page"], blue.meta["image_filename"]) == (2, "two.png")
    assert (again.answer, blue.answer) == ("5", None)
    corpus = {path.relative_to(dataset.root).as_posix() for path in dataset.corpus}
    assert all(item.path in corpus for q in dataset.queries for item in q.relevant)


def test_vidore_limit(online: pytest.MonkeyPatch, tmp_path: Path) -> None:
    online.setitem(sys.modules, "datasets", fake_datasets(lambda name, split: vidore_rows()))
    dataset = load_vidore_dataset("vidore/x", tmp_path, split="train", limit=2)
    assert [query.question for query in dataset.queries] == ["what is red?", "what is blue?"]
    assert len(dataset.corpus) == 2


def test_vidore_scores_grade_the_relevant_images(tmp_path: Path) -> None:
    def row(question: str, filename: str, score: Any) -> dict[str, Any]:
        image = Image.new("RGB", (8, 10), "red")
        return {"query": question, "image": image, "image_filename": filename, "score": score}

    rows = [
        row("which?", "one.png", 2),
        row("which?", "two.png", 1.0),
        row("which?", "one.png", 1),  # one.png again, lower: keeps grade 2
        row("which?", "three.png", 0),  # judged not relevant: in the corpus only
        row("none?", "three.png", 0),
        row("odd?", "two.png", 0.5),  # not a grade: relevant, grade 1
    ]
    dataset = vidore_from_rows("vidore/graded", rows, tmp_path / "set")
    which, none, odd = dataset.queries
    assert which.relevant == (
        Relevant(image="images/one.png.png", grade=2),
        Relevant(image="images/two.png.png", grade=1),
    )
    assert (none.answerable, none.relevant) == (False, ())
    assert odd.relevant == (Relevant(image="images/two.png.png"),)
    assert len(dataset.corpus) == 3
