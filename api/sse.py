"""Server-Sent Events for the streaming routes: framing, keep-alive pings, headers.

A stream is produced by a plain (blocking) iterator of frames, run a step at a time in
the thread pool. Whenever ``api.sse_ping_s`` passes without a frame (a model thinking,
a job waiting in the queue) a comment line is sent, so proxies and load balancers do
not close an idle connection; ``Cache-Control: no-cache`` and ``X-Accel-Buffering: no``
keep proxies (nginx) from buffering the stream.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

KEEPALIVE = b": ping\n\n"
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_END = object()


def frame(event: str, data: Any) -> bytes:
    """One ``event: <kind>`` / ``data: <json>`` frame."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def sse_response(frames: Iterator[bytes], ping_s: float) -> StreamingResponse:
    """A ``text/event-stream`` response sending ``frames``, with pings in the gaps."""
    return StreamingResponse(
        with_pings(frames, ping_s), media_type="text/event-stream", headers=HEADERS
    )


async def with_pings(frames: Iterator[bytes], ping_s: float) -> AsyncIterator[bytes]:
    """``frames``, each step taken in the thread pool, and `KEEPALIVE` whenever
    ``ping_s`` passes without one."""
    pending: asyncio.Future[Any] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(run_in_threadpool(next, frames, _END))
            done, _ = await asyncio.wait({pending}, timeout=ping_s)
            if not done:
                yield KEEPALIVE
                continue
            item, pending = pending.result(), None
            if item is _END:
                return
            yield item
    finally:
        if pending is None and hasattr(frames, "close"):
            frames.close()  # the client left between steps: end the producer now
