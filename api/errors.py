"""Every error becomes a JSON body with the right status, in one place; never a traceback."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from mmrag import errors

logger = logging.getLogger("mmrag.api")

# Most specific first: the first matching class decides.
STATUS = [
    (errors.DocumentNotFoundError, 404, "not_found"),
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
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def status_of(exc: errors.MmragError) -> tuple[int, str]:
    for kind, status, name in STATUS:
        if isinstance(exc, kind):
            return status, name
    return 500, "internal"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(errors.MmragError)
    async def library_error(request: Request, exc: errors.MmragError) -> JSONResponse:
        status, kind = status_of(exc)
        if status >= 500:
            logger.error("%s %s failed: %s", request.method, request.url.path, exc)
        return error_response(status, kind, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(part) for part in first["loc"])
        return error_response(422, "validation", f"{where}: {first['msg']}", details)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        kind = {
            401: "unauthorized",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
            413: "too_large",
        }.get(exc.status_code, "http_error")
        return error_response(
            exc.status_code, kind, str(exc.detail), headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("%s %s: unexpected error", request.method, request.url.path)
        return error_response(500, "internal", "internal error; see the server log")
