# GPU image: the same pyproject.toml as the CPU image. On Linux x86_64 the torch
# wheel from the package index is the CUDA build and carries its CUDA runtime
# libraries, so the host needs only the NVIDIA driver and container toolkit
# (docker run --gpus all, or the device request in deploy/work-pools/docker-gpu.json).
# Build from the repository root: docker build -f docker/gpu.Dockerfile -t marc-batch:gpu .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
    NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility

WORKDIR /opt/marc-batch
COPY pyproject.toml README.md ./
COPY marc_batch ./marc_batch
COPY flows ./flows
RUN pip install . \
    && pip install --no-deps "recbole==1.2.1" \
    && python -c "import torch; assert torch.version.cuda, 'expected a CUDA build of torch'"

RUN useradd --create-home --uid 1000 marc
USER marc
WORKDIR /home/marc
ENTRYPOINT ["marc-batch"]
CMD ["--help"]
