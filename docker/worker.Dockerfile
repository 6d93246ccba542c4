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
#   RUN pip install --no-cache-dir -r requirements.txt   # your dependencies, if any
#   COPY app/ /app/app/
#   USER 10001
#
# The supervisor is PID 1: it reaps orphans and drains on SIGTERM (`docker stop -t 30`, since the drain
# lasts up to --drain-timeout, 20 s by default). /metrics, /healthz and /readyz are on port 9808: change
# it with SERGEANT_METRICS_PORT (not the flag), so that HEALTHCHECK follows.

ARG PYTHON_IMAGE=python:3.13-slim-trixie

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md LICENSE ./
COPY sergeant/ sergeant/
COPY operator/ operator/
# The wheel, then a virtual environment holding it and its dependencies at their pinned versions.
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && python -m venv /opt/sergeant \
    && /opt/sergeant/bin/pip install --no-cache-dir --constraint constraints.txt /wheels/sergeant-*.whl

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="sergeant-worker" \
      org.opencontainers.image.description="Sergeant task queue worker supervisor" \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --system --gid 10001 sergeant \
    && useradd --system --uid 10001 --gid sergeant --create-home --home-dir /home/sergeant \
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
