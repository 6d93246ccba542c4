"""The pool's metrics book and the collector: live and ended workers add up, never backwards."""

from __future__ import annotations

import os
import types
from typing import Any, cast

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from sergeant.metrics import DURATION_BUCKETS, TaskSnapshot
from sergeant.observability.collector import FAMILIES, SergeantCollector
from sergeant.observability.pool_metrics import PoolMetrics
from sergeant.supervisor.process import RESPAWN_REASONS, EndReason, WorkerProcess
from sergeant.supervisor.protocol import Event, encode_message

BROKER = {'queue': 'crawl', 'connector': {'type': 'local', 'params': {'file_path': 'x.sqlite3'}}}


def metrics_message(success: int, in_flight: int = 0) -> bytes:
    counts = [success] + [0] * len(DURATION_BUCKETS)
    snapshot = TaskSnapshot('crawl', {'success': success}, tuple(counts), success * 0.01, in_flight)
    return encode_message(Event.METRICS, **snapshot.to_fields())


def worker_process(pid: int, slot: int) -> tuple[WorkerProcess, int]:
    """A WorkerProcess reading a real pipe; returns it and the pipe's write end."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    popen = cast(Any, types.SimpleNamespace(pid=pid, returncode=None))
    return WorkerProcess(slot, popen, read_fd), write_fd


def exported(book: PoolMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(SergeantCollector(book.view, None, 2, None, lambda pids: dict.fromkeys(pids, 1000)))
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def success(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> float:
    return samples[('sergeant_tasks_total', (('outcome', 'success'), ('worker', 'crawl')))]


def test_a_worker_that_ends_keeps_its_counts_and_leaves_no_task_in_flight() -> None:
    # given two live workers that reported their counts, one of them running a task
    book = PoolMetrics(reason.name.lower() for reason in RESPAWN_REASONS)
    first, first_pipe = worker_process(101, 0)
    second, second_pipe = worker_process(102, 1)
    for process, pipe, message in (
        (first, first_pipe, metrics_message(5, 1)),
        (second, second_pipe, metrics_message(3)),
    ):
        book.started(process)
        os.write(pipe, encode_message(Event.READY, **BROKER) + message)
        process.read_reports()
    before = exported(book)

    # when the first is killed (its last report said a task was running) and replaced
    os.close(first_pipe)
    first.exited(-9)
    book.ended(first)
    book.respawning(EndReason.CRASHED.name.lower())
    after = exported(book)

    # then its counts stay, nothing is in flight any more, and the respawn is counted
    assert success(before) == success(after) == 8
    assert before[('sergeant_tasks_in_flight', (('worker', 'crawl'),))] == 1
    assert after[('sergeant_tasks_in_flight', (('worker', 'crawl'),))] == 0
    assert after[('sergeant_task_duration_seconds_count', (('worker', 'crawl'),))] == 8
    assert after[('sergeant_worker_respawns_total', (('reason', 'crashed'),))] == 1
    assert after[('sergeant_worker_processes', ())] == 1
    assert after[('sergeant_worker_resident_memory_bytes', (('slot', '1'),))] == 1000
    assert book.view().broker is not None and book.view().broker.queue == 'crawl'
    os.close(second_pipe)
    second.close_reports()


def test_the_declared_families_are_the_exported_ones() -> None:
    # given a book with one live worker that reported
    book = PoolMetrics(reason.name.lower() for reason in RESPAWN_REASONS)
    process, pipe = worker_process(101, 0)
    book.started(process)
    os.write(pipe, metrics_message(1))
    process.read_reports()

    # then every family the collector exports is declared, with its type
    registry = CollectorRegistry()
    collector = SergeantCollector(book.view, None, 1, 2**30, lambda pids: dict.fromkeys(pids, 1))
    registry.register(collector)
    families = {
        family.name: family.type
        for family in text_string_to_metric_families(generate_latest(registry).decode())
    }
    declared = {family.name: family.kind for family in FAMILIES}
    assert families.items() <= declared.items()
    os.close(pipe)
    process.close_reports()
