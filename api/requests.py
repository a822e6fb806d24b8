"""Request ids: every response carries ``X-Request-ID`` (the client's, when it sent a
sane one, else a fresh one), and every log line written while the request is handled
names it, so a client's report can be matched to the service's log."""

from __future__ import annotations

import contextvars
import logging
import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Request-ID"
_SANE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
current: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers", [])).get(HEADER.lower().encode(), b"").decode("latin-1")
        request_id = given if _SANE.match(given) else uuid.uuid4().hex
        token = current.set(request_id)

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, tagged)
        finally:
            current.reset(token)


class RequestIdFilter(logging.Filter):
    """Sets ``record.request`` to `` [<id>]`` inside a request, else to nothing (for a
    format such as ``%(name)s%(request)s: %(message)s``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = current.get()
        record.request = f" [{request_id}]" if request_id else ""
        return True
