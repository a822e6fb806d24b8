"""Retries for requests to model servers (OpenAI-compatible captioners and answerers).

Imported only where such a client is built: ``httpx`` pulls in its command-line
helpers (click, rich) on import, which the library's core leaves to the programs.
"""

from __future__ import annotations

from typing import Any

import httpx

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
