"""Real containers for the image tests: the images built by scripts/images.sh, run with podman.

``build_images`` runs the same script as ``make images`` (it skips images built
from the current sources, so only the first session after a change pays for a
build) and fails with the script's output when podman cannot build or run here.
``Container`` is one ``podman run --detach`` with this machine's settings: runc,
rlimits podman may set, and the host network, so that the container reaches the
test servers on loopback and the host reaches its probe port.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
IMAGES_SCRIPT = REPO / 'scripts' / 'images.sh'
VERSION = re.search(r'^version = "(.+)"$', (REPO / 'pyproject.toml').read_text(), re.MULTILINE)[1]  # type: ignore[index]
WORKER_IMAGE = f'localhost/sergeant-worker:{VERSION}'
OPERATOR_IMAGE = f'localhost/sergeant-operator:{VERSION}'
BASE_IMAGE = 'localhost/python:3.13-slim-trixie'
# what this machine needs (see the Containers section of the README): crun fails on its cgroups, and
# the default rlimits are refused
RUNTIME = ('--runtime', 'runc')
RUN_FLAGS = (*RUNTIME, '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', '--network', 'host')
BUILD_TIMEOUT = 900


def podman(*arguments: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(['podman', *arguments], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f'podman {" ".join(arguments)} exited {result.returncode}:\n{result.stderr}')
    return result


def build_images() -> None:
    """Build both images (and the base stand-in, and podman itself) unless they are up to date."""
    try:
        result = subprocess.run(
            ['bash', str(IMAGES_SCRIPT)], capture_output=True, text=True, timeout=BUILD_TIMEOUT
        )
    except subprocess.TimeoutExpired as error:
        raise AssertionError(f'scripts/images.sh took over {BUILD_TIMEOUT} s') from error
    assert result.returncode == 0, (
        'scripts/images.sh (make images) failed, so the images cannot be tested:\n'
        f'{result.stdout}{result.stderr}'
    )


def build(context: Path, tag: str, dockerfile: str = 'Dockerfile') -> None:
    """``podman build`` of a user's image (docker format, so HEALTHCHECK is kept), no network."""
    podman(
        'build', '--quiet', '--format', 'docker', *RUNTIME, '--network', 'none', '--pull=never',
        '--file', str(context / dockerfile), '--tag', tag, str(context),
        timeout=BUILD_TIMEOUT,
    )  # fmt: skip


def inspect_image(image: str) -> dict[str, Any]:
    [found] = json.loads(podman('image', 'inspect', image).stdout)
    assert isinstance(found, dict)
    return found


def run(
    image: str, *arguments: str, flags: Sequence[str] = (), timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``podman run --rm`` to its end: its exit code and output."""
    return podman('run', '--rm', *RUN_FLAGS, *flags, image, *arguments, timeout=timeout, check=False)


@dataclasses.dataclass
class Container:
    name: str

    def logs(self) -> str:
        result = podman('logs', self.name, check=False)
        return result.stdout + result.stderr

    def state(self) -> dict[str, Any]:
        [found] = json.loads(podman('container', 'inspect', self.name).stdout)
        state = found['State']
        assert isinstance(state, dict)
        return state

    def running(self) -> bool:
        return bool(self.state()['Running'])

    def exec(self, *command: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
        flags = ['--user', user] if user is not None else []
        return podman('exec', *flags, self.name, *command, check=False)

    def healthcheck(self) -> int:
        return podman('healthcheck', 'run', self.name, check=False, timeout=30).returncode

    def stop(self, grace_seconds: int) -> tuple[int, float]:
        """``podman stop -t grace_seconds``: the container's exit code, and how long the stop took."""
        started = time.monotonic()
        podman('stop', '--time', str(grace_seconds), self.name, timeout=grace_seconds + 30)
        return int(self.state()['ExitCode']), time.monotonic() - started


@contextlib.contextmanager
def container(image: str, *arguments: str, flags: Sequence[str] = ()) -> Iterator[Container]:
    """A detached container of ``image``, removed (killed if need be) on exit."""
    name = f'sergeant-test-{uuid.uuid4().hex[:12]}'
    podman('run', '--detach', '--name', name, *RUN_FLAGS, *flags, image, *arguments)
    try:
        yield Container(name)
    finally:
        podman('rm', '--force', '--time', '0', name, check=False)


def volume(host: Path, target: str, *, read_only: bool) -> tuple[str, str]:
    return '--volume', f'{host}:{target}' + (':ro' if read_only else '')


def env_flags(variables: dict[str, str]) -> list[str]:
    return [flag for key, value in variables.items() for flag in ('--env', f'{key}={value}')]
