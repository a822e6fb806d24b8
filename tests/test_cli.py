"""The ``mmrag`` command as a user runs it: a separate process, real offline models."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mmrag.testing.documents import GeneratedCorpus, write_long_pdf


def mmrag(
    *args: str, data_dir: Path, env: dict[str, str] | None = None, check: int | None = 0
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ingest.cli", "--data-dir", str(data_dir), *args]
    result = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=600
    )
    if check is not None:
        assert result.returncode == check, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def ingested(
    corpus: GeneratedCorpus, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    data_dir = tmp_path_factory.mktemp("cli-data")
    result = mmrag(
        "ingest",
        str(corpus.root / "good"),
        str(corpus.root / "bad"),
        "--json",
        data_dir=data_dir,
        check=1,
    )
    return data_dir, result


def test_ingest_reports_every_file_and_exits_1_on_failures(
    ingested: tuple[Path, subprocess.CompletedProcess[str]], corpus: GeneratedCorpus
) -> None:
    _, result = ingested
    rows = {Path(row["path"]).name: row for row in json.loads(result.stdout)}

    assert all(rows[path.name]["outcome"] == "indexed" for path in corpus.good.values())
    failed = {name for name, row in rows.items() if row["outcome"] == "failed"}
    assert failed == {
        "corrupt.pdf",
        "empty.pdf",
        "encrypted.pdf",
        "truncated.pdf",
        "zero_pages.pdf",
        "archive.xyz",
        "bomb.png",
        "blank.pdf",
        "corrupt.docx",
        "corrupt.png",
    }
    assert all(name in rows[name]["error"] for name in failed)
    assert "offline profile" in result.stderr  # said plainly


def test_docs_list_show_and_delete(ingested: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    data_dir, _ = ingested
    listed = json.loads(mmrag("docs", "list", "--json", data_dir=data_dir).stdout)
    report = next(d for d in listed if d["path"].endswith("report.pdf"))
    assert report["status"] == "indexed" and report["pages"] == 2 and report["points"] > 0
    assert next(d for d in listed if d["path"].endswith("encrypted.pdf"))["error"]

    shown = json.loads(mmrag("docs", "show", report["id"], "--json", data_dir=data_dir).stdout)
    assert shown == report

    deleted = json.loads(mmrag("docs", "delete", report["id"], "--json", data_dir=data_dir).stdout)
    assert deleted["id"] == report["id"]
    missing = mmrag("docs", "show", report["id"], data_dir=data_dir, check=3)
    assert report["id"] in missing.stderr
    remaining = json.loads(mmrag("docs", "list", "--json", data_dir=data_dir).stdout)
    assert len(remaining) == len(listed) - 1


def test_reingest_reports_unchanged(corpus: GeneratedCorpus, tmp_path: Path) -> None:
    first = mmrag("ingest", str(corpus.good["text"]), data_dir=tmp_path)
    assert "1 indexed" in first.stdout
    second = mmrag("ingest", str(corpus.good["text"]), data_dir=tmp_path)
    assert "0 indexed, 1 unchanged, 0 failed" in second.stdout


def test_missing_input_is_reported(tmp_path: Path) -> None:
    result = mmrag("ingest", str(tmp_path / "nope-*.pdf"), data_dir=tmp_path, check=2)
    assert "not found" in result.stderr and "nope-*.pdf" in result.stderr
    assert "nothing to ingest" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["bogus"],
        ["search", "x", "--limit", "abc"],
        ["docs", "show"],
        ["ingest", "--kind"],
        ["--profile"],
        ["eval", "compare", "only-one"],
    ],
    ids=["unknown-command", "bad-value", "missing-argument", "unknown-option", "no-value", "eval"],
)
def test_usage_errors_are_one_line_and_exit_2(tmp_path: Path, args: list[str]) -> None:
    result = mmrag(*args, data_dir=tmp_path, check=2)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error "), result.stderr
    assert "--help" in lines[0] and not result.stdout


def test_no_command_shows_the_help_and_version_prints_one_line(tmp_path: Path) -> None:
    bare = subprocess.run(
        [sys.executable, "-m", "ingest.cli"], capture_output=True, text=True, timeout=60
    )
    assert bare.returncode == 2 and "Commands" in bare.stdout and not bare.stderr
    result = mmrag(data_dir=tmp_path, check=2)
    assert result.stderr.startswith("error Missing command.") and result.stderr.count("\n") == 1
    version = mmrag("--version", data_dir=tmp_path)
    assert version.stdout.strip().startswith("mmrag ") and not version.stderr


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["ingest", "/no/such/path"], 2, "nothing to ingest"),
        (["search", "x", "--kind", "bogus"], 2, "unknown kinds ['bogus']"),
        (["search", "--image", "/no/such.png"], 2, "no such file"),
        (["docs", "show", "unknown-id"], 3, "no document with id 'unknown-id'"),
    ],
)
def test_bad_arguments_are_refused_before_any_model_loads(
    tmp_path: Path, args: list[str], code: int, says: str
) -> None:
    result = mmrag(*args, data_dir=tmp_path, check=code)
    assert says in result.stderr
    assert "note " not in result.stderr, "the profile (and its models) were resolved first"


def test_models_lists_each_role_with_tiny_models(tiny_models: Path, tmp_path: Path) -> None:
    config = tiny_models / "mmrag-offline-models.toml"
    command = ["--config", str(config), "models", "--json"]
    report = json.loads(mmrag(*command, data_dir=tmp_path).stdout)

    roles = {row["role"]: row for row in report["roles"]}
    assert {row["status"] for row in roles.values()} == {"ok"}
    assert roles["image embedder"]["detail"] == "32-d"
    assert roles["text embedder"]["detail"] == "384-d"
    assert roles["page embedder"]["status"] == roles["reranker"]["status"] == "ok"
    assert roles["answerer"]["model"] == str(tiny_models / "smolvlm")  # the config sets it
    channels = {row["name"]: row for row in report["channels"]}
    assert set(channels) == {"text", "sparse", "caption", "image", "page"}
    assert channels["page"]["weight"] == 1.0 and channels["page"]["candidates"] == 50


def test_models_reports_a_model_that_cannot_load(tmp_path: Path) -> None:
    env = {"MMRAG_IMAGE_EMBEDDER__MODEL": str(tmp_path / "no-such-model")}
    result = mmrag("--profile", "default", "models", "--json", data_dir=tmp_path, env=env, check=2)
    roles = {row["role"]: row for row in json.loads(result.stdout)["roles"]}
    assert roles["image embedder"]["status"] == "error"
    assert "no-such-model" in roles["image embedder"]["detail"]


def test_models_checks_a_model_server_is_up(tmp_path: Path) -> None:
    from mmrag.testing.servers import HOST, free_port

    down = f"http://{HOST}:{free_port()}/v1"  # nothing listens there
    env = {"MMRAG_ANSWERER__BACKEND": "openai", "MMRAG_ANSWERER__BASE_URL": down}
    result = mmrag("--profile", "offline", "models", "--json", data_dir=tmp_path, env=env, check=2)
    roles = {row["role"]: row for row in json.loads(result.stdout)["roles"]}
    assert (
        roles["answerer"]["status"] == "error"
        and "cannot be reached" in roles["answerer"]["detail"]
    )


def test_bad_config_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[parsing]\nchunk_size = 'big'\n")
    result = mmrag("--config", str(config), "docs", "list", data_dir=tmp_path, check=2)
    assert "chunk_size" in result.stderr and "Traceback" not in result.stderr


def _status(data_dir: Path) -> str | None:
    database = data_dir / "catalog.sqlite3"
    if not database.exists():
        return None
    with sqlite3.connect(database) as connection:
        try:
            row = connection.execute("SELECT status FROM documents").fetchone()
        except sqlite3.OperationalError:  # created, its tables not yet
            return None
    return row[0] if row else None


def test_kill_9_mid_document_then_rerun_completes_without_duplicates(tmp_path: Path) -> None:
    pdf = write_long_pdf(tmp_path / "long.pdf", pages=300, image_every=50)
    env = {"MMRAG_INGEST__BATCH_SIZE": "8"}
    clean = json.loads(
        mmrag("ingest", str(pdf), "--json", data_dir=tmp_path / "clean", env=env).stdout
    )[0]

    data_dir = tmp_path / "killed"
    command = [sys.executable, "-m", "ingest.cli", "--data-dir", str(data_dir), "ingest", str(pdf)]
    child = subprocess.Popen(
        command, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while _status(data_dir) != "processing" and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(2.0)  # well inside the document
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert _status(data_dir) == "processing"

    rerun = json.loads(mmrag("ingest", str(pdf), "--json", data_dir=data_dir, env=env).stdout)[0]

    assert rerun["outcome"] == "indexed"
    assert rerun["points"] == clean["points"] and rerun["chunks"] == clean["chunks"]


def test_search_and_ask(corpus: GeneratedCorpus, tmp_path: Path) -> None:
    mmrag("ingest", str(corpus.good["text"]), str(corpus.good["pdf"]), data_dir=tmp_path)

    found = json.loads(
        mmrag("search", "Juniper library maps", "--json", "--limit", "3", data_dir=tmp_path).stdout
    )
    assert Path(found["hits"][0]["source"]).name == "plain.txt" and len(found["hits"]) <= 3

    answer = json.loads(
        mmrag(
            "ask", "How many maps does the Juniper library hold?", "--json", data_dir=tmp_path
        ).stdout
    )
    assert "9000" in answer["answer"] and not answer["abstained"]
    assert Path(answer["citations"][0]["source"]).name == "plain.txt"

    streamed = mmrag("ask", "How often are the Zephyr blades inspected?", data_dir=tmp_path)
    assert "90 days" in streamed.stdout and "report.pdf, page 2" in streamed.stdout

    empty = mmrag("ask", "  ", data_dir=tmp_path, check=2)
    assert "question is empty" in empty.stderr
    bad_pages = mmrag("search", "x", "--pages", "two", data_dir=tmp_path, check=2)
    assert "--pages" in bad_pages.stderr


def test_tenant_option_scopes_the_catalog(tmp_path: Path, corpus: GeneratedCorpus) -> None:
    data_dir = tmp_path / "data"
    mmrag("--tenant", "acme", "ingest", str(corpus.good["text"]), data_dir=data_dir)

    acme = mmrag("--tenant", "acme", "docs", "list", "--json", data_dir=data_dir)
    other = mmrag("--tenant", "globex", "docs", "list", "--json", data_dir=data_dir)
    assert len(json.loads(acme.stdout)) == 1 and json.loads(other.stdout) == []
    document_id = json.loads(acme.stdout)[0]["id"]
    foreign = mmrag("--tenant", "globex", "docs", "show", document_id, data_dir=data_dir, check=3)
    assert document_id in foreign.stderr
    bad = mmrag("--tenant", "no spaces!", "docs", "list", data_dir=data_dir, check=2)
    assert "--tenant" in bad.stderr and "Traceback" not in bad.stderr


def test_links_out_of_the_folder_are_skipped_and_odd_names_indexed(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (tmp_path / "secret.txt").write_text("The vault code is 7431 and nobody may read it.")
    (folder / "escape.txt").symlink_to(tmp_path / "secret.txt")
    (folder / "loop").symlink_to(folder)
    with open(os.fsencode(folder) + b"/caf\xe9.txt", "wb") as handle:
        handle.write(b"The cafe opens at seven in the morning, every day of the week.")

    result = mmrag("ingest", str(folder), "--json", data_dir=tmp_path / "data")
    rows = {Path(row["path"]).name: row for row in json.loads(result.stdout)}

    assert rows["caf\\xe9.txt"]["outcome"] == "indexed"
    assert rows["escape.txt"]["outcome"] == "skipped"
    assert "not followed" in rows["escape.txt"]["error"]
    assert rows["loop"]["outcome"] == "skipped"
    found = mmrag("search", "vault code", "--json", data_dir=tmp_path / "data")
    assert "7431" not in found.stdout


def test_every_command_takes_json() -> None:
    import typer

    from ingest.cli import app

    def leaves(command: Any, path: str) -> Iterator[tuple[str, Any]]:
        if hasattr(command, "commands"):  # a group (Typer's own copy of click's)
            for name, sub in command.commands.items():
                yield from leaves(sub, f"{path} {name}")
        else:
            yield path, command

    commands = list(leaves(typer.main.get_command(app), "mmrag"))
    assert len(commands) >= 11
    lacking = [
        path
        for path, command in commands
        if not any("--json" in getattr(param, "opts", ()) for param in command.params)
    ]
    assert not lacking, lacking


def test_json_log_lines_name_their_request() -> None:
    import logging

    from api.requests import RequestIdFilter, current
    from ingest.app import JsonLogFormatter

    record = logging.LogRecord("mmrag.api", logging.WARNING, __file__, 1, "slow %s", ("x",), None)
    token = current.set("abc-1")
    try:
        RequestIdFilter().filter(record)
    finally:
        current.reset(token)
    line = json.loads(JsonLogFormatter().format(record))
    assert line["message"] == "slow x" and line["request_id"] == "abc-1"
    assert line["level"] == "warning" and line["logger"] == "mmrag.api"
