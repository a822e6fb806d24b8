// The mmrag web page: ask with the evidence shown, and manage documents.
// Plain JavaScript modules against the HTTP API: no build step, no dependencies, no CDN.
// Every request carries the API key given at sign-in (kept for this browser tab only);
// images come through fetch too (an <img src> cannot send the key) as blob URLs.

const KEY_STORAGE = "mmrag-api-key";
const PAGE_WIDTH = 800; // pixels asked of the page-image endpoint for cards
const LARGE_WIDTH = 1600; // for the page viewer
const KINDS = ["text", "table", "image", "page"];

const state = {
  key: sessionStorage.getItem(KEY_STORAGE) || "",
  keysInUse: false,
  documents: new Map(), // id -> document record
  following: new Set(), // document ids whose progress events are being read
  blobUrls: [], // object URLs of the current answer, revoked when a new one starts
  asking: null, // AbortController of the running question
};

const $ = (selector, root = document) => root.querySelector(selector);

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

// ------------------------------------------------------------------ the API

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

class SignedOut extends Error {}

async function errorMessage(response) {
  try {
    const body = await response.json();
    return body.error?.message || response.statusText;
  } catch {
    return response.statusText || `HTTP ${response.status}`;
  }
}

async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  if (state.key) headers.set("Authorization", `Bearer ${state.key}`);
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "the service cannot be reached");
  }
  if (response.status === 401) {
    const message = await errorMessage(response);
    showSignIn(state.key ? `That key was not accepted: ${message}.` : "");
    throw new SignedOut(message);
  }
  if (!response.ok) throw new ApiError(response.status, await errorMessage(response));
  return response;
}

async function json(path, options) {
  return (await api(path, options)).json();
}

// Server-Sent Events from a fetch response (EventSource can neither POST nor send a key).
async function* events(response, signal) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replace(/\r\n/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let name = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) name = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (data.length) yield { name, data: JSON.parse(data.join("\n")) };
      }
      if (signal?.aborted) break;
    }
  } finally {
    reader.releaseLock();
  }
}

async function blobUrl(path) {
  const response = await api(path);
  const url = URL.createObjectURL(await response.blob());
  state.blobUrls.push(url);
  return { url, response };
}

// ------------------------------------------------------------------ access

function showSignIn(message) {
  for (const id of ["ask-view", "documents-view", "document-view", "views", "loading"]) {
    $(`#${id}`).hidden = true;
  }
  $("#sign-out").hidden = true;
  $("#signin").hidden = false;
  $("#signin-error").textContent = message || "";
  $("#api-key").focus();
}

async function start() {
  try {
    // Without a key this tells whether keys are in use: 401 when they are.
    const headers = state.key ? { Authorization: `Bearer ${state.key}` } : {};
    const probe = await fetch("/v1/documents?limit=1", { headers });
    if (probe.status === 401) {
      state.keysInUse = true;
      const message = state.key ? `That key was not accepted: ${await errorMessage(probe)}.` : "";
      if (state.key) sessionStorage.removeItem(KEY_STORAGE);
      state.key = "";
      showSignIn(message);
      return;
    }
    state.keysInUse = Boolean(state.key);
  } catch {
    $("#loading").textContent = "The service cannot be reached.";
    return;
  }
  try {
    await loadDocuments();
  } catch (error) {
    if (error instanceof SignedOut) return;
    // 503 "loading": the service is still loading its models; try again shortly.
    $("#loading").hidden = false;
    $("#loading").textContent = `${error.message}. Trying again in 5 s…`;
    setTimeout(start, 5000);
    return;
  }
  $("#loading").hidden = true;
  $("#signin").hidden = true;
  $("#views").hidden = false;
  $("#sign-out").hidden = !state.keysInUse;
  route();
}

$("#signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  state.key = $("#api-key").value.trim();
  sessionStorage.setItem(KEY_STORAGE, state.key);
  $("#api-key").value = "";
  await start();
});

$("#sign-out").addEventListener("click", () => {
  sessionStorage.removeItem(KEY_STORAGE);
  state.key = "";
  state.documents.clear();
  showSignIn("Signed out.");
});

// ------------------------------------------------------------------ views

function route() {
  if ($("#signin").hidden === false) return;
  const [view, id, page] = (location.hash.slice(1) || "ask").split("/");
  for (const name of ["ask", "documents", "document"]) {
    $(`#${name}-view`).hidden = name !== view;
  }
  if (!["ask", "documents", "document"].includes(view)) $("#ask-view").hidden = false;
  for (const link of document.querySelectorAll("#views a")) {
    const current = link.getAttribute("href") === `#${view === "document" ? "documents" : view}`;
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (view === "documents") renderDocuments();
  if (view === "document") showDocument(decodeURIComponent(id || ""), Number(page) || 1);
}

window.addEventListener("hashchange", route);

function documentName(id, source = "") {
  const known = state.documents.get(id);
  if (known) return known.filename;
  return source.replace(/^upload:/, "").split(/[\\/]/).pop() || id;
}

// ------------------------------------------------------------------ evidence

// A page image with boxes drawn on it, positioned in percent of the page, so they stay
// on their region at any size. Resolves to false when the document has no page images.
async function pageWithBoxes(frame, documentId, page, boxes, width) {
  frame.replaceChildren(element("p", { class: "muted" }, "Loading the page…"));
  let shown;
  try {
    shown = await blobUrl(
      `/v1/documents/${encodeURIComponent(documentId)}/pages/${page}?width=${width}`,
    );
  } catch (error) {
    if (error instanceof SignedOut) throw error;
    const reason = error.status === 415 ? "This type of document has no page images." : error.message;
    frame.replaceChildren(element("p", { class: "muted" }, reason));
    return false;
  }
  const pageWidth = Number(shown.response.headers.get("X-Page-Width"));
  const pageHeight = Number(shown.response.headers.get("X-Page-Height"));
  const image = element("img", {
    src: shown.url,
    alt: `Page ${page} of ${documentName(documentId)}`,
    dataset: { pageWidth, pageHeight },
  });
  frame.replaceChildren(image);
  for (const box of boxes) {
    if (!box.bbox) continue;
    const [x0, y0, x1, y1] = box.bbox;
    const outline = element("div", {
      class: `box ${box.kind || ""}`,
      role: "img",
      "aria-label": box.label,
      title: box.label,
      dataset: { bbox: box.bbox.join(",") },
    });
    Object.assign(outline.style, {
      left: `${(100 * x0) / pageWidth}%`,
      top: `${(100 * y0) / pageHeight}%`,
      width: `${(100 * (x1 - x0)) / pageWidth}%`,
      height: `${(100 * (y1 - y0)) / pageHeight}%`,
    });
    frame.append(outline);
  }
  await image.decode().catch(() => {});
  return true;
}

function openViewer(item) {
  const viewer = $("#viewer");
  $("#viewer-title").textContent = `${documentName(item.document_id, item.source)}, page ${item.page}`;
  viewer.showModal();
  pageWithBoxes($("#viewer-page"), item.document_id, item.page, [cited(item)], LARGE_WIDTH);
}

function cited(item) {
  const label = item.marker ? `cited region [${item.marker}]` : `matched ${item.kind}`;
  return { bbox: item.bbox, kind: "cited", label };
}

// One card: a citation (with a marker) or a search hit.
function evidenceCard(item) {
  const name = documentName(item.document_id, item.source);
  const heading = `${item.marker ? `[${item.marker}] ` : ""}${name}, page ${item.page}`;
  const frame = element("div", { class: "page-frame" });
  const open = element(
    "button",
    { type: "button", class: "open", onclick: () => openViewer(item) },
    "Open page",
  );
  const card = element(
    "li",
    {
      class: "card",
      id: item.marker ? `citation-${item.marker}` : null,
      tabindex: "-1",
      dataset: { documentId: item.document_id, page: item.page, kind: item.kind },
    },
    element("h4", {}, heading, element("span", { class: "kind" }, ` ${item.kind}`)),
    frame,
  );
  if (item.image_url) {
    const crop = element("img", { class: "crop", alt: `The cited ${item.kind} from ${name}` });
    card.append(element("figure", {}, crop));
    blobUrl(item.image_url).then(({ url }) => (crop.src = url)).catch(() => crop.remove());
  }
  if (item.text) card.append(element("blockquote", {}, item.text));
  card.append(open);
  pageWithBoxes(frame, item.document_id, item.page, [cited(item)], PAGE_WIDTH).then((shown) => {
    if (!shown) open.remove();
  }).catch(() => {});
  return card;
}

// ------------------------------------------------------------------ ask

function renderAnswer(text) {
  const answer = $("#answer");
  answer.replaceChildren();
  let last = 0;
  for (const match of text.matchAll(/\[(\d+)\]/g)) {
    answer.append(text.slice(last, match.index));
    answer.append(
      element(
        "a",
        { href: `#citation-${match[1]}`, class: "marker", onclick: focusCitation(match[1]) },
        match[0],
      ),
    );
    last = match.index + match[0].length;
  }
  answer.append(text.slice(last));
}

function focusCitation(marker) {
  return (event) => {
    event.preventDefault(); // the hash is the view's: keep it
    const card = $(`#citation-${marker}`);
    if (card) {
      card.scrollIntoView({ behavior: "smooth", block: "nearest" });
      card.focus({ preventScroll: true });
    }
  };
}

function resetResult(title) {
  state.asking?.abort();
  for (const url of state.blobUrls.splice(0)) URL.revokeObjectURL(url);
  $("#result").hidden = false;
  $("#result-title").textContent = title;
  $("#answer").replaceChildren();
  $("#answer").dataset.state = "idle";
  $("#citations").replaceChildren();
}

function filters() {
  const chosen = (selector) => [...document.querySelectorAll(selector)].map((node) => node.value);
  const value = (id) => ($(`#${id}`).value ? Number($(`#${id}`).value) : null);
  return {
    document_ids: chosen("#filter-documents option:checked"),
    kinds: chosen("input[name=kind]:checked"),
    page_from: value("page-from"),
    page_to: value("page-to"),
  };
}

async function ask(question) {
  resetResult("Answer");
  const controller = new AbortController();
  state.asking = controller;
  const answer = $("#answer");
  const status = $("#answer-status");
  status.textContent = "Searching…";
  answer.dataset.state = "streaming";
  let text = "";
  try {
    const response = await api("/v1/ask", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ question, filters: filters(), stream: true }),
      signal: controller.signal,
    });
    for await (const event of events(response, controller.signal)) {
      if (event.name === "retrieval") {
        status.textContent = `Writing the answer from ${event.data.hits.length} sources…`;
      } else if (event.name === "token") {
        text += event.data.text;
        renderAnswer(text);
      } else if (event.name === "citation") {
        $("#citations").append(evidenceCard(event.data));
      } else if (event.name === "done") {
        renderAnswer(event.data.answer);
        answer.dataset.state = event.data.abstained ? "abstained" : "done";
        status.textContent = event.data.abstained
          ? "No answer: the documents do not hold enough to answer this."
          : `Answered in ${event.data.timings.total_s.toFixed(1)} s.`;
      } else if (event.name === "error") {
        throw new ApiError(event.data.error.status, event.data.error.message);
      }
    }
  } catch (error) {
    if (error.name === "AbortError" || error instanceof SignedOut) return;
    answer.dataset.state = "error";
    status.textContent = `The question failed: ${error.message}`;
  }
}

async function searchByImage(file) {
  if (!file || !file.type.startsWith("image/")) return;
  resetResult("Search by image");
  const status = $("#answer-status");
  status.textContent = `Searching with ${file.name || "the pasted image"}…`;
  const query = new URLSearchParams({ limit: "8" });
  const chosen = filters();
  for (const id of chosen.document_ids) query.append("document_ids", id);
  for (const kind of chosen.kinds) query.append("kinds", kind);
  if (chosen.page_from) query.set("page_from", chosen.page_from);
  if (chosen.page_to) query.set("page_to", chosen.page_to);
  try {
    const result = await json(`/v1/search/image?${query}`, {
      method: "POST",
      headers: { "Content-Type": file.type },
      body: file,
    });
    $("#answer").dataset.state = "done";
    status.textContent = result.hits.length
      ? `${result.hits.length} matches for the image.`
      : "Nothing matches the image.";
    for (const hit of result.hits) $("#citations").append(evidenceCard(hit));
  } catch (error) {
    if (error instanceof SignedOut) return;
    $("#answer").dataset.state = "error";
    status.textContent = `The image search failed: ${error.message}`;
  }
}

$("#ask-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const question = $("#question").value.trim();
  if (question) ask(question);
});

$("#question").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("#ask-form").requestSubmit();
  }
});

function dropTarget(zone, input, take) {
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    take([...event.dataTransfer.files]);
  });
  zone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      input.click();
    }
  });
  input.addEventListener("change", () => {
    take([...input.files]);
    input.value = "";
  });
}

dropTarget($("#image-query"), $("#image-query-file"), (files) => searchByImage(files[0]));
document.addEventListener("paste", (event) => {
  if ($("#ask-view").hidden) return;
  const image = [...(event.clipboardData?.files || [])].find((f) => f.type.startsWith("image/"));
  if (image) {
    event.preventDefault();
    searchByImage(image);
  }
});

// ------------------------------------------------------------------ documents

async function loadDocuments() {
  const records = [];
  for (let offset = 0; ; offset += 1000) {
    const page = await json(`/v1/documents?limit=1000&offset=${offset}`);
    records.push(...page.documents);
    if (records.length >= page.total || !page.documents.length) break;
  }
  state.documents = new Map(records.map((record) => [record.id, record]));
  renderDocumentFilter();
  for (const record of records) {
    if (record.status === "queued" || record.status === "processing") follow(record.id);
  }
}

function renderDocumentFilter() {
  const select = $("#filter-documents");
  const chosen = new Set([...select.selectedOptions].map((option) => option.value));
  select.replaceChildren(
    ...[...state.documents.values()]
      .filter((record) => record.status === "indexed")
      .map((record) =>
        element("option", { value: record.id, selected: chosen.has(record.id) }, record.filename),
      ),
  );
}

function progressText(record, job) {
  if (job && !["done", "failed", "cancelled"].includes(job.state)) {
    const progress = job.progress;
    const pages = progress.pages_total ? `, page ${progress.pages} of ${progress.pages_total}` : "";
    const images = progress.images ? `, ${progress.images} images` : "";
    return job.state === "queued" ? "waiting" : `${progress.stage || "starting"}${pages}${images}`;
  }
  return record.status === "failed" ? record.error : "";
}

function documentRow(record, job) {
  const status = job && !["done", "failed", "cancelled"].includes(job.state)
    ? (job.state === "queued" ? "queued" : "processing")
    : record.status;
  const name = element("a", { href: `#document/${encodeURIComponent(record.id)}/1` }, record.filename);
  return element(
    "tr",
    { dataset: { id: record.id, status } },
    element("th", { scope: "row" }, name),
    element("td", { class: `status ${status}` }, status),
    element("td", { class: status === "failed" ? "progress error" : "progress" }, progressText(record, job)),
    element("td", {}, String(job?.progress?.pages_total || record.pages || "")),
    element("td", {}, String(job?.progress?.images || record.images || "")),
    element(
      "td",
      {},
      element(
        "button",
        {
          type: "button",
          class: "delete",
          "aria-label": `Delete ${record.filename}`,
          onclick: () => confirmDelete(record),
        },
        "Delete",
      ),
    ),
  );
}

function renderDocuments() {
  const body = $("#documents-table tbody");
  const records = [...state.documents.values()].sort((a, b) =>
    (b.created_at || "").localeCompare(a.created_at || ""),
  );
  body.replaceChildren(...records.map((record) => documentRow(record, record.job)));
  $("#documents-status").textContent = records.length
    ? `${records.length} documents.`
    : "No documents yet: drop some files above.";
}

function updateDocument(record) {
  state.documents.set(record.id, record);
  if (!$("#documents-view").hidden) {
    const row = $(`#documents-table tr[data-id="${CSS.escape(record.id)}"]`);
    const fresh = documentRow(record, record.job);
    if (row) row.replaceWith(fresh);
    else renderDocuments();
  }
  renderDocumentFilter();
}

async function follow(id) {
  if (state.following.has(id)) return;
  state.following.add(id);
  try {
    const response = await api(`/v1/documents/${encodeURIComponent(id)}/events`);
    for await (const event of events(response)) {
      const record = state.documents.get(id);
      if (event.name === "progress" && record) {
        updateDocument({ ...record, job: event.data, status: event.data.state });
      } else if (event.name === "document") {
        updateDocument(event.data);
      } else if (event.name === "deleted") {
        state.documents.delete(id);
        renderDocuments();
      }
    }
  } catch (error) {
    if (!(error instanceof SignedOut)) $("#documents-status").textContent = error.message;
  } finally {
    state.following.delete(id);
  }
}

async function upload(files) {
  if (!files.length) return;
  const form = new FormData();
  for (const file of files) form.append("files", file, file.name);
  const status = $("#documents-status");
  status.textContent = `Uploading ${files.length} file${files.length > 1 ? "s" : ""}…`;
  try {
    const result = await json("/v1/documents", { method: "POST", body: form });
    for (const uploaded of result.documents) {
      const known = state.documents.get(uploaded.id);
      updateDocument({
        ...(known || { pages: 0, images: 0, error: "", created_at: new Date().toISOString() }),
        id: uploaded.id,
        filename: uploaded.filename,
        status: uploaded.status,
        job: null,
      });
      if (uploaded.job_id) follow(uploaded.id);
    }
    status.textContent = `Uploaded ${result.documents.length}; indexing follows below.`;
  } catch (error) {
    if (!(error instanceof SignedOut)) status.textContent = `The upload failed: ${error.message}`;
  }
}

dropTarget($("#dropzone"), $("#file-input"), upload);

function confirmDelete(record) {
  const dialog = $("#confirm");
  $("#confirm-title").textContent = `Delete ${record.filename}?`;
  dialog.returnValue = "";
  dialog.onclose = async () => {
    if (dialog.returnValue !== "delete") return;
    try {
      await api(`/v1/documents/${encodeURIComponent(record.id)}`, { method: "DELETE" });
      state.documents.delete(record.id);
      renderDocuments();
      renderDocumentFilter();
      $("#documents-status").textContent = `Deleted ${record.filename}.`;
    } catch (error) {
      if (!(error instanceof SignedOut)) {
        $("#documents-status").textContent = `${record.filename} was not deleted: ${error.message}`;
      }
    }
  };
  dialog.showModal();
}

// ------------------------------------------------------------------ one document

async function showDocument(id, page) {
  const record = state.documents.get(id);
  $("#document-title").textContent = record ? record.filename : id;
  const pages = Math.max(record?.pages || 1, 1);
  page = Math.min(Math.max(page, 1), pages);
  $("#page-number").textContent = `Page ${page} of ${pages}`;
  const link = (node, to) => {
    node.hidden = to < 1 || to > pages;
    node.href = `#document/${encodeURIComponent(id)}/${to}`;
  };
  link($("#page-previous"), page - 1);
  link($("#page-next"), page + 1);
  $("#document-note").textContent = "";
  const list = $("#regions");
  list.replaceChildren();
  try {
    const found = await json(`/v1/documents/${encodeURIComponent(id)}/pages/${page}/regions`);
    const boxes = found.regions.map((region, index) => ({
      bbox: region.bbox,
      kind: region.kind,
      label: `${index + 1}: ${region.kind}`,
    }));
    list.replaceChildren(
      ...found.regions.map((region, index) =>
        element(
          "li",
          { class: region.kind },
          element("strong", {}, `${index + 1}: ${region.kind}`),
          " ",
          (region.text || "").slice(0, 300),
        ),
      ),
    );
    if (!found.regions.length) $("#document-note").textContent = "Nothing is indexed on this page.";
    await pageWithBoxes($("#document-page"), id, page, boxes, LARGE_WIDTH);
  } catch (error) {
    if (!(error instanceof SignedOut)) $("#document-note").textContent = error.message;
  }
}

start();
