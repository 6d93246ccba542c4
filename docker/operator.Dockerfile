# syntax=docker/dockerfile:1
# sergeant-operator: deploys SergeantWorker pools and scales them from their queues' length.
#
#   docker build -f docker/operator.Dockerfile -t sergeant-operator .
#   docker run sergeant-operator --namespace all     # in a cluster; or mount a kubeconfig, --kubeconfig PATH
#
# Installed by the Helm chart (helm/sergeant). /metrics and /healthz are on port 8080: change it with
# SERGEANT_OPERATOR_METRICS_PORT (not the flag), so that HEALTHCHECK follows. SIGTERM releases the Lease.

ARG PYTHON_IMAGE=python:3.13-slim-trixie

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md LICENSE ./
COPY sergeant/ sergeant/
COPY operator/ operator/
# The wheel, then a virtual environment holding it with the operator extra, at pinned versions.
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && python -m venv /opt/sergeant \
    && wheel="$(echo /wheels/sergeant-*.whl)" \
    && /opt/sergeant/bin/pip install --no-cache-dir --constraint constraints.txt "${wheel}[operator]"

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="sergeant-operator" \
      org.opencontainers.image.description="Kubernetes operator for Sergeant worker pools" \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --system --gid 10001 sergeant \
    && useradd --system --uid 10001 --gid sergeant --create-home --home-dir /home/sergeant \
        --shell /usr/sbin/nologin sergeant
COPY --from=build /opt/sergeant /opt/sergeant
ENV PATH=/opt/sergeant/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SERGEANT_OPERATOR_METRICS_PORT=8080
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; r.urlopen('http://127.0.0.1:%s/healthz' % os.environ['SERGEANT_OPERATOR_METRICS_PORT'], timeout=4)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["sergeant-operator"]
