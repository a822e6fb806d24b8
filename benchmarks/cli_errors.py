"""How long the CLI takes to refuse bad arguments: each is checked before any model
loads, so the answer comes in about the time Python takes to import the CLI.

    python benchmarks/cli_errors.py [--runs 5]

Runs each command ``--runs`` times against an empty data directory and prints a
Markdown table: the exit code and the median and slowest wall-clock seconds.
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

COMMANDS = [
    ["ingest", "/no/such/path"],
    ["search", "x", "--kind", "bogus"],
    ["docs", "show", "unknown-id"],
    ["search", "x", "--limit", "abc"],
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    mmrag = str(Path(sys.executable).with_name("mmrag"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    print("| command | exit | median s | slowest s |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as data_dir:
        for command in COMMANDS:
            seconds, codes = [], set()
            for _ in range(runs):
                started = time.perf_counter()
                done = subprocess.run(
                    [mmrag, "--data-dir", data_dir, *command],
                    capture_output=True,
                    env=env,
                    check=False,
                )
                seconds.append(time.perf_counter() - started)
                codes.add(done.returncode)
            shown = " ".join(command)
            print(
                f"| `mmrag {shown}` | {','.join(map(str, sorted(codes)))} "
                f"| {statistics.median(seconds):.2f} | {max(seconds):.2f} |"
            )


if __name__ == "__main__":
    main()
