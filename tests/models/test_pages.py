"""Late-interaction page embedders: tiny ColQwen2 and ColModernVBERT loaded through the
registry as users configure them; multi-vectors, patch grids and pooling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmrag.errors import ModelLoadError
from mmrag.models.base import MultiVector, PageEmbedder, pooled
from mmrag.models.registry import page_embedders
from mmrag.settings import Settings
from mmrag.testing.tiny_retrievers import PAGE_EMBEDDING_DIM

# Wide, tall and square pages of different colours.
WIDE = Image.new("RGB", (80, 60), (200, 30, 30))
TALL = Image.new("RGB", (60, 120), (20, 40, 220))
SQUARE = Image.new("RGB", (64, 64), (10, 200, 10))


def load(model: Path, **settings: object) -> PageEmbedder:
    configured = Settings(page_embedder={"model": str(model), "batch_size": 2, **settings})
    embedder = page_embedders.create(configured.page_embedder.backend, configured)
    assert isinstance(embedder, PageEmbedder)
    return embedder


def assert_unit_rows(multivector: MultiVector) -> None:
    vectors = multivector.vectors
    assert vectors.dtype == np.float32 and vectors.shape[1] == PAGE_EMBEDDING_DIM
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


@pytest.fixture(scope="module")
def colqwen2(tiny_colqwen2: Path) -> PageEmbedder:
    return load(tiny_colqwen2)


@pytest.fixture(scope="module")
def colmodernvbert(tiny_models: Path) -> PageEmbedder:
    return load(tiny_models / "colmodernvbert")


def test_colqwen2_pages_have_the_merged_patch_grid(colqwen2: PageEmbedder) -> None:
    wide, tall = colqwen2.embed_pages([WIDE, TALL])

    # 80x60 resizes to 84x56: 6x4 patches of 14 px, merged 2x2 -> 2 rows x 3 columns.
    assert wide.grid == (2, 3)
    assert tall.grid == (4, 2)  # 56x112: 4x8 patches -> 4 rows x 2 columns
    for page in (wide, tall):
        assert_unit_rows(page)
        assert page.patch_rows is not None
        assert len(set(page.patch_rows.tolist())) == len(page.patch_rows)
    assert colqwen2.dimension == PAGE_EMBEDDING_DIM


def test_colmodernvbert_grid_follows_the_tiles_row_major(colmodernvbert: PageEmbedder) -> None:
    (tall,) = colmodernvbert.embed_pages([TALL])

    # 60x120 -> 64x128: 1 column x 2 rows of 64 px tiles, 2x2 tokens each -> 4x2 grid.
    assert tall.grid == (4, 2)
    assert tall.patch_rows is not None
    rows = tall.patch_rows.reshape(4, 2)
    # Tile 1 holds grid rows 0-1, tile 2 rows 2-3; each tile's tokens run row-major.
    assert rows[0, 1] == rows[0, 0] + 1 and rows[1, 0] == rows[0, 0] + 2
    assert rows[2, 0] > rows[1, 1]
    assert_unit_rows(tall)


def test_colmodernvbert_grid_rows_are_its_tile_tokens(colmodernvbert: PageEmbedder) -> None:
    # A 2x2-tile page: grid rows 0-1 come from tiles 1 and 2, so row 0 reads
    # tile 1's first token row, then tile 2's.
    (square,) = colmodernvbert.embed_pages([SQUARE])

    assert square.grid == (4, 4) and square.patch_rows is not None
    first_row = square.patch_rows[:4]
    assert first_row[1] == first_row[0] + 1 and first_row[3] == first_row[2] + 1
    assert first_row[2] > square.patch_rows[4 + 1]  # tile 2 comes after tile 1's 2nd row


def test_batches_split_and_padding_is_dropped(colqwen2: PageEmbedder) -> None:
    together = colqwen2.embed_pages([WIDE, TALL, SQUARE])  # batch_size 2: two batches
    alone = [colqwen2.embed_pages([image])[0] for image in (WIDE, TALL, SQUARE)]

    for batched, single in zip(together, alone, strict=True):
        # Padding rows would be zero vectors and change the count; none are kept.
        assert batched.vectors.shape == single.vectors.shape
        np.testing.assert_allclose(batched.vectors, single.vectors, atol=1e-2)
        assert batched.grid == single.grid


@pytest.mark.parametrize("name", ["colqwen2", "colmodernvbert"])
def test_queries_are_unit_multivectors_without_grid(
    name: str, request: pytest.FixtureRequest
) -> None:
    embedder: PageEmbedder = request.getfixturevalue(name)

    short, long = embedder.embed_queries(["revenue", "quarterly revenue of the northern grid"])
    one = embedder.embed_query("revenue")

    assert short.grid is None and short.patch_rows is None
    assert long.vectors.shape[0] > short.vectors.shape[0]  # padding dropped
    assert_unit_rows(long)
    np.testing.assert_allclose(one.vectors, short.vectors, atol=1e-2)


def test_patch_box_locates_a_patch_on_the_page() -> None:
    vectors = np.eye(8, 4, dtype=np.float32)[:, :4] + 0.1
    page = MultiVector(vectors, grid=(2, 3), patch_rows=np.arange(2, 8))

    assert page.patch_box(2) == (0.0, 0.0, 1 / 3, 0.5)  # first patch: top left
    assert page.patch_box(7) == (2 / 3, 0.5, 1.0, 1.0)  # last patch: bottom right
    assert page.patch_box(0) is None  # a prompt token
    assert MultiVector(vectors).patch_box(3) is None


def test_multivector_rejects_inconsistent_grids() -> None:
    vectors = np.ones((4, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="together"):
        MultiVector(vectors, grid=(2, 2))
    with pytest.raises(ValueError, match="2x2"):
        MultiVector(vectors, grid=(2, 2), patch_rows=np.arange(3))
    with pytest.raises(ValueError, match="outside"):
        MultiVector(vectors, grid=(2, 2), patch_rows=np.arange(1, 5))


def test_pooled_is_the_unit_mean_of_the_rows() -> None:
    page = MultiVector(np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32))

    np.testing.assert_allclose(pooled(page), [2**-0.5, 2**-0.5], rtol=1e-6)
    assert pooled(page).dtype == np.float32


def test_a_non_retriever_checkpoint_is_a_load_error(tiny_models: Path) -> None:
    with pytest.raises(ModelLoadError, match="colqwen2") as caught:
        load(tiny_models / "siglip")
    assert "page_embedder.model" in str(caught.value)


def test_none_backend_and_unknown_names() -> None:
    settings = Settings(page_embedder={"backend": "none"})
    assert page_embedders.create("none", settings) is None
    assert {"transformers", "none"} <= set(page_embedders.names())


class FakeProcessor:
    """The processor attributes the layouts read."""

    image_token_id = 9
    image_seq_len = 4
    row_col_ids = list(range(100, 136))


def test_square_layout_needs_a_square_number_of_image_tokens() -> None:
    from mmrag.models.pages import square_layout

    ids = np.array([9] * 16 + [1, 2, 3])  # PaliGemma: image tokens first, then the prompt
    layout = square_layout(FakeProcessor(), {}, 0, ids)

    assert layout is not None
    grid, positions = layout
    assert grid == (4, 4) and positions.tolist() == list(range(16))
    assert square_layout(FakeProcessor(), {}, 0, np.array([9] * 15 + [1])) is None


def test_tiled_layout_without_tile_tokens_is_unknown() -> None:
    from mmrag.models.pages import tiled_layout

    class NoTileTokens(FakeProcessor):
        row_col_ids = [0] * 36  # every <row_i_col_j> unknown to the tokenizer

    ids = np.array([1, 100, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9])  # a tile and a global view
    assert tiled_layout(NoTileTokens(), {}, 0, ids) is None
    assert tiled_layout(FakeProcessor(), {}, 0, ids[:6]) is None  # tile without global view
