"""Fixtures of the image tests: a real Redis, and the images built once per session.

``images`` builds sergeant-worker and sergeant-operator with scripts/images.sh
(what ``make images`` runs) unless they are up to date with the sources, once per
session, and fails with the script's output if podman cannot build them here.
``helm`` and the API server fixtures (``kube_api``, ``kube_client``,
``kube_namespace``) come from tests/helm and tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.docker.podman import build_images
from tests.helm.conftest import helm  # noqa: F401 - fixtures
from tests.servers.redis import running_redis


@pytest.fixture
def redis_settings(tmp_path: Path) -> Iterator[dict[str, Any]]:
    with running_redis(tmp_path / 'redis') as server:
        yield {'type': 'redis', 'params': {'url': server.url}}


@pytest.fixture(scope='session')
def images() -> None:
    build_images()
