"""The supervisor reaps every child, orphans adopted from its workers included — also as PID 1."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.supervisor.conftest import Supervise, broker_for, push_ids, wait_until


def zombies_of(pid: int) -> list[int]:
    found = []
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []
    for child in children:
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                found.append(child.pid)
        except psutil.Error:
            continue
    return found


def orphan_pids(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='adopting orphans needs Linux')
def test_orphans_of_workers_are_reaped(
    supervise: Supervise, local_settings: dict[str, Any], tmp_path: Path
) -> None:
    # given workers that each leave a grandchild behind, living 1 s, then respawn
    push_ids(broker_for(local_settings), range(3))
    orphans = tmp_path / 'orphans.txt'

    # when they are supervised
    run = supervise('supervised_orphans', 'OrphansWorker', env={'TEST_ORPHANS': str(orphans)})

    # then the supervisor adopts the grandchildren and reaps them: no zombie stays behind
    wait_until(lambda: len(run.records()) == 3, 60, '3 processed tasks')
    wait_until(lambda: not any(psutil.pid_exists(pid) for pid in orphan_pids(orphans)), 30, 'orphans reaped')
    assert len(orphan_pids(orphans)) == 3
    assert zombies_of(run.pid) == []
    run.send(signal.SIGTERM)
    assert run.wait() == 0


def unshare_works() -> bool:
    if shutil.which('unshare') is None:
        return False
    probe = subprocess.run(['unshare', '--pid', '--fork', '--mount-proc', 'true'], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not unshare_works(), reason='needs unshare and the right to make a PID namespace')
def test_supervisor_as_pid_1_reaps_orphans_and_drains_on_sigterm(
    local_settings: dict[str, Any], tmp_path: Path
) -> None:
    # given the supervisor running as PID 1 of a new PID namespace, like in a container
    push_ids(broker_for(local_settings), range(3))
    orphans, output, log_path = tmp_path / 'orphans.txt', tmp_path / 'out.txt', tmp_path / 'log.txt'
    environment = dict(
        os.environ,
        TEST_CONNECTOR=json.dumps(local_settings),
        TEST_QUEUE='supervised',
        TEST_OUTPUT=str(output),
        TEST_ORPHANS=str(orphans),
    )
    command = ['unshare', '--pid', '--fork', '--mount-proc', '--kill-child=SIGKILL', sys.executable]
    command += ['-m', 'sergeant.supervisor', '--worker-module', 'tests.workers.supervised_orphans']
    command += ['--worker-class', 'OrphansWorker', '--concurrent-workers', '2']
    with log_path.open('wb') as log:
        unshare = subprocess.Popen(
            command, cwd=Path(__file__).resolve().parents[2], env=environment, stdout=log, stderr=log
        )
    try:
        wait_until(lambda: len(psutil.Process(unshare.pid).children()) == 1, 30, 'the supervisor to start')
        supervisor = psutil.Process(unshare.pid).children()[0].pid

        # when workers leave orphans behind
        wait_until(lambda: len(orphan_pids(orphans)) == 3, 60, 'three orphans')
        time.sleep(2)  # each orphan lives 1 s

        # then PID 1 has reaped them all, and SIGTERM stops it cleanly
        assert zombies_of(supervisor) == []
        assert 'adopts orphans: yes' in log_path.read_text()
        os.kill(supervisor, signal.SIGTERM)
        assert unshare.wait(60) == 0, log_path.read_text()
        assert 'supervisor exiting: OK (0)' in log_path.read_text()
    finally:
        unshare.kill()  # --kill-child takes the namespace down with it
        unshare.wait(30)
