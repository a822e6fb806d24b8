"""Every error becomes a JSON body with the right status, in one place; never a traceback.

The body is `api.schemas.ErrorResponse`: ``{"error": {"type", "message"[, "details"]}}``.
A request the API cannot take is a 400, whether the schema refuses it (type
``validation``, with pydantic's ``details``: wrong types, out-of-range numbers, lists
and strings over their bounds, invalid Unicode) or the library does (``invalid_request``:
an empty question, an unknown filter kind). 422 is kept for an uploaded file that
cannot be ingested (``bad_document``), 413 for a body or file over its limit, 415 for
an unsupported file type or a body that is not multipart/form-data.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from api.startup import ServiceStartingError
from mmrag import errors

logger = logging.getLogger("mmrag.api")

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# Most specific first: the first matching class decides.
STATUS = [
    (ServiceStartingError, 503, "loading"),
    (errors.NotFoundError, 404, "not_found"),
    (errors.TooLargeError, 413, "too_large"),
    (errors.InvalidRequestError, 400, "invalid_request"),
    (errors.UnsupportedFileError, 415, "unsupported_file"),
    (errors.DocumentError, 422, "bad_document"),
    (errors.ModelTimeoutError, 504, "model_timeout"),
    (errors.ModelRuntimeError, 502, "model_failed"),
    (errors.ModelLoadError, 503, "model_unavailable"),
    (errors.StoreError, 503, "store_unavailable"),
    (errors.ConfigError, 500, "configuration"),
]


def error_response(
    status: int,
    kind: str,
    message: str,
    details: list | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict = {"type": kind, "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": printable(body)}, status_code=status, headers=headers)


def printable(value: Any) -> Any:
    """``value`` with every lone surrogate (from a request's JSON escapes) spelled out
    as ``\\udXXX``: JSON has no way to send one, and the encoder would fail on it."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {printable(key): printable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [printable(item) for item in value]
    return value


def status_of(exc: errors.MmragError) -> tuple[int, str]:
    for kind, status, name in STATUS:
        if isinstance(exc, kind):
            return status, name
    return 500, "internal"


def allowed_methods(request: Request) -> str:
    """Every method the request's path takes (Starlette's 405 names one route's only)."""
    allowed = [
        method
        for method in METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    ]
    return ", ".join(allowed)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(errors.MmragError)
    async def library_error(request: Request, exc: errors.MmragError) -> JSONResponse:
        status, kind = status_of(exc)
        if isinstance(exc, ServiceStartingError):
            headers = {"Retry-After": str(exc.retry_after_s)}
            return error_response(status, kind, str(exc), headers=headers)
        if status >= 500:
            logger.error("%s %s failed: %s", request.method, request.url.path, exc)
        return error_response(status, kind, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(part) for part in first["loc"])
        return error_response(400, "validation", f"{where}: {first['msg']}", details)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": allowed_methods(request)}
        kind = {
            400: "invalid_request",
            401: "unauthorized",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
            413: "too_large",
            415: "unsupported_media_type",
        }.get(exc.status_code, "http_error")
        return error_response(exc.status_code, kind, str(exc.detail), headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("%s %s: unexpected error", request.method, request.url.path)
        return error_response(500, "internal", "internal error; see the server log")
