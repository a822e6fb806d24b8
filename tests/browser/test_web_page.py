"""The web page in a real headless Chromium (Debian's ``chromium``, driven by Playwright)
against real ``mmrag serve`` processes on the offline profile: one with the extractive
answerer, one with a tiny random VLM answerer. Screenshots for the README are written
to ``docs/screenshots``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from mmrag.testing.documents import FACTS, GeneratedCorpus, write_long_pdf
from mmrag.testing.servers import HOST, free_port

pytestmark = pytest.mark.browser

MMRAG = Path(sys.executable).with_name("mmrag")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
ALPHA, BETA = "alpha-key-for-tests", "beta-key-for-tests"
QUESTION = "How often are Zephyr blades inspected?"
WAIT_MS = 120_000  # indexing and answering on a busy 2-core machine
TOLERANCE_PX = 3


@dataclass
class Serve:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def http(self, key: str = ALPHA) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=120
        )


def start_serve(folder: Path, answerer: str = "") -> Iterator[Serve]:
    """``mmrag serve`` on the offline profile, two tenants' keys, on a free port."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = folder / "mmrag.toml"
    config.write_text(
        f"""data_dir = "{folder / "data"}"
profile = "offline"
{answerer}
[api]
host = "{HOST}"
port = {port}

[[api.keys]]
key = "{ALPHA}"
tenant = "alpha"
role = "write"

[[api.keys]]
key = "{BETA}"
tenant = "beta"
role = "write"
""",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMRAG_")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    log = folder / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(MMRAG), "--config", str(config), "serve"],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    url = f"http://{HOST}:{port}"
    deadline = time.monotonic() + 180
    while True:
        assert process.poll() is None, f"mmrag serve exited:\n{log.read_text()[-3000:]}"
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"mmrag serve not ready:\n{log.read_text()[-3000:]}"
        time.sleep(0.25)
    try:
        yield Serve(url, process, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    yield from start_serve(tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="module")
def vlm_serve(tmp_path_factory: pytest.TempPathFactory, tiny_models: Path) -> Iterator[Serve]:
    answerer = (
        f'\n[answerer]\nbackend = "transformers"\nmodel = "{tiny_models / "smolvlm"}"\n'
        "max_new_tokens = 48\n"
    )
    yield from start_serve(tmp_path_factory.mktemp("vlm-serve"), answerer)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    assert executable, "Chromium is missing: scripts/setup.sh installs Debian's chromium"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert not errors, f"the page raised: {errors}"


def sign_in(page: Any, serve: Serve, key: str = ALPHA, view: str = "ask") -> None:
    page.goto(f"{serve.url}/#{view}")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.locator(f"#{view}-view").wait_for(state="visible")


def row_of(page: Any, name: str) -> Any:
    """The documents table's row of the file named ``name`` (exactly)."""
    link = page.get_by_role("link", name=name, exact=True)
    return page.locator("#documents-table tbody tr").filter(has=link)


def upload_and_wait(page: Any, serve: Serve, files: list[Path]) -> dict[str, str]:
    """Drop ``files`` in the documents view; wait until every row says indexed."""
    sign_in(page, serve, view="documents")
    page.locator("#file-input").set_input_files([str(path) for path in files])
    ids = {}
    for path in files:
        row = row_of(page, path.name)
        row.locator("td.status", has_text="indexed").wait_for(timeout=WAIT_MS)
        ids[path.name] = row.get_attribute("data-id")
    return ids


def expected_box(image: dict, bbox: list[float], page_size: tuple[float, float]) -> list[float]:
    """Where ``bbox`` (page units) falls on the shown image (CSS pixels)."""
    scale_x, scale_y = image["width"] / page_size[0], image["height"] / page_size[1]
    x0, y0, x1, y1 = bbox
    return [
        image["x"] + x0 * scale_x,
        image["y"] + y0 * scale_y,
        (x1 - x0) * scale_x,
        (y1 - y0) * scale_y,
    ]


def assert_box_on(frame: Any, bbox: list[float], page_size: tuple[float, float]) -> None:
    image = frame.locator("img").bounding_box()
    drawn = frame.locator(".box").bounding_box()
    assert image and drawn and frame.locator("img").evaluate("i => i.naturalWidth") > 0
    want = expected_box(image, bbox, page_size)
    got = [drawn["x"], drawn["y"], drawn["width"], drawn["height"]]
    assert all(abs(a - b) <= TOLERANCE_PX for a, b in zip(got, want, strict=True)), (got, want)


# ------------------------------------------------------------------ sign-in


def test_a_wrong_key_gets_a_clear_sign_in_error(page: Any, serve: Serve) -> None:
    page.goto(serve.url)
    page.get_by_label("API key").fill("not-a-key")
    page.get_by_role("button", name="Sign in").click()
    error = page.locator("#signin-error")
    error.wait_for()
    assert "not accepted" in error.inner_text() and "invalid API key" in error.inner_text()
    assert page.locator("#ask-view").is_hidden()


# ------------------------------------------------------------------ the whole round


def test_upload_ask_cite_and_delete(page: Any, serve: Serve, corpus: GeneratedCorpus) -> None:
    pdf, docx = corpus.good["pdf"], corpus.good["docx"]
    ids = upload_and_wait(page, serve, [pdf, docx])
    page.screenshot(path=str(SCREENSHOTS / "documents.png"), full_page=True)

    # Another tenant's key sees none of it.
    beta = page.context.browser.new_page()
    sign_in(beta, serve, BETA, view="documents")
    assert beta.locator("#documents-table tbody tr").count() == 0
    beta.close()

    # Ask: the answer and a citation card with the cited box on the page.
    page.goto(f"{serve.url}/#ask")
    page.get_by_label("Question").fill(QUESTION)
    page.get_by_role("button", name="Ask", exact=True).click()
    page.locator('#answer[data-state="done"]').wait_for(timeout=WAIT_MS)
    assert "90 days" in page.locator("#answer").inner_text()
    card = page.locator("#citation-1")
    card.locator(".page-frame img").wait_for(timeout=WAIT_MS)
    assert card.get_attribute("data-document-id") == ids[pdf.name]

    with serve.http() as http:
        (citation,) = [
            c
            for c in http.post("/v1/ask", json={"question": QUESTION}).json()["citations"]
            if c["marker"] == 1
        ]
        shown = http.get(f"/v1/documents/{ids[pdf.name]}/pages/{citation['page']}")
        size = (float(shown.headers["X-Page-Width"]), float(shown.headers["X-Page-Height"]))
    assert_box_on(card.locator(".page-frame"), citation["bbox"], size)
    page.screenshot(path=str(SCREENSHOTS / "ask.png"), full_page=True)

    # The [1] marker leads to the card; opening it shows the page large, box and all.
    page.locator("#answer a.marker").first.click()
    assert page.evaluate("document.activeElement.id") == "citation-1"
    card.get_by_role("button", name="Open page").click()
    viewer = page.locator("#viewer-page")
    viewer.locator("img").wait_for(timeout=WAIT_MS)
    page.wait_for_function("document.querySelector('#viewer-page img').complete")
    assert_box_on(viewer, citation["bbox"], size)
    page.screenshot(path=str(SCREENSHOTS / "citation.png"))
    page.keyboard.press("Escape")

    # Delete the PDF: gone from the list, and from answers.
    page.goto(f"{serve.url}/#documents")
    row = row_of(page, pdf.name)
    row.get_by_role("button", name=f"Delete {pdf.name}").click()
    page.locator("#confirm-delete").click()
    row.wait_for(state="detached")
    page.reload()
    row_of(page, docx.name).wait_for()
    assert row_of(page, pdf.name).count() == 0
    page.goto(f"{serve.url}/#ask")
    page.get_by_label("Question").fill(QUESTION)
    page.get_by_role("button", name="Ask", exact=True).click()
    page.locator('#answer:is([data-state="done"], [data-state="abstained"])').wait_for(
        timeout=WAIT_MS
    )
    assert "90 days" not in page.locator("#answer").inner_text()
    cards = page.locator("#citations .card")
    cited = cards.evaluate_all("cards => cards.map(card => card.dataset.documentId)")
    assert ids[pdf.name] not in cited


def test_uploads_show_live_progress_and_failures(
    page: Any, serve: Serve, corpus: GeneratedCorpus, tmp_path: Path
) -> None:
    long_pdf = write_long_pdf(tmp_path / "long-report.pdf", pages=40, image_every=10)
    broken = corpus.bad["encrypted_pdf"]
    sign_in(page, serve, view="documents")
    # Record what the progress cells say as the rows change.
    page.evaluate(
        """() => {
          window.progressTexts = [];
          const table = document.querySelector('#documents-table tbody');
          new MutationObserver(() => table.querySelectorAll('td.progress').forEach(
            cell => window.progressTexts.push(cell.textContent))).observe(
            table, {childList: true, subtree: true, characterData: true});
        }"""
    )
    page.locator("#file-input").set_input_files([str(long_pdf), str(broken)])
    row = row_of(page, long_pdf.name)
    row.locator("td.status", has_text="indexed").wait_for(timeout=WAIT_MS)
    failed = row_of(page, broken.name)
    failed.locator("td.status", has_text="failed").wait_for(timeout=WAIT_MS)
    assert "password" in failed.locator("td.progress").inner_text()  # the reason, shown
    texts = page.evaluate("window.progressTexts")
    assert any(re.search(r"page \d+ of 40", text) for text in texts), texts
    assert row.locator("td").nth(2).inner_text() == "40"  # pages (the name is a th)


def test_filters_narrow_what_is_cited(page: Any, serve: Serve, corpus: GeneratedCorpus) -> None:
    ids = upload_and_wait(page, serve, [corpus.good["pdf"]])
    page.goto(f"{serve.url}/#ask")
    page.locator("#filters summary").click()
    page.get_by_label("from").fill("1")
    page.get_by_label("to", exact=True).fill("1")
    page.get_by_label("Question").fill(QUESTION)
    page.get_by_role("button", name="Ask", exact=True).click()
    page.locator('#answer:is([data-state="done"], [data-state="abstained"])').wait_for(
        timeout=WAIT_MS
    )
    pages = page.locator("#citations .card").evaluate_all(
        "cards => cards.map(card => [card.dataset.documentId, card.dataset.page])"
    )
    assert [ids[corpus.good["pdf"].name], "2"] not in pages  # the fact is on page 2
    assert "90 days" not in page.locator("#answer").inner_text()


def test_an_image_is_a_query(page: Any, serve: Serve, corpus: GeneratedCorpus) -> None:
    ids = upload_and_wait(page, serve, [corpus.good["png"]])
    page.goto(f"{serve.url}/#ask")
    page.locator("#image-query-file").set_input_files(str(corpus.good["png"]))
    first = page.locator("#citations .card").first
    first.wait_for(timeout=WAIT_MS)
    assert first.get_attribute("data-document-id") == ids[corpus.good["png"].name]
    first.locator(".page-frame img").wait_for(timeout=WAIT_MS)


def test_a_documents_pages_show_their_regions(
    page: Any, serve: Serve, corpus: GeneratedCorpus
) -> None:
    ids = upload_and_wait(page, serve, [corpus.good["pdf"]])
    page.goto(f"{serve.url}/#document/{ids[corpus.good['pdf'].name]}/2")
    page.locator("#document-page img").wait_for(timeout=WAIT_MS)
    assert page.locator("#page-number").inner_text() == "Page 2 of 2"
    assert page.locator("#document-page .box").count() >= 1
    assert "90 days" in page.locator("#regions").inner_text()
    page.locator("#page-previous").click()
    page.wait_for_function("document.querySelector('#page-number').textContent === 'Page 1 of 2'")


def test_phone_width_and_dark_mode(browser: Any, serve: Serve) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme="dark")
    phone = context.new_page()
    sign_in(phone, serve)
    phone.get_by_label("Question").fill(QUESTION)
    phone.get_by_label("Question").press("Enter")  # Enter asks
    phone.locator('#answer:is([data-state="done"], [data-state="abstained"])').wait_for(
        timeout=WAIT_MS
    )
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    background = phone.evaluate("getComputedStyle(document.body).backgroundColor")
    red, green, blue = (int(v) for v in background[4:-1].split(",")[:3])
    assert red + green + blue < 150, background
    context.close()


# ------------------------------------------------------------------ a VLM answering


def test_a_vlm_answer_streams_into_the_page(
    page: Any, vlm_serve: Serve, corpus: GeneratedCorpus
) -> None:
    upload_and_wait(page, vlm_serve, [corpus.good["pdf"]])
    page.goto(f"{vlm_serve.url}/#ask")
    # Record the answer as the page writes it: (state, characters) at each change.
    page.evaluate(
        """() => {
          window.answerStates = [];
          const answer = document.querySelector('#answer');
          new MutationObserver(() => window.answerStates.push(
            [answer.dataset.state, answer.textContent.length, performance.now()])).observe(
            answer, {childList: true, subtree: true, characterData: true, attributes: true});
        }"""
    )
    page.get_by_label("Question").fill(FACTS["pdf"].replace("produces", "produces how much"))
    page.get_by_role("button", name="Ask", exact=True).click()
    page.locator('#answer[data-state="done"]').wait_for(timeout=WAIT_MS)
    states = page.evaluate("window.answerStates")
    final = len(page.locator("#answer").inner_text())
    partial = [at for state, length, at in states if state == "streaming" and 0 < length < final]
    done = min(at for state, _, at in states if state == "done")
    # Text was shown before the answer was complete, while the model was still writing it
    # (not merely drawn piece by piece from one late delivery: pieces arrived apart).
    assert final > 0 and partial and done - partial[0] > 10, states


def test_page_assets_are_served_by_the_service(serve: Serve) -> None:
    index = httpx.get(serve.url)
    assert index.status_code == 200 and "Content-Security-Policy" in index.headers
    for asset in ("/web/app.js", "/web/app.css"):
        assert httpx.get(serve.url + asset).status_code == 200
    assert "://" not in index.text, "every asset is served from this origin"
