"""Finding files: links are not followed out of the folder, loops end, nothing is
skipped silently, and names need not be UTF-8."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mmrag.files import document_id_for, find_files, printable


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """root/ with a file, a sub-folder, and links of every kind; a secret outside it."""
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("a")
    (root / "sub" / "b.txt").write_text("b")
    (root / ".hidden.txt").write_text("h")
    (tmp_path / "secret.txt").write_text("outside")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "c.txt").write_text("c")
    (root / "escape.txt").symlink_to(tmp_path / "secret.txt")
    (root / "escape-dir").symlink_to(tmp_path / "outside")
    (root / "inside.txt").symlink_to(root / "sub" / "b.txt")
    (root / "sub" / "loop").symlink_to(root)
    (root / "dangling.txt").symlink_to(root / "missing.txt")
    (root / "self").symlink_to(root / "self")
    return root


def test_links_out_of_the_folder_are_reported_not_followed(tree: Path) -> None:
    found = find_files([tree])

    assert found.files == [tree / "a.txt", tree / "inside.txt"]  # b.txt: once, via the link
    reasons = {Path(skipped.path).name: skipped.reason for skipped in found.skipped}
    assert set(reasons) == {"escape.txt", "escape-dir", "loop", "dangling.txt", "self"}
    assert "outside" in reasons["escape.txt"] and "ingest.follow_symlinks" in reasons["escape.txt"]
    assert "outside" in reasons["escape-dir"]
    assert reasons["loop"].startswith("link loop")
    assert reasons["self"].startswith("link loop")
    assert reasons["dangling.txt"].startswith("dangling link")


def test_following_links_is_a_setting_and_still_ends_loops(tree: Path) -> None:
    found = find_files([tree], follow_symlinks=True)

    names = [path.name for path in found.files]
    assert names == ["a.txt", "c.txt", "escape.txt", "inside.txt"]
    assert {Path(skipped.path).name for skipped in found.skipped} == {
        "loop",
        "dangling.txt",
        "self",
    }


def test_a_file_named_directly_is_taken_through_its_link(tree: Path) -> None:
    found = find_files([tree / "escape.txt", tree / "dangling.txt"])

    assert found.files == [tree / "escape.txt"]
    assert [Path(s.path).name for s in found.skipped] == ["dangling.txt"]


def test_a_folder_that_cannot_be_read_is_reported(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = tree / "locked"
    locked.mkdir()
    scandir = os.scandir

    def refusing(path: Path) -> object:  # as for a user without the read right (not root)
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refusing)
    found = find_files([tree])

    assert any(
        s.path.endswith("locked") and "cannot be read (Permission denied)" in s.reason
        for s in found.skipped
    )


def test_names_that_are_not_utf8_are_found_named_and_identified(tmp_path: Path) -> None:
    raw = os.fsencode(tmp_path) + b"/caf\xe9.txt"
    with open(raw, "wb") as handle:
        handle.write(b"a cafe")
    (path,) = find_files([tmp_path]).files

    assert printable(path).endswith("caf\\xe9.txt")
    assert document_id_for("t", str(path)) != document_id_for("t", str(tmp_path / "cafe.txt"))
    # UTF-8 names keep the ids they always had (uuid5 of the text).
    import uuid

    namespace = uuid.UUID("0d9a7c34-5f1e-4b2a-8c6d-3e7f9a1b2c4d")
    assert document_id_for("t", "/x/é.txt") == uuid.uuid5(namespace, "t//x/é.txt").hex[:16]


def test_repositories_environments_and_caches_are_not_walked(tmp_path: Path) -> None:
    for folder, name in [
        (".git/objects", "pack.txt"),
        (".venv/lib", "notes.md"),
        ("env", "activate.txt"),  # a virtualenv under any name
        ("web/node_modules/lib", "README.md"),
        ("src/__pycache__", "cached.txt"),
        ("docs", "guide.md"),
    ]:
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / name).write_text("text")
    (tmp_path / "env" / "pyvenv.cfg").write_text("home = /usr/bin\n")

    found = find_files([tmp_path])

    assert found.files == [tmp_path / "docs" / "guide.md"] and not found.skipped
    named = tmp_path / "web" / "node_modules" / "lib" / "README.md"
    assert find_files([named]).files == [named]  # a path given by name is taken
