"""How long CLI commands take from the shell: bad arguments are refused before any model
loads, and the everyday read commands start fast on a data directory already in use.

    python benchmarks/cli_latency.py [--runs 5]

Two tables of wall-clock seconds (median and slowest of ``--runs``) and exit codes:
commands with bad arguments against an empty data directory, then `docs list` and
`search` against a warm one (one generated Markdown file ingested first, so models
and any OpenVINO export are on disk, as on a machine in use). Offline profile.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BAD_ARGUMENTS = [
    ["ingest", "/no/such/path"],
    ["search", "x", "--kind", "bogus"],
    ["docs", "show", "unknown-id"],
    ["search", "x", "--limit", "abc"],
]
WARM = [
    ["docs", "list"],
    ["search", "turbine maintenance"],
]
DOCUMENT = "# Turbines\n\nThe northern wind farm has 40 turbines; each is inspected yearly.\n"


def measure(mmrag: str, data_dir: str, commands: list[list[str]], runs: int) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    print("| command | exit | median s | slowest s |")
    print("|---|---|---|---|")
    for command in commands:
        seconds, codes = [], set()
        for _ in range(runs):
            started = time.perf_counter()
            done = subprocess.run(
                [mmrag, "--data-dir", data_dir, *command], capture_output=True, env=env, check=False
            )
            seconds.append(time.perf_counter() - started)
            codes.add(done.returncode)
        print(
            f"| `mmrag {' '.join(command)}` | {','.join(map(str, sorted(codes)))} "
            f"| {statistics.median(seconds):.2f} | {max(seconds):.2f} |"
        )
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    mmrag = str(Path(sys.executable).with_name("mmrag"))
    with tempfile.TemporaryDirectory() as folder:
        measure(mmrag, str(Path(folder) / "empty"), BAD_ARGUMENTS, runs)
        document = Path(folder) / "turbines.md"
        document.write_text(DOCUMENT)
        warm = str(Path(folder) / "warm")
        subprocess.run(
            [mmrag, "--data-dir", warm, "ingest", str(document)],
            capture_output=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
            check=True,
        )
        measure(mmrag, warm, WARM, runs)


if __name__ == "__main__":
    main()
