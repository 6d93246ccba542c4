"""Hands back at once what a dead worker held, from the journal it left (:mod:`.journal`).

Run by the worker that replaces it, before its own first pop. Without this, the
dead worker's tasks would wait for their leases to run out (a minute by default)
and each would count a delivery, prefetched ones that never started included.
Here the started ones count a delivery and the others go back uncounted; when
several tasks were running together at the death, each gets a shared death noted
(:mod:`.isolation`), so an innocent one is not dead-lettered for a sibling's crash.
"""

from __future__ import annotations

import logging

from ..connector import Connector, Released
from .isolation import note_shared_death
from .journal import JournalRecord


def release_predecessor(
    connector: Connector, record: JournalRecord, note_deaths: bool, logger: logging.Logger
) -> Released | None:
    """Release what ``record``'s owner still holds; None when the record cannot be trusted.

    ``note_deaths``: note shared deaths (only useful when ``max_retries`` limits deliveries).
    """
    if not record.complete:
        logger.warning(
            'worker %s died; its journal is incomplete, so its tasks wait for their leases to expire',
            record.owner,
        )
        return None
    released = connector.release_owner(record.queue, record.owner, record.started)
    if note_deaths and len(released.charged) > 1:
        for payload in released.charged:
            note_shared_death(connector, record.queue, payload)
    if released.charged or released.uncharged:
        logger.warning(
            'worker %s died holding %d tasks of queue %r: %d had started and go back counted as a '
            'delivery, %d go back uncounted',
            record.owner,
            len(released.charged) + released.uncharged,
            record.queue,
            len(released.charged),
            released.uncharged,
        )
    return released
