# mmrag: the query API (`mmrag serve`) and the ingest worker (`mmrag worker`), one image.
# CPU PyTorch by default; for NVIDIA GPUs build with
#   docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu124 .
# Needs BuildKit (Docker's default builder since 23.0) for the pip cache mounts.

# The dependency list alone, read from pyproject.toml: the install layer below is rebuilt
# when this list changes, not when the version, the tool settings or a source file do.
FROM python:3.11-slim AS requirements
COPY pyproject.toml /
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('/pyproject.toml', 'rb'))['project']['dependencies']))" \
    > /requirements.txt

FROM python:3.11-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends tesseract-ocr poppler-utils \
    && rm -rf /var/lib/apt/lists/*

# A fixed uid, so files on bind mounts and volumes keep one owner across rebuilds. The
# volume mount points exist and belong to that user *before* VOLUME: an empty named volume
# takes the ownership of the image directory it is first mounted on, so the catalog, the
# blobs and the model downloads can be written by the non-root process.
RUN groupadd --gid 1000 mmrag \
    && useradd --uid 1000 --gid 1000 --create-home --shell /usr/sbin/nologin mmrag \
    && mkdir -p /data /models \
    && chown mmrag:mmrag /data /models

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
WORKDIR /app

# Dependencies first (torch and the rest, the slow part), in a layer of their own.
COPY --from=requirements /requirements.txt /tmp/requirements.txt
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --extra-index-url "$TORCH_INDEX" -r /tmp/requirements.txt

# Then the package itself, without touching the dependencies installed above.
COPY pyproject.toml README.md ./
COPY mmrag mmrag
COPY ingest ingest
COPY api api
COPY eval eval
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --no-deps .

USER mmrag
ENV MMRAG_DATA_DIR=/data \
    MMRAG_API__HOST=0.0.0.0 \
    HF_HOME=/models \
    MMRAG_CACHE_DIR=/models/mmrag
VOLUME ["/data", "/models"]
EXPOSE 8000
# No HEALTHCHECK here: workers run this image too and serve no HTTP. docker-compose.yml
# probes the API's /healthz.
CMD ["mmrag", "serve"]
