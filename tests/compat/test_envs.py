"""The builder of Sergeant 0.27's environment (``benchmark/harness/envs.py``), without pip.

The real build (``_build``) is replaced by one that only lays out ``bin/python``, so these
tests check where environments go and that building is atomic and done once.
"""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import pytest

from benchmark.harness import envs


class FakeBuild:
    """Stands in for venv + pip: counts builds, may take a while or fail half way."""

    def __init__(self, seconds: float = 0.0, fail: bool = False) -> None:
        self.seconds = seconds
        self.fail = fail
        self.calls = 0

    def __call__(self, env_dir: Path, requirements: Path) -> None:
        self.calls += 1
        (env_dir / 'bin').mkdir()
        (env_dir / 'half-installed').write_text('')
        time.sleep(self.seconds)
        if self.fail:
            raise KeyboardInterrupt  # an interrupted pip install
        (env_dir / 'bin' / 'python').write_text('')


@pytest.fixture
def requirements(tmp_path: Path) -> Path:
    path = tmp_path / 'requirements.txt'
    path.write_text('sergeant==0.27.0\n')
    return path


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / 'cache'
    monkeypatch.setenv('SERGEANT_CACHE_DIR', str(directory))
    return directory


def test_the_cache_directory_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # given: no variable, then XDG_CACHE_HOME, then SERGEANT_CACHE_DIR as well
    monkeypatch.delenv('SERGEANT_CACHE_DIR', raising=False)
    monkeypatch.delenv('XDG_CACHE_HOME', raising=False)
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    default = envs.cache_dir()
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg'))
    xdg = envs.cache_dir()
    monkeypatch.setenv('SERGEANT_CACHE_DIR', str(tmp_path / 'explicit'))

    # when/then: each wins over the ones before
    assert default == tmp_path / 'home' / '.cache' / 'sergeant'
    assert xdg == tmp_path / 'xdg' / 'sergeant'
    assert envs.cache_dir() == tmp_path / 'explicit'


def test_the_environment_is_named_after_the_requirements(cache: Path, requirements: Path) -> None:
    # given: the requirements file
    # when: its environment's directory is asked for, before and after a change
    before = envs.venv_dir('sergeant027', requirements)
    requirements.write_text('sergeant==0.27.0\nredis==4.6.0\n')
    after = envs.venv_dir('sergeant027', requirements)

    # then: the name carries the start of the file's SHA-256, so a change builds a new environment
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[: envs.HASH_LENGTH]
    assert after == cache / 'venvs' / f'sergeant027-{digest}'
    assert before != after and before.parent == after.parent


def test_an_environment_is_built_once_and_reused(
    cache: Path, requirements: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: no environment yet
    build = FakeBuild()
    monkeypatch.setattr(envs, '_build', build)

    # when: it is asked for twice
    first = envs.ensure_venv('sergeant027', requirements)
    second = envs.ensure_venv('sergeant027', requirements)

    # then: it was built once, renamed into place, and nothing else is left beside it
    assert first == second == envs.venv_dir('sergeant027', requirements)
    assert build.calls == 1
    assert (first / envs.COMPLETE_MARKER).is_file()
    beside = [path.name for path in first.parent.iterdir() if not path.name.endswith('.lock')]
    assert beside == [first.name]


def test_an_interrupted_build_leaves_no_environment(
    cache: Path, requirements: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a build that is interrupted half way
    monkeypatch.setattr(envs, '_build', FakeBuild(fail=True))

    # when: the environment is asked for
    with pytest.raises(KeyboardInterrupt):
        envs.ensure_venv('sergeant027', requirements)

    # then: there is no environment, and no half-built directory either
    final = envs.venv_dir('sergeant027', requirements)
    assert not final.exists()
    assert not [path for path in final.parent.iterdir() if not path.name.endswith('.lock')]


def test_leftovers_and_a_broken_environment_are_replaced(
    cache: Path, requirements: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a killed build's directory, and an environment whose interpreter is gone
    final = envs.venv_dir('sergeant027', requirements)
    final.mkdir(parents=True)
    (final / envs.COMPLETE_MARKER).write_text('')
    leftover = final.parent / f'.{final.name}.build-killed'
    leftover.mkdir()
    build = FakeBuild()
    monkeypatch.setattr(envs, '_build', build)

    # when: the environment is asked for
    built = envs.ensure_venv('sergeant027', requirements)

    # then: it was built again, and the leftover removed
    assert build.calls == 1
    assert (built / 'bin' / 'python').exists()
    assert not leftover.exists()


def test_concurrent_callers_build_once(
    cache: Path, requirements: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a build that takes a while
    build = FakeBuild(seconds=0.3)
    monkeypatch.setattr(envs, '_build', build)
    results: list[Path] = []

    # when: four callers ask for the environment at the same time
    callers = [
        threading.Thread(target=lambda: results.append(envs.ensure_venv('sergeant027', requirements)))
        for _ in range(4)
    ]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()

    # then: one built it, all got it
    assert build.calls == 1
    assert len(results) == 4 and len(set(results)) == 1
