"""docs/architecture.md stays true, and the operator's import of the connectors stays light."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / 'docs' / 'architecture.md'
WORKER_STACK = ('sergeant.worker', 'sergeant.loop', 'sergeant.executor', 'sergeant.killer', 'sergeant.codec')


def named_modules(text: str) -> set[str]:
    return set(re.findall(r'\b(sergeant(?:_operator)?(?:\.[a-z_]+)*)\b', text))


def test_every_module_the_page_names_exists() -> None:
    named = named_modules(DOC.read_text())

    assert {'sergeant.loop.stream', 'sergeant.codec', 'sergeant_operator'} <= named
    missing = sorted(name for name in named if importlib.util.find_spec(name) is None)
    assert missing == []


def test_a_made_up_module_would_be_caught() -> None:
    assert named_modules('see sergeant.loop.nowhere') == {'sergeant.loop.nowhere'}
    assert importlib.util.find_spec('sergeant.loop.nowhere') is None


def test_importing_the_connectors_leaves_the_worker_stack_unloaded() -> None:
    probe = (
        'import sys, sergeant.connector, sergeant.config\n'
        f'print(sorted(m for m in sys.modules if m.startswith({WORKER_STACK!r})))\n'
    )
    loaded = subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True, check=True).stdout

    assert loaded.strip() == '[]'


def test_the_public_names_still_import_from_the_package() -> None:
    import sergeant

    assert sergeant.Worker is importlib.import_module('sergeant.worker').Worker
    assert sergeant.Task is importlib.import_module('sergeant.objects').Task
    assert sergeant.config.WorkerConfig is not None
