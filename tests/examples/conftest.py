"""Fixtures for the examples: each runs as a user would run it, from inside examples/.

``broker`` is where the example's broker is (``SERGEANT_BROKER``): a fresh SQLite file per
test, or the test Redis for the tests that ask for ``any_broker``. ``supervise`` (from the
supervisor tests) starts the workers as real supervisor processes and kills whatever is
left at teardown; ``run_example`` runs an example's ``main()`` beside them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.supervisor.conftest import any_settings, local_settings, supervise  # noqa: F401

EXAMPLES = Path(__file__).resolve().parents[2] / 'examples'

RunExample = Callable[..., subprocess.CompletedProcess[str]]


def broker_of(settings: dict[str, Any]) -> str:
    params = settings['params']
    return str(params['url'] if 'url' in params else params['file_path'])


@pytest.fixture
def broker(local_settings: dict[str, Any]) -> str:  # noqa: F811
    return broker_of(local_settings)


@pytest.fixture
def any_broker(any_settings: dict[str, Any]) -> str:  # noqa: F811
    return broker_of(any_settings)


def example_env(broker: str) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith('SERGEANT_')}
    return environment | {'SERGEANT_BROKER': broker, 'PYTHONUNBUFFERED': '1'}


def run_example(
    name: str, broker: str, *arguments: str, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    """``python examples/<name>.py ARGUMENTS`` from inside examples/, as the docs say to run it."""
    return subprocess.run(
        [sys.executable, f'{name}.py', *arguments],
        cwd=EXAMPLES,
        env=example_env(broker),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
