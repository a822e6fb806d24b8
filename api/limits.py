"""Checks on every request before a route sees it: the URL is valid UTF-8, and a JSON
body is bounded (`MAX_JSON_BYTES`) before it is read, not after; a body refused unread
closes its connection (`CloseUnreadBody`).

FastAPI reads a JSON body whole before any dependency runs (the key check included),
so the bound is enforced where the body is received: `BoundedBodyRoute` refuses a
declared ``Content-Length`` over it at once and stops reading a streamed one as soon as
it passes. Uploads are streamed by their route and bounded there (`api.uploads`).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import unquote_to_bytes

from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response

# The largest legitimate body: a question of api.max_question_chars (2000 by default,
# up to 12 bytes each as JSON escapes) and filters at their limits (1000 document ids).
MAX_JSON_BYTES = 1 << 20


class BoundedBodyRoute(APIRoute):
    """A route whose body FastAPI reads (JSON) takes at most `MAX_JSON_BYTES`; 413 past
    that, without reading the rest. Routes that read their own body are left alone.

    Not FastAPI's ``max_body_size``: for a declared length it answers with Starlette's
    plain-text 413, past this API's error handlers and format."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def bounded(request: Request) -> Response:
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_JSON_BYTES:
                raise _too_large()
            return await handler(Request(request.scope, _bounded_receive(request.receive)))

        return bounded


def _bounded_receive(receive: Receive) -> Receive:
    received = 0

    async def bounded() -> Message:
        nonlocal received
        message = await receive()
        received += len(message.get("body", b""))
        if received > MAX_JSON_BYTES:
            raise _too_large()  # FastAPI passes an HTTPException from the body read on
        return message

    return bounded


def _too_large() -> HTTPException:
    return HTTPException(413, f"the request body is over {MAX_JSON_BYTES // 1024} KiB")


class ValidURLMiddleware:
    """400 for a path or query string that is not valid UTF-8 once percent-decoded
    (servers would hand routes U+FFFD, or a lone surrogate, in its place)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = url_problem(scope)
            if problem is not None:
                response = error_response(400, "invalid_request", problem)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def url_problem(scope: Scope) -> str | None:
    """What is wrong with the request's URL, or None."""
    raw_path = scope.get("raw_path")
    if raw_path is None:  # a server without raw_path gives the decoded path only
        path_ok = _is_utf8(scope["path"].encode("utf-8", "surrogatepass"))
    else:
        path_ok = _is_utf8(unquote_to_bytes(raw_path))
    if not path_ok:
        return "the URL path is not valid UTF-8"
    if not _is_utf8(unquote_to_bytes(scope.get("query_string", b"").replace(b"+", b" "))):
        return "the query string is not valid UTF-8"
    return None


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")  # strict: surrogates (ED A0 80 ...) are refused too
    except UnicodeDecodeError:
        return False
    return True


class CloseUnreadBody:
    """An answer sent before the request body was read whole says ``Connection: close``,
    so the server drops the connection instead of reading on (uvicorn would otherwise
    receive and discard the rest of a refused 2 GiB upload to keep the connection)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _has_body(scope):
            await self.app(scope, receive, send)
            return
        body_read = False

        async def tracked() -> Message:
            nonlocal body_read
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_read = True
            return message

        async def closing(message: Message) -> None:
            if message["type"] == "http.response.start" and not body_read:
                headers = [*message.get("headers", []), (b"connection", b"close")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, tracked, closing)


def _has_body(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            return value.strip() not in (b"", b"0")
        if name == b"transfer-encoding":
            return True
    return False
