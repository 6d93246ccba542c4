"""Who is to blame when a worker dies running several tasks at once.

A worker process that dies (SIGKILL, a crash, a hard time limit) charges a
delivery to each task it had started, and a task whose deliveries exceed
``max_retries`` is dead-lettered. A threaded worker runs several tasks at a time,
so one killer charges its innocent siblings too. The rule:

* a task charged in a death it shared with other running tasks gets a *shared
  death* noted at the broker (a key named after its payload's digest, holding how
  many such deaths it had);
* when its deliveries exceed ``max_retries`` but would not without the shared
  deaths, it is not dead-lettered: it runs once *alone*, on a worker that runs
  nothing else meanwhile. The note then says so before it starts;
* if it comes back once more after running alone, it killed that worker too:
  now it is dead-lettered. If it ends (however it ends), the note is deleted.

Notes live in the broker's keys (``__sergeant_isolation__:<queue>:<digest>``), so
every worker of the queue sees them. Only tasks delivered again carry one.
"""

from __future__ import annotations

import dataclasses
import hashlib

from ..connector import Connector
from .retries import may_run

_PREFIX = '__sergeant_isolation__'
_SHARED, _ALONE = b'shared', b'alone'


def note_name(queue: str, payload: bytes) -> str:
    """The key of a task's note: the same for every delivery of the same stored payload."""
    return f'{_PREFIX}:{queue}:{hashlib.sha256(payload).hexdigest()[:32]}'


@dataclasses.dataclass(frozen=True)
class Note:
    shared_deaths: int
    ran_alone: bool

    def encode(self) -> bytes:
        return b'%s:%d' % (_ALONE if self.ran_alone else _SHARED, self.shared_deaths)

    @classmethod
    def decode(cls, value: bytes | None) -> Note | None:
        if value is None:
            return None
        kind, _, count = value.partition(b':')
        try:
            return cls(int(count), kind == _ALONE)
        except ValueError:
            return None


def note_shared_death(connector: Connector, queue: str, payload: bytes) -> None:
    """The task with this payload was running when its worker died with others running too."""
    name = note_name(queue, payload)
    note = Note.decode(connector.key_get(name)) or Note(0, False)
    connector.key_set(name, Note(note.shared_deaths + 1, note.ran_alone).encode())


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What to do with a task whose deliveries exceed ``max_retries``."""

    run_alone: bool
    reason: str = ''  # why it is dead-lettered, when it is not run alone


def judge(connector: Connector, name: str, run_count: int, max_retries: int) -> Verdict:
    """Dead-letter the task, or run it alone first (and note that it does, before it starts)."""
    note = Note.decode(connector.key_get(name))
    if note is None:
        return Verdict(False, f'redelivered after its worker died or lost the lease; run_count {run_count}')
    if note.ran_alone:
        connector.key_delete(name)
        return Verdict(False, f'it killed its worker again when run alone; run_count {run_count}')
    if not may_run(run_count - note.shared_deaths, max_retries):
        connector.key_delete(name)
        return Verdict(False, f'its worker died while running it, alone or not; run_count {run_count}')
    connector.key_set(name, Note(note.shared_deaths, ran_alone=True).encode())
    return Verdict(True)
