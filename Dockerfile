# mmrag: API server and ingest worker. CPU by default; for NVIDIA GPUs build with
#   --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu124
FROM python:3.11-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends tesseract-ocr poppler-utils \
    && rm -rf /var/lib/apt/lists/*

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
WORKDIR /app
COPY pyproject.toml README.md ./
COPY mmrag mmrag
COPY ingest ingest
COPY api api
COPY eval eval
RUN pip install --no-cache-dir --extra-index-url "$TORCH_INDEX" . \
    && useradd --create-home mmrag
USER mmrag
ENV MMRAG_DATA_DIR=/data MMRAG_API__HOST=0.0.0.0 HF_HOME=/models
VOLUME ["/data", "/models"]
EXPOSE 8000
CMD ["mmrag", "serve"]
