"""The Python interpreters the drivers run in.

Ours is the project venv (the library is installed there in editable mode).
Sergeant 0.27.0 has the same import name, so it gets its own virtual environment
under ``benchmark/.envs/sergeant027/``, built on first use from
``benchmark/requirements-sergeant027.txt`` and reused while that file is unchanged.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

BENCHMARK_DIR = Path(__file__).resolve().parent.parent
ENVS_DIR = BENCHMARK_DIR / '.envs'
REQUIREMENTS_027 = BENCHMARK_DIR / 'requirements-sergeant027.txt'


def ours_python() -> Path:
    """The interpreter of the project venv (the one running this benchmark)."""
    return Path(sys.executable)


def _fingerprint(requirements: Path) -> str:
    return hashlib.sha256(requirements.read_bytes()).hexdigest()


def _build(env_dir: Path, requirements: Path) -> None:
    print(f'creating {env_dir} (first run only)...', file=sys.stderr, flush=True)
    subprocess.run([sys.executable, '-m', 'venv', '--clear', str(env_dir)], check=True)
    pip = [str(env_dir / 'bin' / 'python'), '-m', 'pip', '--disable-pip-version-check', '--quiet']
    subprocess.run([*pip, 'install', '--requirement', str(requirements)], check=True)


def sergeant027_python() -> Path:
    """The interpreter of the 0.27.0 environment, creating the environment when needed."""
    env_dir = ENVS_DIR / 'sergeant027'
    marker = env_dir / '.requirements.sha256'
    wanted = _fingerprint(REQUIREMENTS_027)
    if not marker.exists() or marker.read_text().strip() != wanted:
        _build(env_dir, REQUIREMENTS_027)
        marker.write_text(wanted + '\n')
    return env_dir / 'bin' / 'python'
