# The translation service: CPU torch, run folders (made by `translate train`) mounted read-only at /models.
#   docker build -t translate:0.1.0 .
#   docker run -p 8000:8000 -v "$PWD/runs:/models:ro" translate:0.1.0
# Runs as uid 10001 (numeric, so Kubernetes' runAsNonRoot can verify it). TRANSLATE_* variables configure the
# service (service/settings.py), e.g. -e TRANSLATE_PORT=9000 -e TRANSLATE_WORKERS=2. No compiler, no pip cache:
# every dependency comes as a wheel. scripts/container_smoke.sh builds it and checks it (podman, no registry needed).
ARG PYTHON_IMAGE=python:3.11-slim

# The project as a wheel, so the final image holds neither its source tree nor setuptools' build/ and egg-info.
FROM ${PYTHON_IMAGE} AS wheel
# Optional, unset by default and never kept in the image: a CA bundle for a TLS-intercepting proxy, a folder of
# wheels to prefer (pip's own variables; scripts/container_smoke.sh passes both, mounting the files with podman).
ARG PIP_CERT
ARG PIP_FIND_LINKS
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
COPY pyproject.toml README.md /src/
COPY translate /src/translate
COPY service /src/service
RUN pip wheel --no-deps --wheel-dir /wheels /src

FROM ${PYTHON_IMAGE}
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG PIP_CERT
ARG PIP_FIND_LINKS
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 TRANSLATE_HOST=0.0.0.0 TRANSLATE_PORT=8000

RUN groupadd --gid 10001 app && useradd --uid 10001 --gid 10001 --create-home --shell /usr/sbin/nologin app \
 && mkdir /models
# torch first, from the CPU-only index: the default wheel pulls in gigabytes of CUDA libraries the image never uses.
RUN pip install --index-url "$TORCH_INDEX" "torch==$TORCH_VERSION"
# The dependencies next, read from pyproject.toml alone: editing the code then rebuilds only the last layer.
COPY pyproject.toml /tmp/pyproject.toml
RUN python -c "import tomllib; p = tomllib.load(open('/tmp/pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['ct2']))" > /tmp/requirements.txt \
 && pip install --requirement /tmp/requirements.txt && rm /tmp/pyproject.toml /tmp/requirements.txt
# The project itself, non-editable, with CTranslate2 (the optional engine: `--engine ctranslate2`).
COPY --from=wheel /wheels /tmp/wheels
RUN pip install "$(echo /tmp/wheels/translate-*.whl)[ct2]" && rm -rf /tmp/wheels

USER 10001:10001
WORKDIR /home/app
VOLUME ["/models"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD ["python", "-c", \
  "import os, sys, urllib.request; port = os.environ.get('TRANSLATE_PORT', '8000'); \
sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/health', timeout=4).status != 200)"]
# Host and port come from TRANSLATE_HOST / TRANSLATE_PORT above, so the health check follows a changed port.
CMD ["translate", "serve", "--models", "/models"]
