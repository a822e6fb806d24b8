"""Loading shared by the VLM roles (captioner, answerer): transformers models and
OpenAI-compatible servers."""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
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
    headers = {"Authorization": f"Bearer {api_key.get_secret_value()}"} if api_key else {}
    try:
        response = httpx.get(f"{base_url.rstrip('/')}/models", headers=headers, timeout=timeout_s)
    except httpx.HTTPError as exc:
        return f"server {base_url} cannot be reached ({type(exc).__name__}: {exc})"
    if response.status_code >= 400:
        return f"server {base_url} answered GET /models with HTTP {response.status_code}"
    return None


RETRIES = 3  # a request to a model server is tried this many more times when it fails
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})  # overloaded or restarting
MAX_BACKOFF_S = 8.0


class RetryingTransport(httpx.BaseTransport):
    """An httpx transport that retries a request whose server could not be reached,
    timed out before answering, or answered "busy" (`RETRY_STATUSES`), with exponential
    backoff and jitter (tenacity); a ``Retry-After`` is honoured up to `MAX_BACKOFF_S`.
    Only what happens before the response starts is retried: a stream that breaks
    midway fails (its tokens were already handed on)."""

    def __init__(
        self, inner: httpx.BaseTransport, retries: int = RETRIES, base_s: float = 0.5
    ) -> None:
        self._inner, self._retries, self._base_s = inner, retries, base_s

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        from tenacity import (
            Retrying,
            retry_if_exception_type,
            stop_after_attempt,
            wait_random_exponential,
        )

        retrying = Retrying(
            stop=stop_after_attempt(self._retries + 1),
            wait=_retry_after(wait_random_exponential(multiplier=self._base_s, max=MAX_BACKOFF_S)),
            retry=retry_if_exception_type((httpx.TransportError, _Busy)),
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                response = self._inner.handle_request(request)
                last = attempt.retry_state.attempt_number > self._retries
                if response.status_code in RETRY_STATUSES and not last:
                    response.close()
                    raise _Busy(response)
                return response  # the last try's answer, whatever it is, goes to the caller
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        self._inner.close()


class _Busy(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def _retry_after(fallback: Any) -> Any:
    """A tenacity wait: the server's ``Retry-After`` (seconds, capped), else ``fallback``."""

    def wait(state: Any) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, _Busy):
            value = error.response.headers.get("retry-after", "")
            if value.replace(".", "", 1).isdigit():
                return min(float(value), MAX_BACKOFF_S)
        return float(fallback(state))

    return wait


def image_data_url(image: Image.Image) -> str:
    """An image inline, as OpenAI-compatible chat APIs take it."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
