"""Tiny random retrieval models built from real configs, for offline tests: the page
embedder's late-interaction retrievers (ColQwen2, ColModernVBERT) and a cross-encoder
reranker. Saved in the format their real loaders read, like `tiny_models`' builders.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmrag.testing.tiny_models import (
    BERT_PAD_ID,
    HALF_NORMALIZATION,
    IDEFICS3_END_OF_UTTERANCE_TOKEN,
    IDEFICS3_IMAGE_TOKENS,
    IDEFICS3_ROW_COLUMN_TOKENS,
    IMAGE_SIZE,
    PATCH_SIZE,
    SEED,
    TEXT_MAX_LENGTH,
    _byte_level_tokenizer,
    _qwen2vl_config,
    _qwen2vl_processor,
    _qwen2vl_tokenizer,
    _tiny_encoder_settings,
    _token_id,
    load_minilm_tokenizer,
)

if TYPE_CHECKING:
    from transformers import ModernVBertConfig, PreTrainedTokenizerBase

PAGE_EMBEDDING_DIM = 16
MODERNVBERT_PIXEL_SHUFFLE = 2
MODERNVBERT_SPECIAL_TOKENS = {
    "bos_token": "<|begin_of_text|>",
    "eos_token": IDEFICS3_END_OF_UTTERANCE_TOKEN,
    "pad_token": "<pad>",
    "unk_token": "<unk>",
}


def _save_retriever(model: Any, processor: Any, target: Path) -> Path:
    """Save a late-interaction retriever and its processor where its loader reads them."""
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    model.eval().save_pretrained(str(target))
    processor.save_pretrained(str(target))
    return target


def build_tiny_colqwen2(target: Path) -> Path:
    """Save a tiny random ColQwen2 retriever (tiny Qwen2-VL inside) + processor to ``target``.

    An 80x60 page becomes 4x6 patches of 14 px, merged 2x2: a 2x3 grid of page tokens.
    """
    import torch
    from transformers import ColQwen2Config, ColQwen2ForRetrieval, ColQwen2Processor

    tokenizer = _qwen2vl_tokenizer()
    config = ColQwen2Config(
        vlm_config=_qwen2vl_config(tokenizer).to_dict(), embedding_dim=PAGE_EMBEDDING_DIM
    )
    torch.manual_seed(SEED)
    model = ColQwen2ForRetrieval(config)
    image_processor = _qwen2vl_processor(tokenizer).image_processor
    processor = ColQwen2Processor(image_processor=image_processor, tokenizer=tokenizer)
    return _save_retriever(model, processor, target)


def _modernvbert_tokenizer() -> PreTrainedTokenizerBase:
    """Return a byte-level BPE tokenizer with ColModernVBERT's image and tile tokens."""
    extra_tokens = IDEFICS3_IMAGE_TOKENS + IDEFICS3_ROW_COLUMN_TOKENS
    tokenizer = _byte_level_tokenizer(dict(MODERNVBERT_SPECIAL_TOKENS), extra_tokens, None)
    tokenizer.padding_side = "right"  # an encoder: ModernBERT pads on the right
    return tokenizer


def _modernvbert_config(tokenizer: PreTrainedTokenizerBase) -> ModernVBertConfig:
    """Return a ModernVBertConfig: a tiny ModernBERT, a tiny SigLIP tower of 64 px frames
    (4x4 patches), pixel-shuffled 2x2 into 2x2 tokens per frame."""
    from transformers import ModernVBertConfig

    text_config = {
        **_tiny_encoder_settings(),
        "model_type": "modernbert",
        "vocab_size": len(tokenizer),
        "max_position_embeddings": 512,
        "local_attention": 16,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "cls_token_id": tokenizer.bos_token_id,
        "sep_token_id": tokenizer.eos_token_id,
    }
    vision_config = {
        **_tiny_encoder_settings(),
        "model_type": "siglip_vision_model",
        "image_size": IMAGE_SIZE,
        "patch_size": PATCH_SIZE,
    }
    return ModernVBertConfig(
        text_config=text_config,
        vision_config=vision_config,
        image_token_id=_token_id(tokenizer, "<image>"),
        pixel_shuffle_factor=MODERNVBERT_PIXEL_SHUFFLE,
    )


def build_tiny_colmodernvbert(target: Path) -> Path:
    """Save a tiny random ColModernVBERT retriever + processor to ``target``.

    Pages are resized to 128 px on the longest side and cut into 64 px tiles of 2x2
    tokens each, plus a 2x2 global view: a 60x120 page is 2x1 tiles, a 4x2 grid.
    """
    import torch
    from transformers import (
        ColModernVBertConfig,
        ColModernVBertForRetrieval,
        ColModernVBertProcessor,
        Idefics3ImageProcessor,
    )

    tokenizer = _modernvbert_tokenizer()
    config = ColModernVBertConfig(
        vlm_config=_modernvbert_config(tokenizer).to_dict(), embedding_dim=PAGE_EMBEDDING_DIM
    )
    torch.manual_seed(SEED)
    model = ColModernVBertForRetrieval(config)
    image_processor = Idefics3ImageProcessor(
        size={"longest_edge": 2 * IMAGE_SIZE},
        max_image_size={"longest_edge": IMAGE_SIZE},
        do_image_splitting=True,
        image_mean=HALF_NORMALIZATION,
        image_std=HALF_NORMALIZATION,
    )
    tokens_per_frame = (IMAGE_SIZE // PATCH_SIZE // MODERNVBERT_PIXEL_SHUFFLE) ** 2
    processor = ColModernVBertProcessor(
        image_processor=image_processor, tokenizer=tokenizer, image_seq_len=tokens_per_frame
    )
    return _save_retriever(model, processor, target)


def build_tiny_cross_encoder(target: Path) -> Path:
    """Save a tiny random BERT cross-encoder (one relevance logit, MiniLM tokenizer) that
    ``sentence_transformers.CrossEncoder(target)`` loads."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    tokenizer = load_minilm_tokenizer()
    values: dict[str, Any] = {
        **_tiny_encoder_settings(),
        "vocab_size": len(tokenizer),
        "max_position_embeddings": TEXT_MAX_LENGTH,
        "pad_token_id": BERT_PAD_ID,
        "num_labels": 1,  # one relevance logit per (query, passage) pair
    }
    config = BertConfig(**values)
    torch.manual_seed(SEED)
    BertForSequenceClassification(config).eval().save_pretrained(str(target))
    tokenizer.save_pretrained(str(target))
    return target
