"""Building the embedded store's vector index (HNSW) without stopping it.

qdrant-edge indexes a shard's segments only when asked (`EdgeShard.optimize`), and its
Python binding holds the GIL for the whole build: minutes at 100,000 points on 2 cores,
during which no other thread of the process runs (measured: a 10 ms ticker thread
stalled for the build's full 16 s at 20,000 points). Run in `mmrag serve`, it would
stop every query.

So `EdgeStore` builds on a copy: under its lock it flushes the shard and copies the
folder, then a child process (``python -m mmrag.store.edge_index COPY``) loads the copy
and optimizes it while the store goes on answering and writing. Writes made meanwhile
are journaled; once the child is done they are replayed onto the built copy, which
replaces the shard's folder in one short step under the lock. This module holds the
file-level steps: the child's work, the swap, and the recovery of a swap cut short.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

STATE_FILE = "mmrag-index.json"  # points in the shard when its index was last built
_STAGING, _RETIRED = ".indexing", ".retired"


def staging_path(path: Path) -> Path:
    """Where the copy of ``path`` is built."""
    return path.with_name(path.name + _STAGING)


def retired_path(path: Path) -> Path:
    """Where the replaced folder waits, during a swap, to be removed."""
    return path.with_name(path.name + _RETIRED)


def undo_cut_swap(path: Path) -> None:
    """Before opening ``path``: a swap cut short between its two renames left no folder
    at ``path``; the retired one is complete, so it goes back."""
    retired = retired_path(path)
    if not path.exists() and retired.exists():
        retired.rename(path)


def remove_leftovers(path: Path) -> None:
    """Once this process holds the shard at ``path`` (so no build of another process
    can be using them): remove a stale copy and a retired folder."""
    shutil.rmtree(retired_path(path), ignore_errors=True)
    shutil.rmtree(staging_path(path), ignore_errors=True)


def indexed_points(path: Path) -> int:
    """How many points the shard held when its index was last built (0: never)."""
    state = path / STATE_FILE
    return int(json.loads(state.read_text())["points"]) if state.is_file() else 0


def install(path: Path, built: Path, points: int, keep: tuple[str, ...]) -> None:
    """Put the built copy in place of ``path`` (whose shard is closed); the old folder
    is kept aside until `retire` or `restore`. ``keep`` names mmrag's own files carried
    over from the live folder (they may have changed during the build). A crash between
    the renames is undone by `undo_cut_swap`."""
    for name in keep:
        if (path / name).is_file():
            shutil.copy2(path / name, built / name)
    (built / STATE_FILE).write_text(json.dumps({"points": points}))
    retired = retired_path(path)
    path.rename(retired)
    built.rename(path)


def retire(path: Path) -> None:
    """The installed copy opened: remove the old folder."""
    shutil.rmtree(retired_path(path), ignore_errors=True)


def restore(path: Path) -> None:
    """The installed copy did not open: put the old folder back."""
    shutil.rmtree(path, ignore_errors=True)
    retired_path(path).rename(path)


def optimize(path: Path) -> None:
    """The child's work: index every segment of the shard at ``path``, then persist."""
    import qdrant_edge as q

    shard = q.EdgeShard.load(str(path))
    shard.optimize()
    shard.flush()
    shard.close()


if __name__ == "__main__":
    optimize(Path(sys.argv[1]))
