"""The ``sergeant`` entry point on a terminal: the confirmation question and the progress bar.

The command runs under a pseudo-terminal (stdin, stdout and stderr), as an operator runs it.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time
from pathlib import Path

from sergeant.connector import DeadLetter, create_connector

from .conftest import REPO_ROOT

ENTRY_POINT = str(Path(sys.executable).parent / 'sergeant')


def run_on_terminal(*arguments: str, answer: bytes = b'') -> tuple[int, str]:
    """Run the ``sergeant`` script on a pseudo-terminal, type ``answer``; its exit code and what it wrote."""
    leader, follower = pty.openpty()
    environment = {key: value for key, value in os.environ.items() if not key.startswith('SERGEANT_')}
    process = subprocess.Popen(
        [ENTRY_POINT, *arguments],
        cwd=REPO_ROOT,
        env=environment,
        stdin=follower,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    if answer:
        time.sleep(0.5)
        os.write(leader, answer)
    written = b''
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the process ended
            break
        if not chunk:
            break
        written += chunk
    os.close(leader)
    return process.wait(timeout=30), written.decode(errors='replace')


def test_purge_asks_on_a_terminal_and_goes_on_when_told_yes(tmp_path: Path) -> None:
    path = str(tmp_path / 'broker.sqlite3')
    connector = create_connector('local', {'file_path': path})
    connector.push('emails', [b'a', b'b'])

    declined, asked = run_on_terminal('purge', 'emails', '--broker', path, answer=b'n\n')
    accepted, _ = run_on_terminal('purge', 'emails', '--broker', path, answer=b'y\n')

    assert declined == 5 and 'Delete the 2 waiting and 0 in-flight tasks of emails' in asked
    assert accepted == 0
    assert connector.length('emails', include_delayed=True) == 0
    connector.close()


def test_requeue_draws_a_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    path = str(tmp_path / 'broker.sqlite3')
    connector = create_connector('local', {'file_path': path})
    connector.dead_letter('emails', [DeadLetter(b'p%d' % i, 'failed') for i in range(3000)])

    code, written = run_on_terminal(
        'dlq', 'requeue', 'emails', '--all', '--batch-size', '100', '--broker', path
    )

    assert code == 0
    assert 'requeueing emails' in written and 'requeued 3000 dead letters of emails' in written
    assert connector.length('emails') == 3000
    connector.close()
