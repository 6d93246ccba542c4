"""The start journal: what a worker notes survives it, for the worker after it."""

from __future__ import annotations

from pathlib import Path

from sergeant.loop.journal import SLOT_BYTES, SLOTS, StartJournal


def test_a_fresh_journal_has_no_predecessor(tmp_path: Path) -> None:
    assert StartJournal(str(tmp_path / 'slot-0')).predecessor() is None


def test_the_next_worker_reads_what_a_running_worker_noted(tmp_path: Path) -> None:
    # given a worker that noted three tasks and never ended cleanly
    path = str(tmp_path / 'slot-0')
    journal = StartJournal(path)
    journal.begin('pod-a/41', 'emails')
    for receipt in (b'first', b'second', b'x' * (SLOT_BYTES - 1)):
        journal.note(receipt)

    # when the next worker opens the same file
    record = StartJournal(path).predecessor()

    # then it finds the owner, queue and receipts
    assert record is not None
    assert (record.owner, record.queue, record.complete) == ('pod-a/41', 'emails', True)
    assert sorted(record.started) == sorted([b'first', b'second', b'x' * (SLOT_BYTES - 1)])


def test_a_worker_that_ended_cleanly_leaves_nothing_to_do(tmp_path: Path) -> None:
    path = str(tmp_path / 'slot-0')
    journal = StartJournal(path)
    journal.begin('pod-a/41', 'emails')
    journal.note(b'first')
    journal.end()

    assert StartJournal(path).predecessor() is None


def test_the_ring_keeps_the_latest_receipts(tmp_path: Path) -> None:
    path = str(tmp_path / 'slot-0')
    journal = StartJournal(path)
    journal.begin('host/1', 'q')
    for number in range(SLOTS + 10):
        journal.note(number.to_bytes(4, 'big'))

    record = StartJournal(path).predecessor()

    assert record is not None
    assert sorted(int.from_bytes(receipt, 'big') for receipt in record.started) == list(range(10, SLOTS + 10))


def test_a_receipt_too_long_to_note_makes_the_record_incomplete(tmp_path: Path) -> None:
    path = str(tmp_path / 'slot-0')
    journal = StartJournal(path)
    journal.begin('host/1', 'q')
    journal.note(b'y' * SLOT_BYTES)

    record = StartJournal(path).predecessor()

    assert record is not None and not record.complete


def test_begin_wipes_the_predecessor_record(tmp_path: Path) -> None:
    path = str(tmp_path / 'slot-0')
    first = StartJournal(path)
    first.begin('host/1', 'q')
    first.note(b'old')
    second = StartJournal(path)
    second.begin('host/2', 'q')

    record = StartJournal(path).predecessor()

    assert record is not None and (record.owner, record.started) == ('host/2', [])
