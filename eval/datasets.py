"""Evaluation datasets: the mmrag folder format, BEIR folders and ViDoRe from the hub.

Every loader returns a `Dataset`: the corpus files to ingest and the labelled queries,
whose relevant entries name files by their path relative to `Dataset.root` (with a
1-based page for page-level relevance) and carry a graded relevance (1 unless the data
gives one: a BEIR qrel's score, ``"grade"`` in the mmrag format, a ViDoRe row's score).
BEIR and ViDoRe corpora are materialised as files under a cache folder, since mmrag
ingests files. The corpus of a dataset is `Dataset.corpus`, not whatever else lies in
its folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path, PurePosixPath
from typing import Any

from mmrag.errors import MmragError

CORPUS_FOLDERS = ("docs", "images")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_TRUE_VALUES = {"1", "ON", "YES", "TRUE"}
_PNG_MODES = {"1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"}


class DatasetError(MmragError):
    """A dataset cannot be loaded; the message names the file (and line) at fault."""

    def __init__(self, message: str, *, path: Path | None = None, line: int | None = None):
        self.path = path
        self.line = line
        where = "" if path is None else f"{path}: " if line is None else f"{path}:{line}: "
        super().__init__(f"{where}{message}")


class DatasetUnavailable(DatasetError):
    """A dataset needs something this machine lacks (a package, the network)."""


@dataclass(frozen=True)
class Relevant:
    """One thing a correct retrieval must return; paths are relative to the dataset root.

    ``{"doc": "docs/x.pdf", "page": 5}`` is page-level (1-based page), ``{"doc": ...}``
    alone is document-level (any page counts), ``{"image": "images/x.png"}`` is an image.
    ``grade`` is how relevant it is (a positive integer, higher is more relevant): nDCG
    uses it as the gain; recall, hit and MRR count any grade alike.
    """

    doc: str | None = None
    page: int | None = None
    image: str | None = None
    grade: int = 1

    @property
    def path(self) -> str:
        """The relative path of the relevant file."""
        return self.doc if self.doc is not None else str(self.image)

    @property
    def level(self) -> str:
        """``"page"``, ``"document"`` or ``"image"``."""
        if self.image is not None:
            return "image"
        return "document" if self.page is None else "page"

    @property
    def key(self) -> str:
        """A unit id for the metrics: the path, plus ``#page=N`` when page-level."""
        return self.path if self.page is None else f"{self.path}#page={self.page}"


@dataclass(frozen=True)
class Query:
    """A labelled question. An answerable query always has at least one relevant entry;
    an unanswerable one may still list where the (absent) evidence was looked for."""

    id: str
    question: str
    answer: str | None
    answerable: bool
    relevant: tuple[Relevant, ...]
    tags: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Dataset:
    """A corpus of files and the queries labelled against it.

    ``level`` is the finest relevance level any query uses: ``"page"`` if any entry
    names a page, else ``"image"`` if any names an image, else ``"document"``.
    """

    name: str
    root: Path
    corpus: tuple[Path, ...]
    queries: tuple[Query, ...]
    level: str

    def content_hash(self) -> str:
        """sha256 over the corpus and the queries, to key caches and reports.

        Covers every corpus file as (path relative to the root, size, sha256 of its
        bytes), sorted by path, then the loaded queries serialised as canonical JSON
        (so it covers BEIR qrels and hub rows as well as a queries file, and ignores
        formatting-only edits of that file). Modification times are not used. A grade
        of 1 (the default) is left out of the serialised queries, so datasets without
        grades keep the hash they had before grades existed.
        """
        digest = hashlib.sha256()
        for path in sorted(self.corpus, key=lambda item: item.relative_to(self.root).as_posix()):
            relative = path.relative_to(self.root).as_posix()
            digest.update(f"{relative}\0{path.stat().st_size}\0{_file_sha256(path)}\n".encode())
        for query in self.queries:
            fields = dataclasses.asdict(query)
            for entry in fields["relevant"]:
                if entry["grade"] == 1:
                    del entry["grade"]
            record = json.dumps(fields, sort_keys=True, default=str)
            digest.update(record.encode() + b"\n")
        return digest.hexdigest()


def _file_sha256(path: Path) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def _finest_level(queries: Iterable[Query]) -> str:
    levels = {relevant.level for query in queries for relevant in query.relevant}
    return next((level for level in ("page", "image") if level in levels), "document")


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (1-based line number, object) for each non-blank line of a JSON-lines file."""
    if not path.is_file():
        raise DatasetError("file not found", path=path)
    with path.open(encoding="utf-8") as stream:
        for number, text in enumerate(stream, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"not valid JSON: {exc.msg}", path=path, line=number) from exc
            if not isinstance(record, dict):
                raise DatasetError("each line must be a JSON object", path=path, line=number)
            yield number, record


# ---------------------------------------------------------------- the mmrag format


def load_mmrag_dataset(root: Path | str) -> Dataset:
    """Load a folder with ``queries.jsonl`` and its corpus under ``docs/`` and ``images/``.

    Raises `DatasetError` (naming file and line) for bad JSON, a missing id or question,
    a duplicate id, a malformed relevant entry, a relevant path not in the corpus, or an
    answerable question without relevant entries.
    """
    root = Path(root).expanduser().resolve()
    queries_file = root / "queries.jsonl"
    corpus = _scan_corpus(root)
    known = {path.relative_to(root).as_posix() for path in corpus}
    queries: list[Query] = []
    seen: set[str] = set()
    for number, record in _read_jsonl(queries_file):
        try:
            query = _parse_mmrag_query(record, known)
        except ValueError as exc:
            raise DatasetError(str(exc), path=queries_file, line=number) from exc
        if query.id in seen:
            raise DatasetError(f"duplicate id {query.id!r}", path=queries_file, line=number)
        seen.add(query.id)
        queries.append(query)
    if not queries:
        raise DatasetError("no queries", path=queries_file)
    return Dataset(root.name, root, corpus, tuple(queries), _finest_level(queries))


def _scan_corpus(root: Path) -> tuple[Path, ...]:
    """Every non-hidden file under ``docs/`` and ``images/``, sorted."""
    files = [
        path
        for folder in CORPUS_FOLDERS
        if (root / folder).is_dir()
        for path in (root / folder).rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts)
    ]
    if not files:
        raise DatasetError("no corpus files under docs/ or images/", path=root)
    return tuple(sorted(files))


def _parse_mmrag_query(record: dict[str, Any], known: set[str]) -> Query:
    """Validate one queries.jsonl record; `ValueError` says what is wrong."""
    identifier = record.get("id")
    if isinstance(identifier, bool) or not isinstance(identifier, str | int) or identifier == "":
        raise ValueError("missing or empty 'id' (a string)")
    question = record.get("question")
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"query {identifier!r}: missing or empty 'question'")
    entries = record.get("relevant") or []
    if not isinstance(entries, list):
        raise ValueError(f"query {identifier!r}: 'relevant' must be a list")
    relevant = _unique(_parse_relevant(entry, known) for entry in entries)
    answerable = record.get("answerable", bool(relevant))
    if not isinstance(answerable, bool):
        raise ValueError(f"query {identifier!r}: 'answerable' must be true or false")
    if answerable and not relevant:
        raise ValueError(
            f"query {identifier!r}: answerable but lists no relevant entries "
            '(add them, or set "answerable": false)'
        )
    tags = record.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise ValueError(f"query {identifier!r}: 'tags' must be a list of strings")
    meta = record.get("meta") or {}
    if not isinstance(meta, dict):
        raise ValueError(f"query {identifier!r}: 'meta' must be an object")
    answer = record.get("answer")
    answer = answer if answer is None or isinstance(answer, str) else json.dumps(answer)
    return Query(str(identifier), question, answer, answerable, relevant, tuple(tags), meta)


def _unique(entries: Iterable[Relevant]) -> tuple[Relevant, ...]:
    """The entries in order, repeats dropped; one unit given two grades is an error."""
    found: dict[Relevant, Relevant] = {}
    for entry in entries:
        unit = dataclasses.replace(entry, grade=1)
        if unit in found and found[unit].grade != entry.grade:
            raise ValueError(
                f"relevant {entry.key!r} is listed with grades {found[unit].grade} and "
                f"{entry.grade}: give it once"
            )
        found.setdefault(unit, entry)
    return tuple(found.values())


def _parse_relevant(entry: Any, known: set[str]) -> Relevant:
    """Validate one relevant entry against the corpus paths."""
    if not isinstance(entry, dict) or not entry or set(entry) - {"doc", "page", "image", "grade"}:
        message = "expected {doc[, page][, grade]} or {image[, grade]}"
        raise ValueError(f"relevant entry {entry!r}: {message}")
    if ("doc" in entry) == ("image" in entry):
        raise ValueError(f"relevant entry {entry!r}: give exactly one of 'doc' and 'image'")
    page = entry.get("page")
    if page is not None and not (
        "doc" in entry and isinstance(page, int) and not isinstance(page, bool) and page >= 1
    ):
        raise ValueError(f"relevant entry {entry!r}: 'page' is a 1-based integer of a 'doc'")
    grade = entry.get("grade", 1)
    if not isinstance(grade, int) or isinstance(grade, bool) or grade < 1:
        raise ValueError(
            f"relevant entry {entry!r}: 'grade' is a positive integer "
            "(leave out what is not relevant)"
        )
    path = _relative_path(entry.get("doc", entry.get("image")))
    if path not in known:
        raise ValueError(f"relevant file {path!r} is not in the corpus (docs/ or images/)")
    if "doc" in entry:
        return Relevant(doc=path, page=page, grade=grade)
    return Relevant(image=path, grade=grade)


def _relative_path(value: Any) -> str:
    """Normalise a relative POSIX path; reject absolute paths and ``..``."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"relevant path {value!r} must be a non-empty string")
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts:
        raise ValueError(f"relevant path {value!r} must be relative to the dataset folder")
    return path.as_posix()


# ---------------------------------------------------------------- BEIR


def load_beir_dataset(root: Path | str, cache: Path, split: str = "test") -> Dataset:
    """Load a BEIR folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``).

    Each corpus entry becomes ``<cache>/beir/<folder name>/docs/<id>.txt`` (title, blank
    line, text; rewritten only when its content changes). Queries are those named in
    the qrels, in ``queries.jsonl`` order; relevance is document-level on those files,
    graded by the qrel's score, and only qrels with score > 0 are relevant (the BEIR
    convention; a query with none is unanswerable).
    """
    root = Path(root).expanduser().resolve()
    target = Path(cache).expanduser().resolve() / "beir" / _safe_filename(root.name)
    documents = _materialise_beir_corpus(root / "corpus.jsonl", target)
    qrels_file = root / "qrels" / f"{split}.tsv"
    qrels = _read_qrels(qrels_file, documents)
    queries: list[Query] = []
    for number, record in _read_jsonl(root / "queries.jsonl"):
        identifier, text = str(record.get("_id", "")), record.get("text")
        if not identifier or not isinstance(text, str) or not text.strip():
            message = "each query needs a non-empty '_id' and 'text'"
            raise DatasetError(message, path=root / "queries.jsonl", line=number)
        if identifier not in qrels:
            continue
        scores = qrels.pop(identifier)
        ranked = sorted((cid for cid in scores if scores[cid] > 0), key=lambda c: -scores[c])
        relevant = tuple(Relevant(doc=documents[cid], grade=scores[cid]) for cid in ranked)
        meta: dict[str, Any] = {"qrels": scores}
        if "metadata" in record:
            meta["metadata"] = record["metadata"]
        queries.append(Query(identifier, text, None, bool(relevant), relevant, (), meta))
    if qrels:
        missing = ", ".join(sorted(qrels)[:5])
        raise DatasetError(f"query ids not in queries.jsonl: {missing}", path=qrels_file)
    if not queries:
        raise DatasetError("no queries", path=qrels_file)
    corpus = tuple(sorted(target / relative for relative in documents.values()))
    return Dataset(root.name, target, corpus, tuple(queries), "document")


def _materialise_beir_corpus(corpus_file: Path, target: Path) -> dict[str, str]:
    """Write each corpus entry as a .txt file; map corpus id → path relative to target."""
    documents: dict[str, str] = {}
    (target / "docs").mkdir(parents=True, exist_ok=True)
    for number, record in _read_jsonl(corpus_file):
        identifier = str(record.get("_id", ""))
        title, text = record.get("title") or "", record.get("text") or ""
        if not identifier or not isinstance(title, str) or not isinstance(text, str):
            message = "each entry needs a non-empty '_id' and string 'title'/'text'"
            raise DatasetError(message, path=corpus_file, line=number)
        if identifier in documents:
            raise DatasetError(f"duplicate _id {identifier!r}", path=corpus_file, line=number)
        relative = f"docs/{_safe_filename(identifier)}.txt"
        content = f"{title}\n\n{text}" if title else text
        _write_if_changed(target / relative, content.encode("utf-8"))
        documents[identifier] = relative
    if not documents:
        raise DatasetError("empty corpus", path=corpus_file)
    return documents


def _read_qrels(path: Path, documents: Mapping[str, str]) -> dict[str, dict[str, int]]:
    """Read ``query-id<TAB>corpus-id<TAB>score`` lines (a header line is skipped)."""
    if not path.is_file():
        raise DatasetError("qrels file not found", path=path)
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as stream:
        for number, text in enumerate(stream, start=1):
            if not text.strip() or (number == 1 and text.startswith("query-id")):
                continue
            columns = text.rstrip("\r\n").split("\t")
            if len(columns) != 3 or not re.fullmatch(r"-?\d+", columns[2].strip()):
                message = "expected query-id<TAB>corpus-id<TAB>integer score"
                raise DatasetError(message, path=path, line=number)
            query_id, corpus_id, score = columns[0], columns[1], int(columns[2])
            if corpus_id not in documents:
                message = f"corpus id {corpus_id!r} is not in corpus.jsonl"
                raise DatasetError(message, path=path, line=number)
            qrels.setdefault(query_id, {})[corpus_id] = score
    return qrels


def _safe_filename(name: str) -> str:
    """A portable file name for ``name``; a short hash keeps altered names distinct."""
    safe = _SAFE_NAME.sub("_", name).lstrip(".")[:120]
    if safe == name:
        return safe
    return f"{safe}-{hashlib.sha256(name.encode()).hexdigest()[:10]}"


def _write_if_changed(path: Path, content: bytes) -> None:
    if path.is_file() and path.stat().st_size == len(content) and path.read_bytes() == content:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


# ---------------------------------------------------------------- ViDoRe


def load_vidore_dataset(
    name: str, cache: Path, split: str = "test", limit: int | None = None
) -> Dataset:
    """Load a ViDoRe dataset (e.g. ``vidore/docvqa_test_subsampled``) from the hub.

    Uses the first ``limit`` rows (all when None). Each distinct page image (by
    ``image_filename``) is saved once as ``<cache>/vidore/<name>-<split>/images/*.png``;
    each distinct non-empty ``query`` becomes one query, relevant to the image(s) of its
    row(s), graded by the row's integer ``score`` where it has one (1 otherwise; a row
    scored 0 or less is not relevant). Rows without a query add their image to the
    corpus only.

    Raises `DatasetUnavailable` when ``datasets`` is not installed, the hub is switched
    off (``HF_HUB_OFFLINE``/``HF_DATASETS_OFFLINE``) or the dataset cannot be fetched.
    """
    prefix = "ViDoRe needs the Hugging Face hub; skipped: "
    for variable in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(variable, "").strip().upper() in _TRUE_VALUES:
            raise DatasetUnavailable(f"{prefix}{variable} is set")
    try:
        import datasets
    except ImportError as exc:
        message = f"{prefix}the 'datasets' package is not installed (pip install datasets)"
        raise DatasetUnavailable(message) from exc
    try:
        rows = datasets.load_dataset(name, split=split)
    except Exception as exc:  # hub errors take many types: offline, not found, gated
        message = f"{prefix}cannot load {name!r} (split {split!r}): {exc}"
        raise DatasetUnavailable(message) from exc
    root = Path(cache).expanduser().resolve() / "vidore" / _safe_filename(f"{name}-{split}")
    return vidore_from_rows(name, islice(rows, limit), root)


def vidore_from_rows(name: str, rows: Iterable[Mapping[str, Any]], root: Path) -> Dataset:
    """Build a `Dataset` from ViDoRe-style rows (``query``, ``image``, ``image_filename``)."""
    images: dict[str, str] = {}
    grouped: dict[str, tuple[int, list[Relevant], dict[str, Any]]] = {}
    for index, row in enumerate(rows):
        filename = str(row.get("image_filename") or f"row-{index:06d}")
        if filename not in images:
            images[filename] = f"images/{_safe_filename(filename)}.png"
            _save_page_image(row.get("image"), root / images[filename], index)
        question = row.get("query")
        if not isinstance(question, str) or not question.strip():
            continue
        grade = _row_grade(row)
        relevant = [Relevant(image=images[filename], grade=grade)] if grade > 0 else []
        if question in grouped:
            _add_graded(grouped[question][1], relevant)
            continue
        meta = {
            key: value
            for key, value in row.items()
            if key not in ("image", "query") and isinstance(value, str | int | float | bool)
        }
        if not isinstance(meta.get("answer", ""), str):
            meta["answer"] = str(meta["answer"])
        grouped[question] = (index, relevant, meta)
    if not grouped:
        raise DatasetError(f"{name}: no rows with a query")
    stem = name.rsplit("/", 1)[-1]
    queries = tuple(
        Query(f"{stem}-{index:06d}", question, meta.get("answer"), bool(found), (*found,), (), meta)
        for question, (index, found, meta) in grouped.items()
    )
    corpus = tuple(sorted(root / relative for relative in images.values()))
    return Dataset(name, root, corpus, queries, "image")


def _row_grade(row: Mapping[str, Any]) -> int:
    """A row's relevance grade: its integral ``score`` if it has one, else 1."""
    score = row.get("score")
    if isinstance(score, bool) or not isinstance(score, int | float):
        return 1
    if not float(score).is_integer():  # not a grade (NaN and infinities included)
        return 1
    return int(score)


def _add_graded(found: list[Relevant], more: list[Relevant]) -> None:
    """Add entries to a query's list; an image already there keeps its higher grade."""
    for entry in more:
        same = [index for index, item in enumerate(found) if item.image == entry.image]
        if not same:
            found.append(entry)
        elif found[same[0]].grade < entry.grade:
            found[same[0]] = entry


def _save_page_image(image: Any, path: Path, index: int) -> None:
    """Save a PIL page image as PNG unless the file is already there."""
    if image is None or not hasattr(image, "save"):
        raise DatasetError(f"row {index}: no page image for {path.name!r}")
    if path.is_file():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    picture = image if image.mode in _PNG_MODES else image.convert("RGB")
    partial = path.with_suffix(".partial")
    picture.save(partial, format="PNG")
    partial.replace(path)


# ---------------------------------------------------------------- dispatch


def load_dataset(spec: str, cache: Path) -> Dataset:
    """Load a dataset from a spec.

    ``vidore:<hub id>`` loads ViDoRe; a folder with ``corpus.jsonl`` and ``qrels/`` is
    BEIR (materialised under ``cache``); a folder with ``queries.jsonl`` is the mmrag
    format.
    """
    if spec.startswith("vidore:"):
        name = spec.removeprefix("vidore:").strip()
        if not name:
            raise DatasetError("vidore: needs a hub id, e.g. vidore:vidore/docvqa_test_subsampled")
        return load_vidore_dataset(name, cache)
    folder = Path(spec).expanduser()
    if (folder / "corpus.jsonl").is_file() and (folder / "qrels").is_dir():
        return load_beir_dataset(folder, cache)
    if (folder / "queries.jsonl").is_file():
        return load_mmrag_dataset(folder)
    raise DatasetError(
        "not a dataset: expected a folder with queries.jsonl (mmrag format), a folder with "
        "corpus.jsonl and qrels/ (BEIR), or vidore:<hub id>",
        path=folder,
    )
