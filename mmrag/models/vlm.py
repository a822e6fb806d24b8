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

    if not base_url:
        raise ModelLoadError(
            role=role,
            model=model,
            reason="no server URL given",
            fix=f"set {setting_prefix}.base_url, e.g. http://localhost:8000/v1",
        )
    import httpx

    from mmrag.models.retries import RetryingTransport

    headers = {}
    if api_key is not None:
        headers["Authorization"] = f"Bearer {api_key.get_secret_value()}"
    return httpx.Client(
        base_url=base_url.rstrip("/"),
        headers=headers,
        timeout=timeout_s,
        transport=RetryingTransport(httpx.HTTPTransport()),
    )


def server_problem(base_url: str, api_key: SecretStr | None, timeout_s: float = 5.0) -> str | None:
    """What is wrong with an OpenAI-compatible server (``GET /models``), or None when it
    answers; one try, no retries: for `mmrag models` and readiness checks."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key.get_secret_value()}"} if api_key else {}
    try:
        response = httpx.get(f"{base_url.rstrip('/')}/models", headers=headers, timeout=timeout_s)
    except httpx.HTTPError as exc:
        return f"server {base_url} cannot be reached ({type(exc).__name__}: {exc})"
    if response.status_code >= 400:
        return f"server {base_url} answered GET /models with HTTP {response.status_code}"
    return None


def image_data_url(image: Image.Image) -> str:
    """An image inline, as OpenAI-compatible chat APIs take it."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
