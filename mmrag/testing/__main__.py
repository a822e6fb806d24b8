"""``python -m mmrag.testing make-offline-models DIR``: tiny models and a config using them."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

CONFIG_NAME = "mmrag-offline-models.toml"


def config_text(models: Path, minilm: Path) -> str:
    """A settings file that runs every role on the tiny models (random weights)."""
    return f'''# Tiny random models: every code path runs offline; results are meaningless.
# Use with: mmrag --config {models / CONFIG_NAME} ingest PATH
profile = "default"

[text_embedder]
model = "{minilm}"

[image_embedder]
backend = "siglip"
model = "{models / "siglip"}"

[page_embedder]
backend = "transformers"
model = "{models / "colmodernvbert"}"

[reranker]
backend = "cross-encoder"
model = "{models / "cross-encoder"}"

[captioner]
backend = "transformers"
model = "{models / "smolvlm"}"
max_new_tokens = 16

[answerer]
backend = "transformers"
model = "{models / "smolvlm"}"
max_new_tokens = 32
'''


def make_offline_models(target: Path) -> Path:
    """Write the tiny models under ``target`` and a config file; returns the config path."""
    from mmrag.testing.tiny_models import minilm_directory, write_offline_models

    write_offline_models(target)
    config = target / CONFIG_NAME
    config.write_text(config_text(target.resolve(), minilm_directory()))
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmrag.testing")
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("make-offline-models", help="write tiny random models + config")
    make.add_argument("directory", type=Path)
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = make_offline_models(arguments.directory)
    logging.getLogger("mmrag.testing").info(
        "wrote tiny SigLIP, open_clip, SmolVLM, Qwen2-VL, ColModernVBERT and cross-encoder "
        "models to %s\nconfig: %s",
        arguments.directory,
        config,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
