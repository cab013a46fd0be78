# The translation service: CPU torch, models mounted at /models (run folders made by `translate train`).
#   docker build -t translate .
#   docker run -p 8000:8000 -v "$PWD/runs:/models:ro" translate
FROM python:3.11-slim

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1

RUN useradd --create-home --uid 10001 app
WORKDIR /app
# torch first, from the CPU-only index: the default wheel carries CUDA libraries the image does not need.
RUN pip install --index-url "$TORCH_INDEX" "torch==$TORCH_VERSION"
COPY pyproject.toml README.md ./
COPY translate ./translate
COPY service ./service
RUN pip install .

USER app
VOLUME ["/models"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status != 200)"
CMD ["translate", "serve", "--models", "/models", "--host", "0.0.0.0", "--port", "8000"]
