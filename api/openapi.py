"""What the API says about itself: its OpenAPI schema, and where it is served.

``/openapi.json``, ``/docs`` and ``/redoc`` take a key of any role when keys are set
(unless ``api.open_docs``). The schema documents every error a route can answer (as
`ErrorResponse`), and each Server-Sent Events stream event by event (OpenAPI 3.2's
``itemSchema``: ``event`` names it, ``data`` is JSON of its model), so that a client,
or a schema-driven fuzzer, can hold the service to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api.deps import DocsAccess
from api.schemas import ASK_EVENTS, DOCUMENT_EVENTS, ErrorResponse

REF = "#/components/schemas/{model}"
ASSETS = "/docs-assets"
ERRORS = {
    400: "a body, parameter or file name the API cannot take: `validation` (the schema "
    "refuses it, with `details`) or `invalid_request` (the library does)",
    401: "a missing or unknown API key (when api.keys is set)",
    403: "the key's role does not allow this",
    404: "no such document, job or image (or another tenant's)",
    413: "the body, or a file in it, is over its limit",
    415: "an unsupported file type, or a body that is not multipart/form-data",
    422: "a file that cannot be ingested: empty, or not what its name says",
    502: "the answering model's server failed",
    503: "the store, catalog, queue or a model is unavailable",
    504: "the answering model's server did not answer in time",
}

router = APIRouter(include_in_schema=False, dependencies=[DocsAccess])


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route for the errors it can answer."""
    return {status: {"model": ErrorResponse, "description": ERRORS[status]} for status in statuses}


def event_stream(events: dict[str, type[BaseModel]]) -> dict[str, Any]:
    """The ``text/event-stream`` content of a response sending ``events``."""
    return {
        "text/event-stream": {
            "itemSchema": {
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["event", "data"],
                        "properties": {
                            "event": {"const": name},
                            "data": {
                                "type": "string",
                                "contentMediaType": "application/json",
                                "contentSchema": {"$ref": REF.format(model=model.__name__)},
                            },
                        },
                    }
                    for name, model in events.items()
                ]
            }
        }
    }


def openapi_schema(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI schema, built once: FastAPI's, with the event models added, the
    422 it puts on every route with parameters dropped (this API answers 400), and
    event streams described by their events only."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for operation in _operations(schema):
            responses = operation.get("responses", {})
            if _is_fastapi_422(responses.get("422", {})):
                del responses["422"]
            for response in responses.values():
                _tidy(response.get("content", {}))
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        models = {*ASK_EVENTS.values(), *DOCUMENT_EVENTS.values()}
        _, extra = models_json_schema(
            [(model, "serialization") for model in models], ref_template=REF
        )
        for name, definition in extra.get("$defs", {}).items():
            components.setdefault(name, definition)
        app.openapi_schema = schema
    return app.openapi_schema


def _tidy(content: dict[str, Any]) -> None:
    """One response's content as the API sends it: an error as JSON whatever the route's
    own media type (FastAPI files an extra response's model under the latter), and an
    event stream by its events only (FastAPI's ``{"type": "string"}`` is no stream)."""
    error = {"$ref": REF.format(model=ErrorResponse.__name__)}
    if any(media.get("schema") == error for media in content.values()):
        content.clear()
        content["application/json"] = {"schema": error}
    stream = content.get("text/event-stream", {})
    if "itemSchema" in stream:
        stream.pop("schema", None)


def _is_fastapi_422(response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return str(schema.get("$ref", "")).endswith("/HTTPValidationError")


def _operations(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return [operation for path in schema.get("paths", {}).values() for operation in path.values()]


@router.get("/openapi.json")
def openapi(request: Request) -> JSONResponse:
    return JSONResponse(openapi_schema(request.app))


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return get_swagger_ui_html(
        openapi_url=f"{root}/openapi.json",
        title="mmrag - API",
        swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS}/favicon.png",
    )


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return get_redoc_html(
        openapi_url=f"{root}/openapi.json",
        title="mmrag - ReDoc",
        redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS}/favicon.png",
        with_google_fonts=False,
    )


def install_docs_assets(app: FastAPI) -> None:
    """Swagger UI's and ReDoc's scripts and styles, from the fastapi-offline package:
    the API's documentation pages fetch nothing from a CDN."""
    import fastapi_offline

    static = Path(fastapi_offline.__file__).parent / "static"
    app.mount(ASSETS, StaticFiles(directory=static), name="docs-assets")
