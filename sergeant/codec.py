"""The task codec: Tasks to payload bytes and back, on top of one connector.

"Broker" in Sergeant means the server (Redis, MongoDB, the embedded SQLite
file), reached through a :mod:`~sergeant.connector`; this layer only turns tasks
into payloads and back on the way.

The wire form of a task is ``(kwargs, trace_id, date, run_count, ready_at)`` passed
through the encoder (a tuple when pickled: it unpickles faster than a list; a list for
the other serializers, which have no tuples of their own). ``ready_at`` is when the push
made it ready to run (its due time when delayed; a retry's own push), for the queue-wait
metric. Payloads without it (written by earlier versions) are read too, as ready at their
``date``.

A payload that cannot be decoded (corrupt, foreign or wrongly signed) never
reaches user code: the codec moves it to the dead-letter queue with the reason
and reports it to the caller.
"""

from __future__ import annotations

import contextlib
import dataclasses
import operator
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .connector import Connector, DeadLetter, Deliveries, FramedPayloads, Lock, PendingPop, Priority
from .encoder import Encoder
from .encoder.serializer import PickleSerializer
from .errors import EncodingError
from .objects import Task


def _task_of(fields: Any) -> Task:
    """The Task of a decoded wire form, its types checked."""
    return _leased_fields(fields)[0]


def _leased_fields(fields: Any) -> tuple[Task, float]:
    """The Task of a decoded wire form and when it became ready, their types checked."""
    if not isinstance(fields, (list, tuple)) or len(fields) not in (4, 5):
        raise EncodingError('payload is not a Sergeant task')
    kwargs, trace_id, date, run_count = fields[:4]
    if not isinstance(kwargs, dict):
        raise EncodingError(f'task field kwargs must be a dict, got {type(kwargs).__name__}')
    if trace_id is not None and not isinstance(trace_id, str):
        raise EncodingError(f'task field trace_id must be a string or null, got {type(trace_id).__name__}')
    if type(date) not in (int, float):
        raise EncodingError(f'task field date must be a number of seconds, got {date!r}'[:200])
    if type(run_count) is not int or run_count < 0:
        raise EncodingError(f'task field run_count must be an integer >= 0, got {run_count!r}'[:200])
    ready_at = fields[4] if len(fields) == 5 else date
    if type(ready_at) not in (int, float):
        raise EncodingError(f'task field ready_at must be a number of seconds, got {ready_at!r}'[:200])
    return Task(kwargs=kwargs, trace_id=trace_id, date=date, run_count=run_count), float(ready_at)


_SEQUENCES = {list, tuple}
_READY_AT = operator.itemgetter(4)


def _decode_error(error: Exception) -> str:
    """The reason for a payload the bare serializer refused, worded as the encoder words it."""
    return f'cannot decode payload: {type(error).__name__}: {error}'


@dataclasses.dataclass(frozen=True, slots=True)
class DeadTask:
    """A dead letter; ``task`` is None when its payload cannot be decoded."""

    task: Task | None
    payload: bytes
    reason: str
    failed_at: float


@dataclasses.dataclass(slots=True)
class Popped:
    """Decoded tasks, with the receipt of each one's delivery and when its push made it ready
    (parallel lists), and the payloads that went to the dead-letter queue instead."""

    tasks: list[Task]
    receipts: list[bytes]
    ready_at: list[float]
    dead_lettered: list[DeadLetter]


class TaskCodec:
    """Pushes, pops and dead-letters Tasks on a connector, through an encoder.

    A worker keeps its codec as ``worker.broker``: Sergeant 0.27's name for it, which its users
    reach (``worker.broker.get_key(name=...)``).
    """

    def __init__(self, connector: Connector, encoder: Encoder) -> None:
        self.connector = connector
        self.encoder = encoder
        self._envelope: Callable[[Iterable[Any]], Sequence[Any]] = (
            tuple if isinstance(encoder.serializer, PickleSerializer) else list
        )

    # -- encoding ----------------------------------------------------------------

    def encode_task(self, task: Task, ready_at: float | None = None) -> bytes:
        """The payload of ``task``, ready at ``ready_at`` (None: its ``date``)."""
        ready = task.date if ready_at is None else ready_at
        fields = (task.kwargs, task.trace_id, task.date, task.run_count, float(ready))
        return self.encoder.encode(self._envelope(fields))

    def decode_task(self, payload: bytes) -> Task:
        return _task_of(self.encoder.decode(payload))

    # -- queue operations --------------------------------------------------------

    def push_tasks(
        self,
        queue: str,
        tasks: Iterable[Task],
        priority: Priority = 'NORMAL',
        consumable_from: float | None = None,
    ) -> int:
        now = time.time()
        ready_at = now if consumable_from is None else max(now, float(consumable_from))
        payloads = [self.encode_task(task, ready_at) for task in tasks]
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
        return self.decode_deliveries(queue, Deliveries.of(messages))

    def decode_deliveries(self, queue: str, deliveries: Deliveries) -> Popped:
        """Decode popped payloads; undecodable ones go to the dead-letter queue with the reason.

        The worker's hot path: no Message objects, the serializer called directly
        when the encoder neither signs nor compresses, and Tasks built positionally.
        """
        loads = self.encoder.plain_loads or self.encoder.decode
        payloads = deliveries.payloads
        if isinstance(payloads, FramedPayloads):  # read in place: no copy of each payload
            decoded = self.encoder.decode_plain_batch(payloads.items, payloads.offset)
        else:
            decoded = self.encoder.decode_plain_batch(payloads)
        if decoded is None:
            try:
                decoded = list(map(loads, deliveries.payloads))
            except Exception:
                return self._decode_one_by_one(queue, deliveries, loads)
        tasks = None
        if set(map(type, decoded)) <= _SEQUENCES:
            with contextlib.suppress(ValueError):  # raised when a task has not five fields
                # exact types, as encode_task writes them (a bool is no number here); inline for speed
                tasks = [
                    Task(kwargs, trace_id, date, run_count)
                    for kwargs, trace_id, date, run_count, ready_at in decoded
                    if type(kwargs) is dict
                    and type(run_count) is int
                    and run_count >= 0
                    and type(ready_at) is float
                    and (type(date) is float or type(date) is int)
                    and (trace_id is None or type(trace_id) is str)
                ]
        if tasks is None or len(tasks) != len(decoded):
            return self._decode_one_by_one(queue, deliveries, loads)
        # the common case: every payload is a well-formed task
        counts = deliveries.delivery_counts
        if counts.count(1) != len(counts):
            for task, delivery_count in zip(tasks, counts, strict=True):
                task.run_count += delivery_count - 1
        return Popped(tasks, deliveries.receipts, list(map(_READY_AT, decoded)), [])

    def _decode_one_by_one(self, queue: str, deliveries: Deliveries, loads: Callable[[bytes], Any]) -> Popped:
        """Decode payloads one at a time, dead-lettering the ones that are not tasks."""
        popped = Popped([], [], [], [])
        dead_receipts: list[bytes] = []
        for payload, receipt, delivery_count in zip(
            deliveries.payloads, deliveries.receipts, deliveries.delivery_counts, strict=True
        ):
            try:
                task, ready_at = _leased_fields(loads(payload))
            except Exception as error:
                reason = str(error) if isinstance(error, EncodingError) else _decode_error(error)
                popped.dead_lettered.append(DeadLetter(payload, f'undecodable payload: {reason}'))
                dead_receipts.append(receipt)
                continue
            task.run_count += delivery_count - 1
            popped.tasks.append(task)
            popped.receipts.append(receipt)
            popped.ready_at.append(ready_at)
        if popped.dead_lettered:
            self.connector.dead_letter(queue, popped.dead_lettered, dead_receipts)
        return popped

    def begin_pop_tasks(
        self,
        queue: str,
        count: int,
        lease_seconds: float | None,
        ack: Sequence[bytes] = (),
    ) -> PendingPop:
        """Send a pop now; decode its answer later with :meth:`decode_deliveries`."""
        return self.connector.begin_pop(queue, count, lease_seconds, ack)

    def retry(self, queue: str, task: Task, priority: Priority, consumable_from: float | None) -> None:
        # in place, as in Sergeant 0.27: on_retry and post_work see the count the retry carries
        task.run_count += 1
        self.push_tasks(queue, [task], priority, consumable_from)

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

    # ``name``, as Sergeant 0.27's broker calls it: its users reach these as worker.broker.*_key(name=...)
    def set_key(self, name: str, value: Any) -> bool:
        return self.connector.key_set(name, self.encoder.encode(value))

    def get_key(self, name: str) -> Any:
        data = self.connector.key_get(name)
        return None if data is None else self.encoder.decode(data)

    def delete_key(self, name: str) -> bool:
        return self.connector.key_delete(name)

    def lock(self, name: str) -> Lock:
        return self.connector.lock(name)
