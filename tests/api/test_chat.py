"""The OpenAI-compatible chat API, driven by the official ``openai`` client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from fastapi.testclient import TestClient

from mmrag.models.answerers import OpenAIAnswerer
from mmrag.settings import AnswererSettings, Settings
from mmrag.testing.documents import GeneratedCorpus
from tests.api.test_api import error_of, make_client, upload

QUESTION = "How often are Zephyr blades inspected?"


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory, corpus: GeneratedCorpus
) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("chat"), profile="offline")
    with make_client(settings) as test_client:
        upload(test_client, corpus.good["pdf"], corpus.good["text"])
        yield test_client


def openai_client(client: TestClient) -> openai.OpenAI:
    return openai.OpenAI(base_url="http://testserver/v1", api_key="unused", http_client=client)


def test_models_lists_mmrag(client: TestClient) -> None:
    assert [model.id for model in openai_client(client).models.list()] == ["mmrag"]


def test_a_completion_carries_footnotes_and_citations(client: TestClient) -> None:
    reply = openai_client(client).chat.completions.create(
        model="mmrag", messages=[{"role": "user", "content": QUESTION}]
    )
    text = reply.choices[0].message.content or ""
    assert "90 days" in text and "[1]" in text
    footnote = text.rsplit("\n\n", 1)[-1]
    assert footnote.startswith("[1] report.pdf, page 2: http://testserver/v1/documents/")
    extra = reply.model_extra or {}
    (citation,) = [c for c in extra["citations"] if c["marker"] == 1]
    assert citation["page"] == 2 and citation["page_url"] in footnote
    assert client.get(citation["page_url"]).headers["content-type"] == "image/png"
    assert extra["mmrag"] == {"query": QUESTION, "abstained": False}


def test_a_streamed_completion_arrives_in_chunks(client: TestClient) -> None:
    stream = openai_client(client).chat.completions.create(
        model="mmrag",
        messages=[{"role": "user", "content": QUESTION}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    text = "".join(pieces)
    assert len(pieces) >= 2 and "90 days" in text
    assert "\n\n[1] report.pdf, page 2: http://testserver/v1/documents/" in text
    (last,) = [c for c in chunks if c.choices and c.choices[0].finish_reason == "stop"]
    assert (last.model_extra or {})["citations"][0]["document_id"]
    assert chunks[-1].usage is not None and not chunks[-1].choices


def test_streams_are_not_buffered_by_proxies(client: TestClient) -> None:
    body = {"model": "mmrag", "messages": [{"role": "user", "content": QUESTION}], "stream": True}
    ask = {"question": QUESTION, "stream": True}
    for path, sent in [("/v1/chat/completions", body), ("/v1/ask", ask)]:
        with client.stream("POST", path, json=sent) as response:
            assert response.headers["cache-control"] == "no-cache"
            assert response.headers["x-accel-buffering"] == "no"
            assert response.headers["content-type"].startswith("text/event-stream")
            response.read()


def test_a_follow_up_without_a_language_model_searches_the_last_turn(
    client: TestClient,
) -> None:
    messages = [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": "Every 90 days. [1]"},
        {"role": "user", "content": "How many maps does the Juniper library hold?"},
    ]
    reply = openai_client(client).chat.completions.create(model="mmrag", messages=messages)
    assert (reply.model_extra or {})["mmrag"]["query"] == messages[-1]["content"]
    assert "9000" in (reply.choices[0].message.content or "")


def test_chat_errors(client: TestClient) -> None:
    chat = openai_client(client).chat.completions
    with pytest.raises(openai.NotFoundError, match="no model named 'gpt-4o'"):
        chat.create(model="gpt-4o", messages=[{"role": "user", "content": QUESTION}])
    with pytest.raises(openai.BadRequestError, match="no user message"):
        chat.create(model="mmrag", messages=[{"role": "system", "content": "Be brief."}])
    picture = [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]
    with pytest.raises(openai.BadRequestError, match="search/image"):
        chat.create(model="mmrag", messages=[{"role": "user", "content": picture}])  # type: ignore[list-item]
    body = {"model": "mmrag", "messages": [{"role": "user", "content": QUESTION}], "n": 2}
    error_of(client.post("/v1/chat/completions", json=body), 400)


def rewriting_answerer(seen: list[dict]) -> OpenAIAnswerer:
    """An OpenAI-compatible answerer server (a test double): it rewrites follow-ups into
    a fixed standalone question and answers citing source 1."""

    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        system = body["messages"][0]["content"]
        text = QUESTION if "standalone" in system else "They are inspected every 90 days [1]."
        chunk = {"choices": [{"delta": {"content": text}}]}
        stream = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()
        return httpx.Response(200, content=stream, headers={"content-type": "text/event-stream"})

    upstream = httpx.Client(base_url="http://vlm.test/v1", transport=httpx.MockTransport(handle))
    return OpenAIAnswerer(client=upstream, settings=AnswererSettings(model="served-vlm"))


def test_a_follow_up_is_rewritten_by_the_answerer_before_retrieval(
    tmp_path: Path, corpus: GeneratedCorpus
) -> None:
    seen: list[dict] = []
    settings = Settings(data_dir=tmp_path, profile="offline")
    with make_client(settings, answerer=rewriting_answerer(seen)) as client:
        upload(client, corpus.good["pdf"], corpus.good["text"])
        messages = [
            {"role": "user", "content": "What does the Osprey crew look after?"},
            {"role": "assistant", "content": "The Zephyr turbine blades. [1]"},
            {"role": "user", "content": "and how often?"},
        ]
        stream = openai_client(client).chat.completions.create(
            model="mmrag", messages=messages, stream=True
        )
        chunks = list(stream)
    rewrite, answer = seen
    shown = rewrite["messages"][1]["content"][0]["text"]
    assert "Osprey crew" in shown and "and how often?" in shown
    (last,) = [c for c in chunks if c.choices and c.choices[0].finish_reason == "stop"]
    extra = last.model_extra or {}
    assert extra["mmrag"]["query"] == QUESTION  # retrieval ran on the rewritten question
    assert QUESTION in answer["messages"][1]["content"][-1]["text"]
    assert extra["citations"][0]["page"] == 2


@pytest.fixture(scope="module")
def keyed_client(
    tmp_path_factory: pytest.TempPathFactory, corpus: GeneratedCorpus
) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("chat-keys"),
        profile="offline",
        api={
            "keys": [
                {"key": "alpha-key", "tenant": "alpha", "role": "write"},
                {"key": "beta-key", "tenant": "beta", "role": "read"},
            ]
        },
    )
    with make_client(settings) as test_client:
        upload(test_client, corpus.good["pdf"], headers={"Authorization": "Bearer alpha-key"})
        yield test_client


def test_citation_urls_are_signed_for_a_chat_ui_without_the_key(keyed_client: TestClient) -> None:
    chat = openai.OpenAI(
        base_url="http://testserver/v1", api_key="alpha-key", http_client=keyed_client
    )
    reply = chat.chat.completions.create(
        model="mmrag", messages=[{"role": "user", "content": QUESTION}]
    )
    (citation,) = [c for c in (reply.model_extra or {})["citations"] if c["marker"] == 1]
    url = httpx.URL(citation["page_url"])
    assert url.params["tenant"] == "alpha" and url.params["signature"]
    assert url.params["bbox"]  # the region's own parameter is kept and signed

    shown = keyed_client.get(str(url))  # no Authorization header: what a browser sends
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/png"

    unsigned = keyed_client.get(str(url.copy_remove_param("signature")))
    assert unsigned.status_code == 401
    other_region = url.copy_set_param("bbox", "0,0,600,800")
    other_tenant = url.copy_set_param("tenant", "beta")
    other_route = url.copy_with(path=url.path.split("/pages/")[0])  # the document's record
    for changed in (other_region, other_tenant, other_route):
        refused = keyed_client.get(str(changed))
        assert error_of(refused, 401)["message"] == "invalid URL signature", changed


def test_an_expired_signed_url_is_refused(keyed_client: TestClient) -> None:
    from api.signing import sign

    api = keyed_client.app.state.services.settings.api  # type: ignore[attr-defined]
    page = keyed_client.get("/v1/documents", headers={"Authorization": "Bearer alpha-key"}).json()[
        "documents"
    ][0]
    path = f"/v1/documents/{page['id']}/pages/1"
    fresh = sign(path, tenant="alpha", api=api)
    stale = sign(path, tenant="alpha", api=api, now=0)
    assert keyed_client.get(fresh).status_code == 200
    assert "expired" in error_of(keyed_client.get(stale), 401)["message"]
