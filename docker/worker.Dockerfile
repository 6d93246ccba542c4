# syntax=docker/dockerfile:1
# sergeant-worker: the Sergeant supervisor as the container's main process.
#
#   docker build -f docker/worker.Dockerfile -t sergeant-worker .
#   docker run sergeant-worker --worker-module app.workers --worker-class Crawler
#   docker run -e SERGEANT_WORKER_MODULE=app.workers -e SERGEANT_WORKER_CLASS=Crawler sergeant-worker
#
# Your workers: an image FROM sergeant-worker with your package copied into /app (on PYTHONPATH):
#
#   FROM sergeant-worker
#   USER root
#   COPY requirements.txt /tmp/requirements.txt
#   RUN pip install --no-cache-dir -r /tmp/requirements.txt && rm /tmp/requirements.txt
#   COPY app/ /app/app/
#   USER 10001
#
# The supervisor is PID 1: it reaps orphans and drains on SIGTERM (`docker stop -t 30`, since the drain
# lasts up to --drain-timeout, 20 s by default). /metrics, /healthz and /readyz are on port 9808: change
# it with SERGEANT_METRICS_PORT (not the flag), so that HEALTHCHECK follows.
#
# Build arguments: PYTHON_IMAGE, the base; WHEELS=source (default) builds the wheels from this context
# (network needed), WHEELS=prebuilt installs them offline from the build context `wheels`
# (`--build-context wheels=DIR`, a folder holding the sergeant wheel and every dependency's: what
# `make images` passes); VERSION and SOURCE_URL fill the OCI labels. podman 4.3 (buildah 1.28) picks
# the wheels stage only from an argument given on its command line: add `--build-arg WHEELS=source`.

ARG PYTHON_IMAGE=python:3.13-slim-trixie
ARG WHEELS=source

FROM ${PYTHON_IMAGE} AS wheels-source
WORKDIR /src
COPY pyproject.toml constraints.txt README.md LICENSE ./
COPY sergeant/ sergeant/
COPY operator/ operator/
RUN python -m pip wheel --no-cache-dir --constraint constraints.txt --wheel-dir /wheels .

FROM ${PYTHON_IMAGE} AS wheels-prebuilt
# hadolint ignore=DL3022
COPY --from=wheels . /wheels/

# one of the two stages above, by name (hadolint cannot tell it is a stage)
# hadolint ignore=DL3006
FROM wheels-${WHEELS} AS selected-wheels

# A virtual environment holding sergeant and its dependencies, installed offline from the wheels
# (it keeps pip, so that images FROM sergeant-worker can `pip install` their own requirements).
FROM ${PYTHON_IMAGE} AS build
COPY --from=selected-wheels /wheels /wheels
RUN python -m venv /opt/sergeant \
    && /opt/sergeant/bin/pip install --no-cache-dir --no-index --find-links /wheels sergeant

FROM ${PYTHON_IMAGE}
ARG VERSION=1.0.0a1
ARG SOURCE_URL=https://github.com/Intsights/Sergeant
LABEL org.opencontainers.image.title="sergeant-worker" \
      org.opencontainers.image.description="Sergeant task queue worker supervisor" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --gid 10001 sergeant \
    && useradd --uid 10001 --gid sergeant --no-log-init --create-home --home-dir /home/sergeant \
        --shell /usr/sbin/nologin sergeant
COPY --from=build /opt/sergeant /opt/sergeant
WORKDIR /app
ENV PATH=/opt/sergeant/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SERGEANT_METRICS_PORT=9808
USER 10001:10001
EXPOSE 9808
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; r.urlopen('http://127.0.0.1:%s/healthz' % os.environ['SERGEANT_METRICS_PORT'], timeout=4)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["sergeant", "supervise"]
