"""One typed settings tree for every component.

Values come from (highest first): keyword arguments, ``MMRAG_*`` environment
variables (nested sections with ``__``, e.g. ``MMRAG_CAPTIONER__BACKEND=ocr``),
an optional TOML file (``mmrag --config FILE``), then the defaults below.
Settings are built only at entry points (`load_settings`) and passed down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from mmrag.errors import ConfigError
from mmrag.tenancy import TENANT_PATTERN, Role

DEFAULT_TEXT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_IMAGE_MODEL = "google/siglip-base-patch16-224"
DEFAULT_CAPTION_MODEL = "HuggingFaceTB/SmolVLM-256M-Instruct"
DEFAULT_PAGE_MODEL = "ModernVBERT/colmodernvbert-merged"
DEFAULT_RERANK_MODEL = "cross-encoder/ms-marco-MiniLM-L6-v2"
DEFAULT_CAPTION_PROMPT = (
    "Describe this image for search. Name its type (chart, table, diagram, photo, "
    "screenshot, page), its subject, and any numbers, labels or text it shows."
)


# auto: bf16 weights on GPUs; fp32 weights with bf16 autocast on CPUs with bf16 instructions.
Precision = Literal["auto", "fp32", "bf16"]
FusionMethod = Literal["rrf", "dbsf"]  # mmrag.fusion describes both


class TextEmbedderSettings(BaseModel):
    """Dense text embeddings for chunks, captions and queries."""

    backend: str = "sentence-transformers"
    model: str = Field(DEFAULT_TEXT_MODEL, description="hub id or local directory")
    device: str = Field("auto", description="auto (CUDA > MPS > CPU), cpu, cuda, cuda:1, mps")
    precision: Precision = "auto"
    batch_size: int = Field(
        16, ge=1, description="texts per forward pass (on a GPU, 64 or more runs faster)"
    )
    runtime: Literal["auto", "torch", "openvino"] = Field(
        "auto",
        description=(
            "what runs the transformer on the CPU: auto (OpenVINO when installed, else "
            "PyTorch), torch, openvino (an error if it cannot); GPUs always use PyTorch"
        ),
    )


class ImageEmbedderSettings(BaseModel):
    """Pixel embeddings (SigLIP): images and query text in one space."""

    backend: str = Field("siglip", description="siglip (transformers), open-clip, none")
    model: str = Field(
        DEFAULT_IMAGE_MODEL, description="hub id, local directory, or open_clip name"
    )
    device: str = "auto"
    precision: Precision = "auto"
    batch_size: int = Field(16, ge=1)


class PageEmbedderSettings(BaseModel):
    """Late-interaction page embeddings (ColPali family): one vector per image patch of a
    rendered page, scored against the query's token vectors with MaxSim."""

    backend: str = Field(
        "transformers",
        description="transformers (ColModernVBERT, ColQwen2, ColPali checkpoints), none",
    )
    model: str = Field(DEFAULT_PAGE_MODEL, description="hub id or local directory")
    device: str = "auto"
    precision: Precision = "auto"
    batch_size: int = Field(4, ge=1)
    first_stage: int = Field(
        200,
        ge=0,
        le=10_000,
        description="pages the pooled first stage hands to MaxSim; 0 = MaxSim over every page",
    )


class RerankerSettings(BaseModel):
    """A cross-encoder that rescores the fused top hits against the query."""

    backend: str = Field("none", description="cross-encoder (sentence-transformers), none")
    model: str = Field(DEFAULT_RERANK_MODEL, description="hub id or local directory")
    device: str = "auto"
    precision: Precision = "auto"
    batch_size: int = Field(32, ge=1)
    candidates: int = Field(30, ge=1, le=200, description="fused hits rescored")


class CaptionerSettings(BaseModel):
    """Image captions, embedded as text so text queries find images."""

    backend: str = Field("transformers", description="transformers, openai, ocr, none")
    model: str = Field(DEFAULT_CAPTION_MODEL, description="hub id, local directory, or served name")
    prompt: str = DEFAULT_CAPTION_PROMPT
    max_new_tokens: int = Field(96, ge=1)
    batch_size: int = Field(4, ge=1)
    device: str = "auto"
    precision: Precision = "auto"
    base_url: str | None = Field(None, description="OpenAI-compatible server, e.g. vLLM or Ollama")
    api_key: SecretStr | None = None
    timeout_s: float = Field(120.0, gt=0)
    ocr_text: bool = Field(True, description="also OCR each image and store the text with it")


class AnswererSettings(BaseModel):
    """The model that writes answers from retrieved text and images (late fusion)."""

    backend: str = Field("transformers", description="transformers, openai, extractive")
    model: str = Field(DEFAULT_CAPTION_MODEL, description="hub id, local directory, or served name")
    device: str = "auto"
    precision: Precision = "auto"
    max_new_tokens: int = Field(256, ge=1)
    base_url: str | None = Field(None, description="OpenAI-compatible server, e.g. vLLM or Ollama")
    api_key: SecretStr | None = None
    timeout_s: float = Field(120.0, gt=0)
    max_sources: int = Field(6, ge=1, description="retrieved hits shown to the answerer")
    max_images: int = Field(3, ge=0, description="of which images given as pixels")
    image_max_side: int = Field(
        512, ge=32, description="images are resized to this longest side (bounds image tokens)"
    )
    min_support: float = Field(
        0.25, description="abstain when no source's dense similarity reaches this"
    )
    abstain_message: str = "The indexed documents do not contain enough information to answer."


class SparseSettings(BaseModel):
    """BM25 of the ``sparse`` channel (Qdrant's tokeniser, stemmer and IDF). Term
    weights are fixed when an element is indexed: a change applies to what is ingested
    after it (re-ingest to apply it everywhere)."""

    language: str = Field(
        "english", description="stemmer and stop words (a Snowball language name)"
    )
    k1: float = Field(1.2, gt=0, description="term-frequency saturation")
    b: float = Field(0.75, ge=0, le=1, description="length normalisation (0: none)")
    avg_len: float = Field(
        256.0,
        gt=0,
        description="the element length, in BM25 tokens (stop words removed), that length "
        "normalisation compares against",
    )


class ChannelSettings(BaseModel):
    """One retrieval channel's part in the search."""

    weight: float = Field(1.0, ge=0, description="its weight in the fusion; 0 = not searched")
    candidates: int | None = Field(
        None,
        ge=1,
        le=1000,
        description="candidates it gives the fusion; unset = retrieval.candidates",
    )


class RetrievalSettings(BaseModel):
    """Channels, their weights in the fusion, and how many candidates each gives."""

    limit: int = Field(8, ge=1, le=200, description="hits returned")
    candidates: int = Field(50, ge=1, le=1000, description="candidates per channel before fusion")
    fusion: FusionMethod = Field(
        "dbsf",
        description="how channels' candidates are fused: dbsf (each channel's scores scaled by "
        "their own spread, then weighted and summed) or rrf (weighted reciprocal ranks)",
    )
    rrf_k: int = Field(60, ge=1, description="reciprocal-rank fusion constant (fusion = rrf)")
    channels: dict[str, ChannelSettings] = Field(
        default_factory=dict,
        description="per channel (text, sparse, caption, image, page, or an add-on's): weight "
        "and candidates; a channel not listed has weight 1",
    )
    page_share: float = Field(
        0.0,
        ge=0,
        le=10,
        description="each hit gains this share of the fused scores of the other hits on its "
        "page: pages matched by several elements rise (0 = off)",
    )
    min_dense_score: float = Field(
        0.2,
        description="candidates of the dense text channels (text, caption) with a lower cosine "
        "similarity are dropped as noise",
    )

    @model_validator(mode="before")
    @classmethod
    def _weights_of_old(cls, value: Any) -> Any:
        """The first settings named weights ``<channel>_weight``; they still count."""
        if not isinstance(value, dict):
            return value
        old = [key for key in value if key.endswith("_weight")]
        if not old:
            return value
        value = dict(value)
        channels = dict(value.get("channels") or {})
        for key in old:
            name = key.removesuffix("_weight")
            entry = channels.get(name)
            entry = entry.model_dump() if isinstance(entry, BaseModel) else dict(entry or {})
            channels[name] = {**entry, "weight": value.pop(key)}
        value["channels"] = channels
        return value

    def weight(self, channel: str) -> float:
        settings = self.channels.get(channel)
        return 1.0 if settings is None else settings.weight

    def candidates_for(self, channel: str) -> int:
        settings = self.channels.get(channel)
        found = None if settings is None else settings.candidates
        return self.candidates if found is None else found


class ApiKey(BaseModel):
    """One bearer key: the tenant it acts for and what it may do (read: search, ask, view;
    write: also upload and delete documents; admin: also metrics and every job)."""

    key: SecretStr
    tenant: str = Field("default", pattern=TENANT_PATTERN)
    role: Role = Role.ADMIN

    @model_validator(mode="before")
    @classmethod
    def _plain_key(cls, value: Any) -> Any:
        # A bare string is a key for the default tenant with every right.
        return {"key": value} if isinstance(value, str) else value


class ApiSettings(BaseModel):
    """The HTTP service."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    keys: list[ApiKey] = Field(
        default_factory=list,
        description="bearer keys, each with a tenant and a role; empty = no authentication "
        "(every caller acts as ingest.tenant with every right)",
    )
    max_upload_mb: float = Field(100.0, gt=0)
    max_question_chars: int = Field(2000, ge=1)
    open_docs: bool = Field(
        False, description="serve /docs and /openapi.json without a key when keys are set"
    )
    open_metrics: bool = Field(False, description="serve /metrics without a key when keys are set")
    cors_origins: list[str] = Field(
        default_factory=list,
        description="web origins allowed to call the API from a browser (CORS), e.g. "
        "https://chat.example.com; ['*'] for any; empty: none (the web page at / needs none)",
    )
    sse_ping_s: float = Field(
        15.0, gt=0, description="an event stream idle this long gets a keep-alive comment"
    )
    url_secret: SecretStr | None = Field(
        None,
        description="secret that signs the evidence URLs of chat citations (with keys set); "
        "unset: derived from api.keys, so changing the keys revokes them",
    )
    signed_url_ttl_s: int = Field(
        7 * 24 * 3600, ge=1, description="how long a signed evidence URL stays valid (seconds)"
    )

    @model_validator(mode="after")
    def _unique_keys(self) -> ApiSettings:
        secrets = [key.key.get_secret_value() for key in self.keys]
        if len(set(secrets)) != len(secrets):
            raise ValueError("api.keys: the same key is listed twice")
        return self


class ParsingSettings(BaseModel):
    """How files become text chunks and images."""

    chunk_size: int = Field(1000, ge=100, description="characters per text chunk")
    chunk_overlap: int = Field(150, ge=0)
    chunk_context: bool = Field(
        True, description="embed each chunk with its document's file name and first line"
    )
    min_image_side: int = Field(64, ge=1, description="skip images smaller than this (pixels)")
    max_image_pixels: int = Field(
        100_000_000, ge=1, description="refuse images declaring more pixels (bombs)"
    )
    page_images: Literal["none", "scanned", "all"] = Field(
        "scanned", description="render pages as images: never, pages without text layer, all"
    )
    render_dpi: int = Field(150, ge=36, le=600)
    ocr: bool = Field(True, description="OCR pages and images that have no text layer")
    ocr_dpi: int = Field(200, ge=72, le=600)
    ocr_languages: str = Field("eng", description="tesseract language codes, e.g. eng+deu")
    min_page_chars: int = Field(
        16, ge=0, description="a PDF page with fewer text characters counts as scanned"
    )
    # Limits: every file is parsed inside them, so one hostile file fails alone.
    isolate: bool = Field(
        True,
        description="parse each file in a child process held to parsing.timeout_s and "
        "parsing.memory_mb (off: in the ingesting process, without those two limits)",
    )
    timeout_s: float = Field(
        600.0,
        gt=0,
        description="wall-clock seconds parsing one file may take (time the parser waits "
        "for the models to take its output is not counted)",
    )
    memory_mb: int = Field(
        2048, ge=64, description="memory the parser process may take for one file (MiB)"
    )
    max_pages: int = Field(5000, ge=1, description="pages, slides or image frames per file")
    max_page_content_mb: float = Field(
        128.0,
        gt=0,
        description="a PDF page's drawing instructions (content streams and the forms they "
        "draw), inflated (MiB)",
    )
    max_unzipped_mb: float = Field(
        512.0, gt=0, description="total uncompressed size of a DOCX or PPTX package (MiB)"
    )
    max_zip_entries: int = Field(10_000, ge=1, description="parts in a DOCX or PPTX package")
    max_text_mb: float = Field(
        64.0, gt=0, description="size of a text, Markdown or HTML file (MiB)"
    )
    max_line_chars: int = Field(
        1_000_000, ge=1000, description="characters in one line of a text or Markdown file"
    )
    max_depth: int = Field(
        256, ge=8, description="nesting depth of HTML elements and Markdown blocks"
    )

    @model_validator(mode="after")
    def _overlap_below_size(self) -> ParsingSettings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError("parsing.chunk_overlap must be smaller than parsing.chunk_size")
        return self


class StoreSettings(BaseModel):
    """Qdrant: embedded by default; a URL switches to a server or a cluster."""

    qdrant_url: str | None = Field(None, description="e.g. http://localhost:6333; unset = embedded")
    api_key: SecretStr | None = None
    collection: str = Field("mmrag", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    shard_number: int | None = Field(None, ge=1, description="cluster: shards per collection")
    replication_factor: int | None = Field(None, ge=1)
    write_consistency_factor: int | None = Field(None, ge=1)
    timeout_s: float = Field(30.0, gt=0)
    index_after_points: int = Field(
        20_000,
        ge=0,
        description="embedded store: build the vector index (HNSW) in a background process "
        "once this many points were added since the last build (searches stay exact and "
        "keep working meanwhile); 0 never builds. A Qdrant server indexes by itself",
    )


class IngestSettings(BaseModel):
    """The ingest pipeline."""

    tenant: str = Field(
        "default",
        pattern=TENANT_PATTERN,
        description="the tenant of the CLI (mmrag --tenant) and of an API without keys",
    )
    batch_size: int = Field(64, ge=1, description="elements embedded and upserted together")
    max_file_mb: float = Field(512.0, gt=0)
    keep_originals: bool = Field(
        True, description="keep each ingested file in the blob store (originals/<id>/)"
    )
    follow_symlinks: bool = Field(
        False,
        description="follow links that point outside the folder given (links inside it are "
        "always followed once; loops and dangling links are reported and skipped)",
    )


class QueueSettings(BaseModel):
    """Ingest jobs: a durable queue (Huey) and leases that make delivery at-least-once."""

    url: str | None = Field(
        None,
        description="redis://host:6379/0 for workers on several machines; unset = a SQLite "
        "queue in the data directory, run by the process that holds the embedded store",
    )
    workers: int = Field(1, ge=1, description="jobs run at once by `mmrag serve` (embedded)")
    lease_s: float = Field(
        60.0,
        ge=1,
        description="a running job's lease; renewed while it runs, redelivered "
        "when its worker stops renewing (killed)",
    )
    max_retries: int = Field(3, ge=0, description="retries of a transient failure")
    max_deliveries: int = Field(
        20, ge=1, description="a job whose workers died this many times fails (a poison file)"
    )
    retry_delay_s: float = Field(5.0, ge=0, description="first retry delay; then doubled")
    poll_s: float = Field(1.0, gt=0, description="longest wait between polls of an empty queue")


class CatalogSettings(BaseModel):
    """Documents, jobs and the caption cache: SQLite by default, PostgreSQL for several
    machines."""

    url: str | None = Field(
        None,
        description="SQLAlchemy URL, e.g. postgresql+psycopg://user:pw@host/db; unset = "
        "data_dir/catalog.sqlite3",
    )


class BlobSettings(BaseModel):
    """Originals, uploads, extracted images and page renders."""

    root: Path | None = Field(
        None, description="a folder (a shared volume for several machines); unset = data_dir"
    )


class Settings(BaseSettings):
    """The root of the settings tree."""

    model_config = SettingsConfigDict(
        env_prefix="MMRAG_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    data_dir: Path = Field(Path("~/.mmrag"), description="embedded store, originals, images")
    profile: Literal["auto", "default", "offline"] = Field(
        "auto", description="offline swaps hub models for local ones; auto detects the hub"
    )
    text_embedder: TextEmbedderSettings = TextEmbedderSettings()
    image_embedder: ImageEmbedderSettings = ImageEmbedderSettings()
    page_embedder: PageEmbedderSettings = PageEmbedderSettings()
    reranker: RerankerSettings = RerankerSettings()
    sparse: SparseSettings = SparseSettings()
    captioner: CaptionerSettings = CaptionerSettings()
    parsing: ParsingSettings = ParsingSettings()
    store: StoreSettings = StoreSettings()
    ingest: IngestSettings = IngestSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    answerer: AnswererSettings = AnswererSettings()
    api: ApiSettings = ApiSettings()
    queue: QueueSettings = QueueSettings()
    catalog: CatalogSettings = CatalogSettings()
    blobs: BlobSettings = BlobSettings()

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def qdrant_path(self) -> Path:
        return self.data_dir / "qdrant"

    @property
    def catalog_url(self) -> str:
        return self.catalog.url or f"sqlite:///{self.data_dir / 'catalog.sqlite3'}"

    @property
    def blob_root(self) -> Path:
        return (self.blobs.root or self.data_dir).expanduser()

    @property
    def queue_path(self) -> Path:
        """The embedded queue's SQLite file (when queue.url is unset)."""
        return self.data_dir / "queue.sqlite3"


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings tree: overrides > MMRAG_* env > TOML file > defaults."""
    if config_file is None:
        try:
            return Settings(**overrides)
        except ValueError as exc:
            raise ConfigError(f"invalid settings: {exc}") from exc
    if not config_file.is_file():
        raise ConfigError(f"config file {config_file} does not exist")
    file_settings = type(
        "FileSettings",
        (Settings,),
        {"model_config": {**Settings.model_config, "toml_file": config_file}},
    )
    try:
        return Settings.model_validate(file_settings(**overrides).model_dump())
    except ValueError as exc:
        raise ConfigError(f"invalid settings in {config_file}: {exc}") from exc
