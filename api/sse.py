"""Server-Sent Events framing shared by the streaming routes."""

from __future__ import annotations

import json
from typing import Any


def frame(event: str, data: Any) -> bytes:
    """One ``event: <kind>`` / ``data: <json>`` frame."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()
