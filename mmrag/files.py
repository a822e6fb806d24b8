"""Local files: finding them (folders, globs, links), naming them, identifying them.

Finding never follows a link out of the folder it was given (unless asked to) and
never loops; every link or folder it skips is reported with the reason, so nothing
is dropped silently. File names need not be valid UTF-8: they are identified by
their bytes and shown with the odd bytes escaped.
"""

from __future__ import annotations

import errno
import hashlib
import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

_DOCUMENT_NAMESPACE = uuid.UUID("0d9a7c34-5f1e-4b2a-8c6d-3e7f9a1b2c4d")


def content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def document_id_for(tenant: str, origin: str) -> str:
    """One id per (tenant, origin): a file's absolute path, so a changed file keeps its id
    and gets a new version; an upload's content hash, so equal names never collide.

    The name-based UUID (version 5) of the origin's bytes: a path that is not valid
    UTF-8 (its odd bytes held as surrogate escapes) has an id as well."""
    name = f"{tenant}/{origin}".encode("utf-8", "surrogateescape")
    digest = hashlib.sha1(_DOCUMENT_NAMESPACE.bytes + name, usedforsecurity=False).digest()
    return uuid.UUID(bytes=digest[:16], version=5).hex[:16]


def printable(path: Path | str) -> str:
    """The path as text that can be printed and stored: bytes that are not UTF-8 are
    shown as \\xNN escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class Skipped:
    """A path that was found but not taken, and why."""

    path: str  # printable
    reason: str


@dataclass
class FoundFiles:
    """What the inputs named: files to ingest (sorted, each once), inputs that matched
    nothing, and links or folders skipped with their reason."""

    files: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def find_files(inputs: Iterable[str | Path], *, follow_symlinks: bool = False) -> FoundFiles:
    """Files, folders (recursive) and glob patterns to the files to ingest.

    In a folder, a link is followed when its target lies inside that folder (a file
    there is taken once, under its first name) or, with ``follow_symlinks``, anywhere;
    dangling links, link loops, links out of the folder and unreadable folders are
    skipped and reported. Hidden files and folders (a leading dot: ``.git``, ``.venv``)
    and tool folders (`TOOL_FOLDERS`, and any virtualenv: a folder with ``pyvenv.cfg``)
    are left out; a path given by name is always taken."""
    finder = _Finder(follow_symlinks)
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            finder.walk_root(path)
        elif path.exists() or path.is_symlink():
            finder.take_given(path)
        else:
            matches = _glob(path)
            if not matches:
                finder.found.missing.append(printable(item))
            for match in matches:
                if match.is_dir():
                    finder.walk_root(match)
                else:
                    finder.take_given(match)
    return finder.found


# Folders of installed code and caches, never documents.
TOOL_FOLDERS = frozenset({"node_modules", "__pycache__", "site-packages", "bower_components"})


def _tool_folder(path: Path) -> bool:
    return path.name in TOOL_FOLDERS or (path / "pyvenv.cfg").is_file()


def _glob(path: Path) -> list[Path]:
    anchor = Path(path.anchor) if path.is_absolute() else Path()
    pattern = str(path.relative_to(anchor)) if path.is_absolute() else str(path)
    return sorted(anchor.glob(pattern))


class _Finder:
    def __init__(self, follow_symlinks: bool) -> None:
        self._follow = follow_symlinks
        self._taken: set[Path] = set()  # resolved targets already taken
        self.found = FoundFiles()

    def take_given(self, path: Path) -> None:
        """A file named directly: taken even through a link (the user named it)."""
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            self._skip(path, _link_problem(path, exc))
            return
        if not target.is_file():
            self._skip(path, "not a regular file")
            return
        self._take(path, target)

    def walk_root(self, root: Path) -> None:
        try:
            resolved_root = root.resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            self._skip(root, _link_problem(root, exc))
            return
        for path in self._walk(root, resolved_root, {resolved_root}):
            self._take(path, path.resolve())

    def _walk(self, folder: Path, root: Path, visiting: set[Path]) -> Iterator[Path]:
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda entry: os.fsencode(entry.name))
        except OSError as exc:
            self._skip(folder, f"folder cannot be read ({exc.strerror or exc})")
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = folder / entry.name
            if entry.is_symlink():
                target = self._link_target(path, root)
                if target is None:
                    continue
                if target.is_dir():
                    if target in visiting:
                        self._skip(path, "link loop: it points to a folder that contains it")
                    elif not target.is_relative_to(root):  # followed out (follow_symlinks)
                        yield from self._walk(path, root, visiting | {target})
                    # a link to a folder inside the root: its files are found there
                elif target.is_file():
                    yield path
                else:
                    self._skip(path, "link to something that is not a regular file")
            elif entry.is_dir(follow_symlinks=False):
                if not _tool_folder(path):
                    yield from self._walk(path, root, visiting | {path.resolve()})
            elif entry.is_file(follow_symlinks=False):
                yield path
            else:
                self._skip(path, "not a regular file (a device, socket or pipe)")

    def _link_target(self, link: Path, root: Path) -> Path | None:
        """Where a link leads, or None (reported) when it must not be followed."""
        try:
            target = link.resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            self._skip(link, _link_problem(link, exc))
            return None
        if not self._follow and not target.is_relative_to(root):
            self._skip(
                link,
                f"link to {printable(target)}, outside {printable(root)}; not followed "
                "(ingest.follow_symlinks)",
            )
            return None
        return target

    def _take(self, path: Path, target: Path) -> None:
        if path.name.startswith(".") or target in self._taken:
            return
        self._taken.add(target)
        self.found.files.append(path)

    def _skip(self, path: Path, reason: str) -> None:
        self.found.skipped.append(Skipped(printable(path), reason))


def _link_problem(path: Path, exc: BaseException) -> str:
    if isinstance(exc, RuntimeError) or getattr(exc, "errno", None) == errno.ELOOP:
        return "link loop: the link resolves to itself"
    if path.is_symlink():
        return "dangling link: its target does not exist"
    return f"cannot be read ({exc})"
