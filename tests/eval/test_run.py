"""`mmrag eval run` and `mmrag eval compare` end to end on a small generated dataset."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mmrag.testing.documents import GeneratedCorpus
from tests.test_cli import mmrag


def write_dataset(corpus: GeneratedCorpus, root: Path) -> Path:
    docs = root / "docs"
    docs.mkdir(parents=True)
    for name in ("pdf", "docx", "text", "html"):
        shutil.copy(corpus.good[name], docs / corpus.good[name].name)
    queries = [
        ("q1", "How many megawatts does the Zephyr turbine produce?", "report.pdf", 1, "Text"),
        ("q2", "How often are the Zephyr blades inspected?", "report.pdf", 2, "Text"),
        ("q3", "Which chart is labelled AMBER?", "memo.docx", 1, "Chart"),
        ("q4", "How many maps does the Juniper library hold?", "plain.txt", 1, "Text"),
        ("q5", "How long is the Periwinkle bridge?", "page.html", 1, "Table"),
    ]
    lines = [
        {
            "id": qid,
            "question": question,
            "answer": None,
            "answerable": True,
            "relevant": [{"doc": f"docs/{doc}", "page": page}],
            "tags": [tag],
        }
        for qid, question, doc, page, tag in queries
    ]
    lines.append(
        {
            "id": "q6",
            "question": "Who wrote Hamlet?",
            "answerable": False,
            "relevant": [],
            "tags": ["None"],
        }
    )
    (root / "queries.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return root


@pytest.fixture(scope="module")
def report_dir(corpus: GeneratedCorpus, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("eval")
    dataset = write_dataset(corpus, root / "dataset")
    out = root / "out"
    mmrag("eval", "run", str(dataset), "--out", str(out), "--answers", data_dir=root / "data")
    return out


def test_report_scores_every_configuration(report_dir: Path) -> None:
    report = json.loads((report_dir / "report.json").read_text())

    assert report["dataset"]["evaluated"] == 5 and report["dataset"]["level"] == "page"
    assert set(report["configurations"]) == {
        "text",
        "sparse",
        "caption",
        "text+sparse",
        "text+sparse+caption",
        "default",
    }
    default = report["overall"]["default"]
    assert default["recall@10"] == 1.0 and default["mrr@10"] >= 0.8
    for scores in report["overall"].values():
        assert all(0.0 <= value <= 1.0 for value in scores.values())
    assert report["per_tag"]["default"]["Chart"]["hit@10"] == 1.0
    assert report["overall"]["caption"]["hit@10"] < 1.0  # captions cannot find plain text
    assert report["latency_ms"]["p95"] >= report["latency_ms"]["p50"] > 0
    assert report["git_commit"] and report["models"]["text_embedder"]
    assert report["answers"]["abstention_rate_unanswerable"] == 1.0
    assert report["answers"]["cites_relevant"] >= 0.8


def test_report_markdown_and_plots(report_dir: Path) -> None:
    text = (report_dir / "report.md").read_text()
    assert "| default |" in text and "## Tag: Chart" in text
    for plot in ("recall_at_k.png", "per_tag_ndcg5.png"):
        assert (report_dir / plot).read_bytes().startswith(b"\x89PNG")


def test_rerun_reuses_the_index_and_compare_shows_no_change(
    report_dir: Path, corpus: GeneratedCorpus
) -> None:
    root = report_dir.parent
    again = root / "again"
    mmrag("eval", "run", str(root / "dataset"), "--out", str(again), data_dir=root / "data")
    report = json.loads((again / "report.json").read_text())
    assert report["ingest"]["unchanged"] == 4 and report["ingest"]["indexed"] == 0

    compared = mmrag(
        "eval", "compare", str(report_dir), str(again), "--metric", "ndcg@5", data_dir=root / "data"
    )
    assert "+0.000" in compared.stdout and "ndcg@5" in compared.stdout


def test_extra_configurations_are_parsed_and_validated() -> None:
    from eval.runner import parse_configuration
    from mmrag.errors import InvalidRequestError

    assert parse_configuration("half=text:1,caption:0.5") == ("half", {"text": 1.0, "caption": 0.5})
    for bad in ("nothing", "x=telepathy:1", "x=text:lots", "=text:1"):
        with pytest.raises(InvalidRequestError):
            parse_configuration(bad)
