"""Captioner backends: a VLM through transformers, an OpenAI-compatible server, or OCR."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from PIL import Image

from mmrag.errors import ModelRuntimeError
from mmrag.models.base import Captioner
from mmrag.models.device import inference
from mmrag.models.registry import captioners
from mmrag.models.vlm import image_data_url, load_transformers_vlm, openai_client
from mmrag.ocr import ocr_texts, require_tesseract
from mmrag.settings import CaptionerSettings, Settings

ROLE = "captioner"
SETTING = "captioner.model"


class TransformersCaptioner(Captioner):
    """Any image-text-to-text VLM with a chat template (SmolVLM, Idefics3, Qwen2-VL, ...)."""

    def __init__(self, *, model: Any, processor: Any, device: str, settings: CaptionerSettings):
        super().__init__(
            model_id=settings.model, batch_size=settings.batch_size, prompt=settings.prompt
        )
        self._model = model
        self._processor = processor
        self._device = device
        self._precision = settings.precision
        self._max_new_tokens = settings.max_new_tokens
        # Decoder-only generation needs left padding so every row ends at its prompt.
        tokenizer = getattr(processor, "tokenizer", None)
        if tokenizer is not None:
            tokenizer.padding_side = "left"

    @classmethod
    def load(cls, settings: CaptionerSettings) -> TransformersCaptioner:
        model, processor, device = load_transformers_vlm(
            model=settings.model,
            device=settings.device,
            precision=settings.precision,
            role=ROLE,
            setting=SETTING,
        )
        return cls(model=model, processor=processor, device=device, settings=settings)

    def _caption_batch(self, images: list[Image.Image]) -> list[str]:

        messages = [
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": self.prompt}]}
        ]
        prompt = self._processor.apply_chat_template(messages, add_generation_prompt=True)
        inputs = self._processor(
            text=[prompt] * len(images),
            images=[[image] for image in images],
            return_tensors="pt",
            padding=True,
        ).to(self._device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self._model.dtype)
        with inference(self._device, self._precision):
            generated = self._model.generate(
                **inputs, max_new_tokens=self._max_new_tokens, do_sample=False
            )  # [batch, prompt_len + new_len]
        new_tokens = generated[:, inputs["input_ids"].shape[1] :]
        return list(self._processor.batch_decode(new_tokens, skip_special_tokens=True))


class OpenAICaptioner(Captioner):
    """A VLM behind an OpenAI-compatible chat API (vLLM, Ollama, LM Studio, ...)."""

    def __init__(self, *, client: Any, settings: CaptionerSettings) -> None:
        super().__init__(
            model_id=settings.model, batch_size=settings.batch_size, prompt=settings.prompt
        )
        self._client = client
        self._max_tokens = settings.max_new_tokens

    @classmethod
    def load(cls, settings: CaptionerSettings) -> OpenAICaptioner:
        client = openai_client(
            base_url=settings.base_url,
            api_key=settings.api_key,
            timeout_s=settings.timeout_s,
            role=ROLE,
            model=settings.model,
            setting_prefix="captioner",
        )
        return cls(client=client, settings=settings)

    def _caption_one(self, image: Image.Image) -> str:
        import httpx

        content = [
            {"type": "image_url", "image_url": {"url": image_data_url(image)}},
            {"type": "text", "text": self.prompt},
        ]
        body = {
            "model": self.model_id,
            "max_tokens": self._max_tokens,
            "temperature": 0,
            "messages": [{"role": "user", "content": content}],
        }
        try:
            response = self._client.post("/chat/completions", json=body)
            response.raise_for_status()
            return str(response.json()["choices"][0]["message"]["content"] or "")
        except (httpx.HTTPError, KeyError, IndexError, ValueError) as exc:
            raise ModelRuntimeError(
                f"captioner server {self._client.base_url} failed for {self.model_id!r}: {exc}"
            ) from exc

    def _caption_batch(self, images: list[Image.Image]) -> list[str]:
        # A server batches concurrent requests itself (vLLM continuous batching).
        with ThreadPoolExecutor(max_workers=len(images)) as pool:
            return list(pool.map(self._caption_one, images))


class OcrCaptioner(Captioner):
    """No VLM: the 'caption' is the text tesseract reads in the image."""

    reads_text = True

    def __init__(self, *, languages: str, batch_size: int) -> None:
        super().__init__(model_id="tesseract", batch_size=batch_size, prompt=languages)
        self._languages = languages

    def _caption_batch(self, images: list[Image.Image]) -> list[str]:
        return ocr_texts(images, self._languages)


@captioners.register("transformers")
def _build_transformers(settings: Settings) -> Captioner:
    return TransformersCaptioner.load(settings.captioner)


@captioners.register("openai")
def _build_openai(settings: Settings) -> Captioner:
    return OpenAICaptioner.load(settings.captioner)


@captioners.register("ocr")
def _build_ocr(settings: Settings) -> Captioner:
    require_tesseract()
    return OcrCaptioner(
        languages=settings.parsing.ocr_languages, batch_size=settings.captioner.batch_size
    )


@captioners.register("none")
def _build_none(settings: Settings) -> None:
    return None
