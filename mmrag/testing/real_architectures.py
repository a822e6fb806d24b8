"""The real architectures of the default models, with random weights, for benchmarks.

SigLIP base (siglip-base-patch16-224) and SmolVLM-256M-Instruct are built from their
configs and saved in the formats their loaders read, so benchmarks time the real
computation offline. Outputs are meaningless; speed is what they are for.
"""

from __future__ import annotations

import itertools
import json
import logging
import string
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tokenizers import Tokenizer
    from transformers import Idefics3Config, Idefics3Processor, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

SIGLIP_IMAGE_SIZE = 224
SIGLIP_TEXT_LENGTH = 64
HALF_NORMALIZATION = [0.5, 0.5, 0.5]
PIL_LANCZOS = 1  # the resample value in SmolVLM's preprocessor_config.json

# HuggingFaceTB/SmolVLM-256M-Instruct (config.json / preprocessor_config.json).
SMOLVLM_VOCABULARY = 49280
SMOLVLM_TEXT = {
    "model_type": "llama",
    "hidden_size": 576,
    "intermediate_size": 1536,
    "num_hidden_layers": 30,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "head_dim": 64,
    "max_position_embeddings": 8192,
    "rms_norm_eps": 1e-5,
    "rope_parameters": {"rope_type": "default", "rope_theta": 100000.0},
    "vocab_size": SMOLVLM_VOCABULARY,
    "tie_word_embeddings": True,
}
SMOLVLM_VISION = {
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "patch_size": 16,
    "image_size": 512,
}
SMOLVLM_SCALE_FACTOR = 4
SMOLVLM_IMAGE_SEQUENCE_LENGTH = 64
SMOLVLM_TILE_EDGE = 512
SMOLVLM_RESIZE_EDGE = 2048


# --------------------------------------------------------------------------- models


def build_siglip_base(target: Path) -> Path:
    """Save siglip-base-patch16-224 (``SiglipConfig()`` defaults, random weights) with a
    224 px SiglipImageProcessor and MiniLM's tokenizer (vocabulary size matched)."""
    import torch
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipProcessor

    from mmrag.testing.tiny_models import (
        BERT_CLS_ID,
        BERT_PAD_ID,
        BERT_SEP_ID,
        SEED,
        load_minilm_tokenizer,
    )

    tokenizer = load_minilm_tokenizer(SIGLIP_TEXT_LENGTH)
    text_config = {
        "vocab_size": len(tokenizer),
        "max_position_embeddings": SIGLIP_TEXT_LENGTH,
        "pad_token_id": BERT_PAD_ID,
        "bos_token_id": BERT_CLS_ID,
        "eos_token_id": BERT_SEP_ID,
    }
    torch.manual_seed(SEED)
    model = SiglipModel(SiglipConfig(text_config=text_config)).eval()
    model.save_pretrained(str(target))
    image_processor = SiglipImageProcessor(
        size={"height": SIGLIP_IMAGE_SIZE, "width": SIGLIP_IMAGE_SIZE},
        image_mean=HALF_NORMALIZATION,
        image_std=HALF_NORMALIZATION,
    )
    processor = SiglipProcessor(image_processor=image_processor, tokenizer=tokenizer)
    processor.save_pretrained(str(target))
    logger.info("SigLIP base: %.0fM parameters", _millions(model))
    return target


def _filler_tokens(taken: set[str], count: int) -> Iterator[str]:
    """``count`` distinct byte-level tokens that decode to short words (' abcd')."""
    letters = string.ascii_lowercase
    words = ("\u0120" + "".join(p) for p in itertools.product(letters, repeat=4))
    return itertools.islice((word for word in words if word not in taken), count)


def _pad_vocabulary(tokenizer: Tokenizer, size: int) -> Tokenizer:
    """Append unmerged filler tokens to a trained BPE so it has exactly ``size`` ids, so
    every id a random model emits decodes to text (like real captions, not to nothing)."""
    from tokenizers import Tokenizer

    state = json.loads(tokenizer.to_str())
    vocabulary: dict[str, int] = state["model"]["vocab"]
    added = {token["content"] for token in state["added_tokens"]}
    count = size - tokenizer.get_vocab_size()
    start = max(vocabulary.values()) + 1
    for offset, token in enumerate(_filler_tokens(set(vocabulary) | added, count)):
        vocabulary[token] = start + offset
    padded = Tokenizer.from_str(json.dumps(state))
    if padded.get_vocab_size() != size:
        raise RuntimeError(f"padded vocabulary has {padded.get_vocab_size()} ids, not {size}")
    return padded


def build_smolvlm_tokenizer() -> PreTrainedTokenizerBase:
    """A byte-level BPE trained in well under a second, with SmolVLM's special tokens and
    chat template, padded to SmolVLM's 49,280-token vocabulary."""
    from transformers import PreTrainedTokenizerFast

    from mmrag.testing.tiny_models import (
        IDEFICS3_CHAT_TEMPLATE,
        IDEFICS3_IMAGE_TOKENS,
        IDEFICS3_ROW_COLUMN_TOKENS,
        IDEFICS3_SPECIAL_TOKENS,
        _train_byte_level_tokenizer,
    )

    special = dict(IDEFICS3_SPECIAL_TOKENS)
    extra = IDEFICS3_IMAGE_TOKENS + IDEFICS3_ROW_COLUMN_TOKENS
    trained = _train_byte_level_tokenizer(list(dict.fromkeys([*special.values(), *extra])))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=_pad_vocabulary(trained, SMOLVLM_VOCABULARY),
        padding_side="left",
        model_max_length=8192,
        **special,
    )
    tokenizer.add_special_tokens({"additional_special_tokens": extra})
    tokenizer.chat_template = IDEFICS3_CHAT_TEMPLATE
    return tokenizer


def smolvlm_config(tokenizer: PreTrainedTokenizerBase) -> Idefics3Config:
    """The Idefics3Config of SmolVLM-256M-Instruct, special token ids from ``tokenizer``."""
    from transformers import Idefics3Config

    from mmrag.testing.tiny_models import _token_id

    token_ids = {
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    return Idefics3Config(
        text_config={**SMOLVLM_TEXT, **token_ids},
        vision_config=SMOLVLM_VISION,
        scale_factor=SMOLVLM_SCALE_FACTOR,
        image_token_id=_token_id(tokenizer, "<image>"),
        tie_word_embeddings=True,
    )


def smolvlm_processor(tokenizer: PreTrainedTokenizerBase, *, splitting: bool) -> Idefics3Processor:
    """SmolVLM's processor: images resized to a 2048 px longest edge and cut into 512 px
    tiles plus a global view (``splitting``), or one 512 px view (no splitting)."""
    from transformers import Idefics3ImageProcessor, Idefics3Processor

    from mmrag.testing.tiny_models import IDEFICS3_CHAT_TEMPLATE

    image_processor = Idefics3ImageProcessor(
        do_image_splitting=splitting,
        size={"longest_edge": SMOLVLM_RESIZE_EDGE if splitting else SMOLVLM_TILE_EDGE},
        max_image_size={"longest_edge": SMOLVLM_TILE_EDGE},
        image_mean=HALF_NORMALIZATION,
        image_std=HALF_NORMALIZATION,
        resample=PIL_LANCZOS,
    )
    return Idefics3Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        image_seq_len=SMOLVLM_IMAGE_SEQUENCE_LENGTH,
        chat_template=IDEFICS3_CHAT_TEMPLATE,
    )


def build_smolvlm_256m(target: Path, *, splitting: bool) -> Path:
    """Save SmolVLM-256M-Instruct's architecture (random weights) + processor to ``target``."""
    import torch
    from transformers import AutoModelForImageTextToText

    from mmrag.testing.tiny_models import _save_generative_model

    tokenizer = build_smolvlm_tokenizer()
    config = smolvlm_config(tokenizer)
    _save_generative_model(config, tokenizer, target)
    smolvlm_processor(tokenizer, splitting=splitting).save_pretrained(str(target))
    with torch.device("meta"):  # only to count the parameters
        model = AutoModelForImageTextToText.from_config(config)
    logger.info("SmolVLM-256M: %.0fM parameters", _millions(model))
    return target


def _millions(model: Any) -> float:
    return sum(p.numel() for p in model.parameters()) / 1e6
