# GPU image: the same pyproject.toml as the CPU image. On Linux x86_64 the torch
# wheel from the package index is the CUDA build and carries its CUDA runtime
# libraries, so the host needs only the NVIDIA driver and container toolkit
# (docker run --gpus all, or the device request in deploy/work-pools/docker-gpu.json).
# Build from the repository root: docker build -f docker/gpu.Dockerfile -t marc-batch:gpu .
#
# The same image runs flow runs (Docker and Kubernetes work pools) and the Dask
# and Ray cluster pods of deploy/clusters/, so it has the Ray extra and wget
# (KubeRay's health probes call it). It has no ENTRYPOINT: workers and cluster
# operators supply the command, e.g. docker run marc-batch:gpu marc-batch refresh.
FROM python:3.11-slim
ARG EXTRAS=ray

ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
    NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    MARC_BATCH_HOME=/opt/marc-batch

RUN apt-get update \
    && apt-get install -y --no-install-recommends wget \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/marc-batch
COPY pyproject.toml README.md prefect.yaml ./
COPY marc_batch ./marc_batch
COPY flows ./flows
RUN pip install ".[${EXTRAS}]" \
    && pip install --no-deps "recbole==1.2.1" \
    && python -c "import torch; assert torch.version.cuda, 'expected a CUDA build of torch'"

RUN useradd --create-home --uid 1000 marc
USER marc
WORKDIR /home/marc
CMD ["marc-batch", "--help"]
