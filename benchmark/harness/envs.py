"""The Python interpreters the benchmark drivers and the compatibility tests run in.

Ours is the project venv (the library is installed there in editable mode).
Sergeant 0.27.0 has the same import name, so it gets its own virtual environment,
built on first use from ``benchmark/requirements-sergeant027.txt`` and shared by
``benchmark/run.py`` and ``tests/compat`` (which imports this module).

The environment lives outside the clone, so a fresh clone (CI checks the
repository out anew for every run) reuses it::

    ${SERGEANT_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/sergeant}/venvs/sergeant027-<hash>

``<hash>`` is the start of the SHA-256 of the requirements file: changing a pin
builds a new environment next to the old one. A build happens in a temporary
directory beside the final one, holding a lock file, and is renamed into place
only once pip has finished: two runs starting together build it once, and an
interrupted build leaves no environment that looks usable (its leftovers are
removed by the next build).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

BENCHMARK_DIR = Path(__file__).resolve().parent.parent
REQUIREMENTS_027 = BENCHMARK_DIR / 'requirements-sergeant027.txt'
HASH_LENGTH = 16  # hex digits of the requirements' SHA-256 in the directory name
COMPLETE_MARKER = '.complete'  # written inside the build directory just before it is renamed into place


def ours_python() -> Path:
    """The interpreter of the project venv (the one running this benchmark)."""
    return Path(sys.executable)


def cache_dir() -> Path:
    """``$SERGEANT_CACHE_DIR``, else ``$XDG_CACHE_HOME/sergeant``, else ``~/.cache/sergeant``."""
    explicit = os.environ.get('SERGEANT_CACHE_DIR', '').strip()
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get('XDG_CACHE_HOME', '').strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / '.cache') / 'sergeant'


def fingerprint(requirements: Path) -> str:
    return hashlib.sha256(requirements.read_bytes()).hexdigest()[:HASH_LENGTH]


def venv_dir(name: str, requirements: Path) -> Path:
    """Where the environment ``name`` built from ``requirements`` lives (whether built or not)."""
    return cache_dir() / 'venvs' / f'{name}-{fingerprint(requirements)}'


def sergeant027_python() -> Path:
    """The interpreter of the 0.27.0 environment, building the environment when needed."""
    return ensure_venv('sergeant027', REQUIREMENTS_027) / 'bin' / 'python'


def ensure_venv(name: str, requirements: Path) -> Path:
    """The directory of a complete virtual environment with ``requirements`` installed."""
    final = venv_dir(name, requirements)
    if _is_complete(final):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(final.parent / f'.{final.name}.lock'):
        if _is_complete(final):  # another run built it while this one waited for the lock
            return final
        _remove_leftovers(final)
        build = Path(tempfile.mkdtemp(prefix=f'.{final.name}.build-', dir=final.parent))
        try:
            os.chmod(build, 0o755)  # mkdtemp's 0700 would follow the directory into place
            print(f'building {final} (first use only)...', file=sys.stderr, flush=True)
            _build(build, requirements)
            (build / COMPLETE_MARKER).write_text(f'{fingerprint(requirements)}\n{sys.version}\n')
            os.rename(build, final)
        finally:
            shutil.rmtree(build, ignore_errors=True)  # gone already when the rename succeeded
    return final


def _is_complete(env_dir: Path) -> bool:
    # bin/python is a symlink to the base interpreter: a removed or upgraded base breaks it
    return (env_dir / COMPLETE_MARKER).is_file() and (env_dir / 'bin' / 'python').exists()


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    with lock_path.open('a') as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)  # released when the file is closed, even by a killed process
        yield


def _remove_leftovers(final: Path) -> None:
    """Partial builds of interrupted runs, and a broken environment at the final path (lock held)."""
    for leftover in final.parent.glob(f'.{final.name}.build-*'):
        shutil.rmtree(leftover, ignore_errors=True)
    if final.exists() or final.is_symlink():
        broken = Path(tempfile.mkdtemp(prefix=f'.{final.name}.build-broken-', dir=final.parent))
        os.rename(final, broken / final.name)
        shutil.rmtree(broken, ignore_errors=True)


def _build(env_dir: Path, requirements: Path) -> None:
    subprocess.run([sys.executable, '-m', 'venv', str(env_dir)], check=True)
    pip = [str(env_dir / 'bin' / 'python'), '-m', 'pip', '--disable-pip-version-check', '--quiet']
    subprocess.run([*pip, 'install', '--requirement', str(requirements)], check=True)
