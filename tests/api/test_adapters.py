"""The HTTP adapters (LangChain, LlamaIndex) against a live service: the app served by
uvicorn on a loopback port, the adapters talking to it over real HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn

from api.app import create_app
from mmrag.remote import MmragClient, RemoteError
from mmrag.settings import Settings
from mmrag.testing.documents import CHART_LABELS, GeneratedCorpus
from mmrag.testing.servers import HOST, free_port

KEY = "adapter-key"
QUESTION = "How often are Zephyr blades inspected?"


@dataclass
class Live:
    url: str
    documents: dict[str, str]  # file name -> document id


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, corpus: GeneratedCorpus) -> Iterator[Live]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("live"),
        profile="offline",
        api={"keys": [{"key": KEY, "tenant": "acme", "role": "write"}]},
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host=HOST, port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://{HOST}:{port}"
    headers = {"Authorization": f"Bearer {KEY}"}
    deadline = time.monotonic() + 120
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the service did not start"
        time.sleep(0.1)
    paths = [corpus.good["pdf"], corpus.good["text"]]
    files = [("files", (path.name, path.read_bytes())) for path in paths]
    uploaded = httpx.post(f"{url}/v1/documents", files=files, headers=headers, timeout=60)
    documents = {d["filename"]: d["id"] for d in uploaded.json()["documents"]}
    for document_id in documents.values():
        while httpx.get(f"{url}/v1/documents/{document_id}", headers=headers).json()["status"] in (
            "queued",
            "processing",
        ):
            assert time.monotonic() < deadline, "uploads still indexing"
            time.sleep(0.1)
    yield Live(url, documents)
    server.should_exit = True
    thread.join(timeout=30)


def test_langchain_lcel_chain_over_http(live: Live) -> None:
    from langchain_core.documents import Document
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnableLambda, RunnablePassthrough

    from mmrag.langchain import MmragHttpRetriever

    retriever = MmragHttpRetriever(url=live.url, api_key=KEY, limit=4)

    def context(documents: list[Document]) -> str:
        return "\n".join(f"[{d.metadata['page']}] {d.page_content}" for d in documents)

    prompt = ChatPromptTemplate.from_template("Context:\n{context}\n\nQuestion: {question}")
    chain = {"context": retriever | RunnableLambda(context), "question": RunnablePassthrough()}
    messages = (chain | prompt).invoke(QUESTION).to_messages()
    assert "every 90 days" in messages[0].content and QUESTION in messages[0].content

    documents = retriever.invoke(QUESTION)
    top = documents[0]
    assert top.metadata["document_id"] == live.documents["report.pdf"]
    assert top.metadata["page_url"].startswith(f"{live.url}/v1/documents/")
    picture = httpx.get(top.metadata["page_url"], headers={"Authorization": f"Bearer {KEY}"})
    assert picture.headers["content-type"] == "image/png"

    # Per call: filters and limit honoured.
    assert len(retriever.invoke(QUESTION, limit=1)) == 1
    maps = "How many maps does the Juniper library hold?"
    text, pdf = live.documents["plain.txt"], live.documents["report.pdf"]
    assert retriever.invoke(maps)[0].metadata["document_id"] == text
    in_pdf = retriever.invoke(maps, filters={"document_ids": [pdf]})
    assert {d.metadata["document_id"] for d in in_pdf} <= {pdf}


def test_llamaindex_query_engine_over_http(live: Live) -> None:
    from llama_index.core.llms import MockLLM
    from llama_index.core.query_engine import RetrieverQueryEngine

    from mmrag.llamaindex import MmragLlamaIndexRetriever

    retriever = MmragLlamaIndexRetriever(live.url, api_key=KEY, limit=3)
    engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM(max_tokens=8))
    response = engine.query(QUESTION)
    assert str(response)  # the (mock) model wrote from the retrieved nodes
    top = response.source_nodes[0]
    assert "every 90 days" in top.node.get_content()
    assert top.node.metadata["page"] == 2 and top.score is not None
    assert top.node.metadata["document_id"] == live.documents["report.pdf"]
    narrowed = MmragLlamaIndexRetriever(
        live.url, api_key=KEY, filters={"kinds": ["image"]}
    ).retrieve(f"{CHART_LABELS['pdf']} chart")
    assert narrowed and {n.node.metadata["kind"] for n in narrowed} == {"image"}


def test_client_errors_carry_the_services_reason(live: Live) -> None:
    with pytest.raises(RemoteError, match="401"):
        MmragClient(live.url, api_key="wrong").search(QUESTION)
    with pytest.raises(RemoteError, match="unknown kinds|kinds"):
        MmragClient(live.url, api_key=KEY).search(QUESTION, filters={"kinds": ["bogus"]})
