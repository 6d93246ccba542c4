# syntax=docker/dockerfile:1
# sergeant-operator: deploys SergeantWorker pools and scales them from their queues' length.
#
#   docker build -f docker/operator.Dockerfile -t sergeant-operator .
#   docker run sergeant-operator --namespace all     # in a cluster; or mount a kubeconfig, --kubeconfig PATH
#
# Installed by the Helm chart (helm/sergeant). /metrics and /healthz are on port 8080: change it with
# SERGEANT_OPERATOR_METRICS_PORT (not the flag), so that HEALTHCHECK follows. SIGTERM releases the Lease.
#
# Build arguments as in worker.Dockerfile: PYTHON_IMAGE, WHEELS (source | prebuilt, with
# `--build-context wheels=DIR`), VERSION and SOURCE_URL.

ARG PYTHON_IMAGE=python:3.13-slim-trixie
ARG WHEELS=source

FROM ${PYTHON_IMAGE} AS wheels-source
WORKDIR /src
COPY pyproject.toml constraints.txt README.md LICENSE ./
COPY sergeant/ sergeant/
COPY operator/ operator/
RUN python -m pip wheel --no-cache-dir --constraint constraints.txt --wheel-dir /wheels '.[operator]'

FROM ${PYTHON_IMAGE} AS wheels-prebuilt
# hadolint ignore=DL3022
COPY --from=wheels . /wheels/

# one of the two stages above, by name (hadolint cannot tell it is a stage)
# hadolint ignore=DL3006
FROM wheels-${WHEELS} AS selected-wheels

# A virtual environment holding sergeant with the operator extra, installed offline from the wheels;
# the operator needs no pip at run time.
FROM ${PYTHON_IMAGE} AS build
COPY --from=selected-wheels /wheels /wheels
RUN python -m venv /opt/sergeant \
    && /opt/sergeant/bin/pip install --no-cache-dir --no-index --find-links /wheels 'sergeant[operator]' \
    && /opt/sergeant/bin/pip uninstall --yes --quiet pip

FROM ${PYTHON_IMAGE}
ARG VERSION=1.0.0a1
ARG SOURCE_URL=https://github.com/Intsights/Sergeant
LABEL org.opencontainers.image.title="sergeant-operator" \
      org.opencontainers.image.description="Kubernetes operator for Sergeant worker pools" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --gid 10001 sergeant \
    && useradd --uid 10001 --gid sergeant --no-log-init --create-home --home-dir /home/sergeant \
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
