# CPU image: the whole service from the same pyproject.toml the tests use.
# Build from the repository root: docker build -f docker/cpu.Dockerfile -t marc-batch:cpu .
# Pass --build-arg PIP_EXTRA_INDEX_URL=<a CPU-only torch wheel index> to keep the
# image small; without it the default (CUDA) torch wheel is used, which also runs on CPU.
# No ENTRYPOINT, so a Prefect worker can run its own command in it:
# docker run marc-batch:cpu marc-batch ingest --dataset ml-100k
FROM python:3.11-slim
ARG PIP_EXTRA_INDEX_URL=

ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
    MARC_BATCH_HOME=/opt/marc-batch

WORKDIR /opt/marc-batch
COPY pyproject.toml README.md prefect.yaml ./
COPY marc_batch ./marc_batch
COPY flows ./flows
RUN pip install . \
    && pip install --no-deps "recbole==1.2.1"

RUN useradd --create-home --uid 1000 marc
USER marc
WORKDIR /home/marc
CMD ["marc-batch", "--help"]
