"""The whole API under schemathesis: no request it generates gets a server error, and
every response has a documented status, content type and body (Server-Sent Events
included, event by event), with schemathesis' default checks (positive data acceptance
aside, see CONFIG): schema-invalid requests refused, 405s naming every method, and auth
not ignored.

Keys are configured and an admin key is sent, so the key check runs on every call (and
the ``ignored_auth`` check calls without a key, or with a wrong one). Bounded for the
default tier: 10 examples per operation in the fuzzing phase plus the coverage phase's
boundary cases, derandomized, uploads capped at 1 MB, questions at 200 characters, a fake
text embedder (a few hundred searches and questions in all).

The schema is loaded from the app object, not through ``from_fixture`` (broken on
pytest 9: it reads ``Function._nodeid``) nor ``from_asgi`` (the served schema needs a
running app and a key; `test_hardening` checks that it is the same).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from schemathesis import Case
from starlette.types import Receive, Scope, Send

from api.app import create_app
from mmrag.services import build_services
from mmrag.settings import Settings
from mmrag.testing import FakeTextEmbedder

KEY = "fuzz-admin-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
CONFIG = {
    "generation": {
        "max-examples": 10,
        "deterministic": True,
        # Unknown query parameters are ignored, as most APIs do, not refused.
        "allow-extra-parameters": False,
    },
    "phases": {"stateful": {"enabled": False}},
    # Schema-valid requests the API refuses by design (a blank question, one over
    # api.max_question_chars, a reserved metadata field) are 400s, not server errors.
    "checks": {"positive_data_acceptance": {"enabled": False}},
    "base-url": "http://testserver",
    "max-stream-events": 50,
    "request-timeout": 60,
}


class Served:
    """What schemathesis calls: the running app of the `served` fixture, without its
    lifespan (the fixture's TestClient runs that once; schemathesis would start a second
    one, with a second embedded store, otherwise)."""

    app: FastAPI | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            raise RuntimeError("no lifespan here")  # before any message: "not supported"
        if self.app is None:
            raise RuntimeError("the app is not running: use the `served` fixture")
        await self.app(scope, receive, send)


SERVED = Served()
# The schema of an app that is never started: the same routes, so the same schema.
schema = schemathesis.openapi.from_dict(
    create_app(Settings(profile="offline")).openapi(),
    config=schemathesis.Config.from_dict(CONFIG),
)
schema.app = SERVED


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("fuzz"),
        profile="offline",
        api={"keys": [KEY], "max_upload_mb": 1, "max_question_chars": 200},
    )
    # The contract is the subject, not the models: a fake text embedder keeps the
    # searches and questions cheap (test_api and test_hardening run the real ones).
    app = create_app(settings, build_services(settings, text_embedder=FakeTextEmbedder()))
    with TestClient(app):  # the lifespan: models, the store, the embedded worker
        SERVED.app = app
        try:
            yield app
        finally:
            SERVED.app = None


@schema.parametrize()
def test_api_conforms_to_its_schema(case: Case, served: FastAPI) -> None:
    case.call_and_validate(headers=AUTH)


def test_event_streams_conform_to_their_schema(served: FastAPI) -> None:
    """The streams the generated requests rarely reach whole: a document's progress from
    upload to indexed, and a streamed answer about it."""
    client = TestClient(served, headers=AUTH)
    text = b"The Quill lighthouse keeps 3 lamps lit through the winter storms."
    response = client.post("/v1/documents", files=[("files", ("quill.txt", text))])
    schema["/v1/documents"]["POST"].validate_response(response)
    (document,) = response.json()["documents"]
    events = client.get(f"/v1/documents/{document['id']}/events")
    assert "event: document" in events.text
    schema["/v1/documents/{document_id}/events"]["GET"].validate_response(events)
    question = {"question": "How many lamps does the Quill lighthouse keep lit?", "stream": True}
    answer = client.post("/v1/ask", json=question)
    assert "event: done" in answer.text
    schema["/v1/ask"]["POST"].validate_response(answer)
