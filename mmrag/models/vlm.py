"""Loading shared by the VLM roles (captioner, answerer): transformers models and
OpenAI-compatible servers."""

from __future__ import annotations

import base64
import io
from typing import Any

from PIL import Image
from pydantic import SecretStr

from mmrag.errors import ModelLoadError
from mmrag.models.device import resolve_device, weights_dtype
from mmrag.models.loading import loading


def load_transformers_vlm(
    *, model: str, device: str, precision: str, role: str, setting: str
) -> tuple[Any, Any, str]:
    """An image-text-to-text model and its processor; returns (model, processor, device)."""
    with loading(role, model, setting):
        from transformers import AutoModelForImageTextToText, AutoProcessor

        resolved = resolve_device(device)
        processor = AutoProcessor.from_pretrained(model)
        loaded: Any = AutoModelForImageTextToText.from_pretrained(
            model, dtype=weights_dtype(resolved, precision)
        )
    return loaded.to(resolved).eval(), processor, resolved


def openai_client(
    *,
    base_url: str | None,
    api_key: SecretStr | None,
    timeout_s: float,
    role: str,
    model: str,
    setting_prefix: str,
) -> Any:
    """An httpx client for an OpenAI-compatible server (vLLM, Ollama, ...)."""
    import httpx

    if not base_url:
        raise ModelLoadError(
            role=role,
            model=model,
            reason="no server URL given",
            fix=f"set {setting_prefix}.base_url, e.g. http://localhost:8000/v1",
        )
    headers = {}
    if api_key is not None:
        headers["Authorization"] = f"Bearer {api_key.get_secret_value()}"
    return httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s)


def image_data_url(image: Image.Image) -> str:
    """An image inline, as OpenAI-compatible chat APIs take it."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
