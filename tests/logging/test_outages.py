"""Outages are logged once, with reminders and an all-clear, not once per retry."""

from __future__ import annotations

import logging

import pytest

from sergeant.logging import outages
from sergeant.logging.outages import OutageLog


def test_an_outage_is_one_line_then_an_all_clear(caplog: pytest.LogCaptureFixture) -> None:
    # given an operation that fails 100 times in a row, then works
    log = OutageLog(logging.getLogger('outage-test'), 'fetch tasks')
    with caplog.at_level(logging.INFO, logger='outage-test'):
        for _ in range(100):
            log.failed(ConnectionError('refused'))
        log.worked()
        log.worked()

    # then one line says it failed and one that it works again, counting the failures not logged
    messages = [record.getMessage() for record in caplog.records]
    assert messages[0] == 'could not fetch tasks: refused'
    assert messages[1].startswith('could fetch tasks again after ')
    assert messages[1].endswith('(99 failures not logged one by one)')
    assert len(messages) == 2
    assert [record.levelno for record in caplog.records] == [logging.ERROR, logging.WARNING]


def test_a_long_outage_gets_reminders(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(outages.time, 'monotonic', lambda: clock[0])
    log = OutageLog(logging.getLogger('outage-test'), 'acknowledge tasks', logging.WARNING)
    with caplog.at_level(logging.INFO, logger='outage-test'):
        for _ in range(10):
            log.failed(ConnectionError('refused'))
            clock[0] += outages.REMINDER_EVERY / 4

    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        'could not acknowledge tasks: refused',
        'could not acknowledge tasks: refused (3 more failures since the last line)',
        'could not acknowledge tasks: refused (3 more failures since the last line)',
    ]


def test_what_happens_next_ends_each_failure_line_only(caplog: pytest.LogCaptureFixture) -> None:
    log = OutageLog(logging.getLogger('outage-test'), 'acknowledge tasks', logging.WARNING, then='will retry')
    with caplog.at_level(logging.INFO, logger='outage-test'):
        log.failed(ConnectionError('refused'))
        log.worked()
    failure, all_clear = (record.getMessage() for record in caplog.records)
    assert failure == 'could not acknowledge tasks: refused; will retry'
    assert all_clear.startswith('could acknowledge tasks again after ') and 'retry' not in all_clear
