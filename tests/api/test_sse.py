"""Event streams: frames in order, keep-alive comments in the gaps, the producer closed
when the client leaves."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

from api.sse import KEEPALIVE, frame, with_pings


def slow_frames(closed: list[bool], gap_s: float = 0.3) -> Iterator[bytes]:
    try:
        for number in range(3):
            time.sleep(gap_s)
            yield frame("step", {"number": number})
    finally:
        closed.append(True)


def collect(frames: Iterator[bytes], ping_s: float, keep: int | None = None) -> list[bytes]:
    async def run() -> list[bytes]:
        got = []
        stream = with_pings(frames, ping_s)
        async for item in stream:
            got.append(item)
            if keep is not None and len([g for g in got if g != KEEPALIVE]) >= keep:
                await stream.aclose()
                break
        return got

    return asyncio.run(run())


def test_idle_gaps_get_keepalive_comments_between_frames_in_order() -> None:
    closed: list[bool] = []
    got = collect(slow_frames(closed), ping_s=0.05)
    events = [item for item in got if item != KEEPALIVE]
    assert events == [frame("step", {"number": n}) for n in range(3)]
    assert got.count(KEEPALIVE) >= 3 and got[0] == KEEPALIVE  # pings came in every gap
    assert closed == [True]


def test_a_busy_stream_sends_no_pings() -> None:
    got = collect(slow_frames([], gap_s=0.0), ping_s=5.0)
    assert KEEPALIVE not in got and len(got) == 3


def test_a_client_leaving_closes_the_producer() -> None:
    closed: list[bool] = []
    got = collect(slow_frames(closed, gap_s=0.05), ping_s=5.0, keep=1)
    assert got == [frame("step", {"number": 0})] and closed == [True]
