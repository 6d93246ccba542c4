"""Tasks to payload bytes and back, on top of one connector.

The wire form of a task is ``[kwargs, trace_id, date, run_count]`` passed through
the encoder. A payload that cannot be decoded (corrupt, foreign or wrongly signed)
never reaches user code: the broker moves it to the dead-letter queue with the
reason and reports it to the caller.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Sequence
from typing import Any

from .connector import Connector, DeadLetter, Lock, Priority
from .encoder import Encoder
from .errors import EncodingError
from .objects import Task


@dataclasses.dataclass(slots=True)
class LeasedTask:
    """A decoded task and the receipt of the delivery that brought it."""

    task: Task
    receipt: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class DeadTask:
    """A dead letter; ``task`` is None when its payload cannot be decoded."""

    task: Task | None
    payload: bytes
    reason: str
    failed_at: float


@dataclasses.dataclass(slots=True)
class Popped:
    tasks: list[LeasedTask]
    dead_lettered: list[DeadLetter]


class Broker:
    """Pushes, pops and dead-letters Tasks on a connector, through an encoder."""

    def __init__(self, connector: Connector, encoder: Encoder) -> None:
        self.connector = connector
        self.encoder = encoder

    # -- encoding ----------------------------------------------------------------

    def encode_task(self, task: Task) -> bytes:
        return self.encoder.encode([task.kwargs, task.trace_id, task.date, task.run_count])

    def decode_task(self, payload: bytes) -> Task:
        fields = self.encoder.decode(payload)
        if not isinstance(fields, (list, tuple)) or len(fields) != 4 or not isinstance(fields[0], dict):
            raise EncodingError('payload is not a Sergeant task')
        kwargs, trace_id, date, run_count = fields
        return Task(kwargs=kwargs, trace_id=trace_id, date=date, run_count=run_count)

    # -- queue operations --------------------------------------------------------

    def push_tasks(
        self,
        queue: str,
        tasks: Iterable[Task],
        priority: Priority = 'NORMAL',
        consumable_from: float | None = None,
    ) -> int:
        payloads = [self.encode_task(task) for task in tasks]
        if not payloads:
            return 0
        return self.connector.push(queue, payloads, priority, consumable_from)

    def pop_tasks(
        self,
        queue: str,
        count: int,
        lease_seconds: float | None,
        ack: Sequence[bytes] = (),
    ) -> Popped:
        """Pop and decode; undecodable payloads go to the dead-letter queue with the reason."""
        messages = self.connector.pop(queue, count, lease_seconds, ack)
        popped = Popped([], [])
        dead_receipts: list[bytes] = []
        for message in messages:
            try:
                task = self.decode_task(message.payload)
            except EncodingError as error:
                popped.dead_lettered.append(DeadLetter(message.payload, f'undecodable payload: {error}'))
                dead_receipts.append(message.receipt)
                continue
            task.run_count += message.delivery_count - 1
            popped.tasks.append(LeasedTask(task, message.receipt))
        if popped.dead_lettered:
            self.connector.dead_letter(queue, popped.dead_lettered, dead_receipts)
        return popped

    def retry(self, queue: str, task: Task, priority: Priority, consumable_from: float | None) -> None:
        retried = dataclasses.replace(task, run_count=task.run_count + 1)
        self.push_tasks(queue, [retried], priority, consumable_from)

    def dead_letter_task(self, queue: str, task: Task, reason: str, receipts: Sequence[bytes] = ()) -> None:
        letter = DeadLetter(self.encode_task(task), reason, time.time())
        self.connector.dead_letter(queue, [letter], receipts)

    # -- dead letters ------------------------------------------------------------

    def dead_tasks(self, queue: str, count: int = 100) -> list[DeadTask]:
        found = []
        for letter in self.connector.dead_letters(queue, count):
            try:
                task: Task | None = self.decode_task(letter.payload)
            except EncodingError:
                task = None
            found.append(DeadTask(task, letter.payload, letter.reason, letter.failed_at))
        return found

    # -- keys and locks ------------------------------------------------------------

    def set_key(self, key: str, value: Any) -> bool:
        return self.connector.key_set(key, self.encoder.encode(value))

    def get_key(self, key: str) -> Any:
        data = self.connector.key_get(key)
        return None if data is None else self.encoder.decode(data)

    def delete_key(self, key: str) -> bool:
        return self.connector.key_delete(key)

    def lock(self, name: str) -> Lock:
        return self.connector.lock(name)
