"""Late-fusion answering: sources, images, citations, abstention; every answerer backend."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest
from PIL import Image

from mmrag.errors import InvalidRequestError
from mmrag.models.answerers import (
    SYSTEM_PROMPT,
    ExtractiveAnswerer,
    OpenAIAnswerer,
    TransformersAnswerer,
)
from mmrag.models.base import Source
from mmrag.services import Services, build_services
from mmrag.settings import AnswererSettings, Settings
from mmrag.testing import FakeAnswerer, FakeImageEmbedder
from mmrag.testing.documents import GeneratedCorpus
from mmrag.types import ElementKind, Hit


class QuotingAnswerer(FakeAnswerer):
    """FakeAnswerer's bookkeeping, with claims the cited sources support: the first
    sentence of each of the first two sources. (FakeAnswerer's own "According to the
    sources [1] [2]" is supported by no source, so its markers would be dropped.)"""

    def stream(self, question: str, sources: Sequence[Source]) -> Iterator[str]:
        self.calls.append((question, list(sources)))
        for index, source in enumerate(sources[:2]):
            sentence = source.text.split(". ")[0].strip()
            yield ("" if index == 0 else " ") + f"{sentence} [{source.number}]"
        yield " That is the answer."


@pytest.fixture(scope="module")
def indexed(
    corpus: GeneratedCorpus, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Services]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("asking"),
        profile="offline",
        answerer={"max_images": 1, "image_max_side": 100},
    )
    services = build_services(
        settings, image_embedder=FakeImageEmbedder(), answerer=QuotingAnswerer()
    )
    services.ingest_here(
        tenant="default", paths=[corpus.good[name] for name in ("pdf", "docx", "text", "html")]
    )
    yield services
    services.close()


def hit(number: int, text: str, kind: ElementKind = ElementKind.TEXT) -> Hit:
    return Hit(
        point_id=f"p{number}",
        score=1.0,
        document_id="d",
        source=f"/docs/f{number}.pdf",
        page=number,
        kind=kind,
        text=text,
    )


def test_answer_cites_sources_with_pages_and_images(indexed: Services) -> None:
    answer = indexed.asker.ask("What does the chart on the bridge page show?", tenant="default")

    assert "[1]" in answer.text and "[2]" in answer.text
    assert answer.text.endswith("That is the answer.")
    assert [c.marker for c in answer.citations] == [1, 2]
    for citation, source in zip(answer.citations, answer.sources, strict=False):
        assert (citation.document_id, citation.page, citation.kind) == (
            source.document_id,
            source.page,
            source.kind,
        )
    question, shown = indexed.answerer.calls[-1]  # type: ignore[attr-defined]
    with_pixels = [s for s in shown if s.image is not None]
    assert len(with_pixels) == 1 and max(with_pixels[0].image.size) <= 100
    assert with_pixels[0].hit.is_image


def test_unsupported_question_abstains_without_calling_the_model(indexed: Services) -> None:
    calls = len(indexed.answerer.calls)  # type: ignore[attr-defined]
    answer = indexed.asker.ask("Who painted the Sistine Chapel ceiling?", tenant="default")
    assert answer.abstained and answer.citations == () and answer.sources == ()
    assert answer.text == indexed.settings.answerer.abstain_message
    assert len(indexed.answerer.calls) == calls  # type: ignore[attr-defined]


def test_events_come_in_order(indexed: Services) -> None:
    kinds = [
        event.kind
        for event in indexed.asker.events("How long is the Periwinkle bridge?", tenant="default")
    ]
    assert kinds[0] == "retrieval" and kinds[-1] == "done"
    tokens = kinds.count("token")
    assert tokens >= 2 and set(kinds[1 : 1 + tokens]) == {"token"}
    assert set(kinds[1 + tokens : -1]) == {"citation"}


@pytest.mark.parametrize("question", ["", "   ", "x" * 2001])
def test_bad_questions_are_refused(indexed: Services, question: str) -> None:
    with pytest.raises(InvalidRequestError):
        indexed.asker.ask(question, tenant="default")


def test_extractive_answerer_quotes_the_best_sentence() -> None:
    sources = [
        Source(1, hit(1, "The reading room closes at 6 pm. Maps are old.")),
        Source(2, hit(2, "The Juniper library holds 9000 maps. It is in Oslo.")),
    ]
    text = "".join(ExtractiveAnswerer().stream("How many maps does the library hold?", sources))
    assert text.startswith("The Juniper library holds 9000 maps. [2]")


def test_tiny_vlm_answers_from_text_and_pixels(tiny_models: Path) -> None:
    answerer = TransformersAnswerer.load(
        AnswererSettings(model=str(tiny_models / "smolvlm"), max_new_tokens=8)
    )
    picture = Image.new("RGB", (90, 60), (200, 40, 40))
    sources = [
        Source(1, hit(1, "A red chart of sales.", ElementKind.IMAGE), image=picture),
        Source(2, hit(2, "Sales rose in March.")),
    ]

    pieces = list(answerer.stream("What rose?", sources))

    assert all(isinstance(piece, str) for piece in pieces) and answerer.items_processed == 1


def sse(*deltas: str) -> bytes:
    lines = [f"data: {json.dumps({'choices': [{'delta': {'content': d}}]})}\n\n" for d in deltas]
    return "".join(lines).encode() + b"data: [DONE]\n\n"


def test_openai_answerer_streams_and_sends_images() -> None:
    seen: list[dict] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(
            200, content=sse("It rose ", "[2]."), headers={"content-type": "text/event-stream"}
        )

    client = httpx.Client(base_url="http://vlm.test/v1", transport=httpx.MockTransport(handle))
    answerer = OpenAIAnswerer(client=client, settings=AnswererSettings(model="served"))
    sources = [
        Source(1, hit(1, "chart", ElementKind.IMAGE), image=Image.new("RGB", (8, 8))),
        Source(2, hit(2, "Sales rose in March.")),
    ]

    assert "".join(answerer.stream("What rose?", sources)) == "It rose [2]."
    body = seen[0]
    assert body["stream"] is True and body["model"] == "served"
    system, user = body["messages"]
    assert system == {"role": "system", "content": SYSTEM_PROMPT}
    content = user["content"]
    assert content[0]["image_url"]["url"].startswith("data:image/png;base64,")
    text = content[-1]["text"]
    assert '<source id="1" document="f1.pdf" page="1" kind="image" image="1">\nchart\n' in text
    assert '<source id="2" document="f2.pdf" page="2" kind="text">\nSales rose' in text
    assert text.endswith("<question>What rose?</question>")
