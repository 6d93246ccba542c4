"""An image's command lines as local processes: its ENV mapped onto this checkout and virtual environment.

Inside the images the virtual environment is ``/opt/sergeant`` and user code goes
to ``/app`` (the WORKDIR, on PYTHONPATH); here they are this venv and the
repository root, which holds the ``tests.workers`` modules.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.docker.dockerfile import env, final_stage, healthcheck

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
IMAGE_VENV_BIN = '/opt/sergeant/bin'


def container_env(dockerfile: Path, app: Path = REPO, **overrides: str) -> dict[str, str]:
    """The variables a container of the image starts with, ``overrides`` as ``docker run -e`` gives them;
    ``app`` is the folder standing for the image's /app."""
    variables = env(dockerfile)
    assert variables['PATH'] == f'{IMAGE_VENV_BIN}:$PATH', 'the image puts its venv first on PATH'
    variables['PATH'] = f'{VENV_BIN}:{os.environ["PATH"]}'
    if 'PYTHONPATH' in variables:
        assert variables['PYTHONPATH'] == final_stage(dockerfile).last('WORKDIR')
        variables['PYTHONPATH'] = str(app)
    return variables | overrides


def run_healthcheck(dockerfile: Path, variables: dict[str, str]) -> int:
    """Run the image's HEALTHCHECK command with the container's variables; its exit code."""
    options, command = healthcheck(dockerfile)
    timeout = float(options['timeout'].removesuffix('s'))
    base = {key: value for key, value in os.environ.items() if not key.startswith('SERGEANT_')}
    try:
        return subprocess.run(command, env=base | variables, capture_output=True, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        return 1  # Docker counts a timed-out check as a failure
