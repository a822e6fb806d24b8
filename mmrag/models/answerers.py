"""Answerer backends: late fusion of retrieved text and image pixels in one VLM prompt.

Sources are numbered; the prompt asks the model to cite them as [n] and to say so when
they do not answer the question. `ExtractiveAnswerer` needs no model at all.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from mmrag.errors import ModelRuntimeError, ModelTimeoutError
from mmrag.models.base import Answerer, Source
from mmrag.models.device import inference
from mmrag.models.registry import answerers
from mmrag.models.vlm import image_data_url, load_transformers_vlm, openai_client
from mmrag.settings import AnswererSettings, Settings

INSTRUCTIONS = (
    "Answer the question using only the numbered sources below (text passages and images). "
    "Cite every claim with the source number in square brackets, like [2]. If the sources "
    "do not contain the answer, say that they do not; do not guess."
)


def prompt_text(question: str, sources: Sequence[Source]) -> str:
    listed = "\n\n".join(source.describe() for source in sources)
    return f"{INSTRUCTIONS}\n\nSources:\n{listed}\n\nQuestion: {question}\nAnswer:"


class TransformersAnswerer(Answerer):
    """A VLM with a chat template (SmolVLM, Idefics3, Qwen2-VL, ...), tokens streamed."""

    def __init__(
        self, *, model: Any, processor: Any, device: str, settings: AnswererSettings
    ) -> None:
        super().__init__(model_id=settings.model, batch_size=1)
        self._model = model
        self._processor = processor
        self._device = device
        self._precision = settings.precision
        self._max_new_tokens = settings.max_new_tokens

    @classmethod
    def load(cls, settings: AnswererSettings) -> TransformersAnswerer:
        model, processor, device = load_transformers_vlm(
            model=settings.model,
            device=settings.device,
            role="answerer",
            setting="answerer.model",
        )
        return cls(model=model, processor=processor, device=device, settings=settings)

    def stream(self, question: str, sources: Sequence[Source]) -> Iterator[str]:
        from transformers import TextIteratorStreamer

        images = [s.image for s in sources if s.image is not None]
        content: list[dict[str, Any]] = [{"type": "image"} for _ in images]
        content.append({"type": "text", "text": prompt_text(question, sources)})
        prompt = self._processor.apply_chat_template(
            [{"role": "user", "content": content}], add_generation_prompt=True
        )
        inputs = self._processor(
            text=[prompt], images=[images] if images else None, return_tensors="pt"
        ).to(self._device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self._model.dtype)
        streamer = TextIteratorStreamer(
            self._processor.tokenizer, skip_prompt=True, skip_special_tokens=True
        )
        failure: list[BaseException] = []

        def generate() -> None:
            try:
                with inference(self._device, self._precision):
                    self._model.generate(
                        **inputs,
                        streamer=streamer,
                        do_sample=False,
                        max_new_tokens=self._max_new_tokens,
                    )
            except Exception as exc:  # re-raised in the caller's thread below
                failure.append(exc)
                streamer.end()

        worker = threading.Thread(target=generate, daemon=True)
        worker.start()
        self.items_processed += 1
        yield from (token for token in streamer if token)
        worker.join()
        if failure:
            raise ModelRuntimeError(f"answerer {self.model_id!r} failed: {failure[0]}")


class OpenAIAnswerer(Answerer):
    """A VLM behind an OpenAI-compatible chat API, streamed (vLLM, Ollama, ...)."""

    def __init__(self, *, client: Any, settings: AnswererSettings) -> None:
        super().__init__(model_id=settings.model, batch_size=1)
        self._client = client
        self._max_tokens = settings.max_new_tokens

    @classmethod
    def load(cls, settings: AnswererSettings) -> OpenAIAnswerer:
        client = openai_client(
            base_url=settings.base_url,
            api_key=settings.api_key,
            timeout_s=settings.timeout_s,
            role="answerer",
            model=settings.model,
            setting_prefix="answerer",
        )
        return cls(client=client, settings=settings)

    def stream(self, question: str, sources: Sequence[Source]) -> Iterator[str]:
        import httpx

        content: list[dict[str, Any]] = [
            {"type": "image_url", "image_url": {"url": image_data_url(s.image)}}
            for s in sources
            if s.image is not None
        ]
        content.append({"type": "text", "text": prompt_text(question, sources)})
        body = {
            "model": self.model_id,
            "max_tokens": self._max_tokens,
            "temperature": 0,
            "stream": True,
            "messages": [{"role": "user", "content": content}],
        }
        self.items_processed += 1
        try:
            with self._client.stream("POST", "/chat/completions", json=body) as response:
                response.raise_for_status()
                yield from _sse_tokens(response.iter_lines())
        except httpx.TimeoutException as exc:
            raise ModelTimeoutError(f"answerer server timed out for {self.model_id!r}") from exc
        except httpx.HTTPError as exc:
            raise ModelRuntimeError(
                f"answerer server {self._client.base_url} failed for {self.model_id!r}: {exc}"
            ) from exc


def _sse_tokens(lines: Iterator[str]) -> Iterator[str]:
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line.removeprefix("data:").strip()
        if data == "[DONE]":
            return
        try:
            delta = json.loads(data)["choices"][0].get("delta", {})
        except (ValueError, KeyError, IndexError) as exc:
            raise ModelRuntimeError(
                f"malformed stream from the answerer server: {data[:200]}"
            ) from exc
        if delta.get("content"):
            yield delta["content"]


_WORD = re.compile(r"[a-z0-9]+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_STOPWORD_TEXT = (
    "a an and are as at be by did do does for from has have how in is it its of on or the "
    "this that to was were what when where which who why with"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def _terms(text: str) -> set[str]:
    return {w.rstrip("s") for w in _WORD.findall(text.lower()) if w not in _STOPWORDS}


class ExtractiveAnswerer(Answerer):
    """No model: quotes the source sentences that share the most words with the question,
    each with its citation marker."""

    def __init__(self, *, max_sentences: int = 3) -> None:
        super().__init__(model_id="extractive", batch_size=1)
        self._max_sentences = max_sentences

    def stream(self, question: str, sources: Sequence[Source]) -> Iterator[str]:
        wanted = _terms(question)
        scored, seen = [], set()
        for position, source in enumerate(sources):
            # Line breaks in OCR text and PDF paragraphs are wrapping, not sentence ends.
            for order, sentence in enumerate(_SENTENCE.split(" ".join(source.hit.text.split()))):
                key = sentence.lower()
                if len(sentence) < 3 or key in seen:  # the same passage in two files
                    continue
                seen.add(key)
                overlap = len(wanted & _terms(sentence)) / max(len(wanted), 1)
                scored.append((overlap + 0.05 / (position + 1), position, order, sentence, source))
        best = sorted(scored, key=lambda item: -item[0])[: self._max_sentences]
        if best:  # keep the sentences that come close to the best one
            best = [item for item in best if item[0] >= 0.5 * best[0][0]]
        self.items_processed += 1
        for index, (_, _, _, sentence, source) in enumerate(sorted(best, key=lambda i: i[1:3])):
            yield ("" if index == 0 else " ") + f"{sentence} [{source.number}]"


@answerers.register("transformers")
def _build_transformers(settings: Settings) -> Answerer:
    return TransformersAnswerer.load(settings.answerer)


@answerers.register("openai")
def _build_openai(settings: Settings) -> Answerer:
    return OpenAIAnswerer.load(settings.answerer)


@answerers.register("extractive")
def _build_extractive(settings: Settings) -> Answerer:
    return ExtractiveAnswerer()
