"""A ``sergeant dlq requeue --all`` stopped by SIGINT half-way, then run again.

Given N dead letters (100,000 on Redis, 10,000 on SQLite and FerretDB, whose
requeue moves about 800 letters a second: 10,000 fit in the test's ~30 s), when the
command gets SIGINT while it moves them, then it stops after the batch in flight
with exit code 130 and says how many it moved; every letter is then either ready
or still a dead letter (none lost, none in both places); and running the command
again moves the rest, each payload ready exactly once.
"""

from __future__ import annotations

import signal
import subprocess
import time

import pymongo
import pytest

from sergeant.connector import DeadLetter

from .conftest import REPO_ROOT, Broker, run_sergeant, sergeant_command

FILL_BATCH = 10_000


@pytest.mark.parametrize(
    ('broker', 'count', 'batch'),
    [('redis', 100_000, 50), ('sqlite', 10_000, 20), ('mongo', 10_000, 200)],
    indirect=['broker'],
)
def test_requeue_interrupted_by_sigint_resumes_without_loss_or_duplicates(
    broker: Broker, count: int, batch: int
) -> None:
    connector, queue = broker.connector, broker.queue
    expected = [b'letter-%06d' % i for i in range(count)]
    for start in range(0, count, FILL_BATCH):
        connector.dead_letter(
            queue, [DeadLetter(p, 'max retries') for p in expected[start : start + FILL_BATCH]]
        )
    command = sergeant_command(
        'dlq', 'requeue', queue, '--all', '--batch-size', str(batch), '--broker', broker.url
    )
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while connector.length(queue) < count // 20 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)

    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)

    assert process.returncode == 130, f'the requeue ended before the SIGINT, or failed: {out}{err}'
    ready, dead = connector.length(queue), connector.dead_letter_length(queue)
    assert 0 < ready < count and ready + dead == count
    assert f'interrupted: {ready} of {count} dead letters of {queue} requeued' in err

    resumed = run_sergeant('dlq', 'requeue', queue, '--all', '--broker', broker.url)

    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == f'requeued {dead} dead letters of {queue}'
    assert (connector.dead_letter_length(queue), connector.length(queue)) == (0, count)
    assert sorted(ready_payloads(broker)) == expected


def ready_payloads(broker: Broker) -> list[bytes]:
    """Every payload of the queue, each as often as it is there."""
    if broker.kind == 'mongo':
        # popping 10,000 items one claim round at a time takes minutes on FerretDB: read the documents
        with pymongo.MongoClient(broker.url) as client:
            database = client.get_default_database()
            segments = [s['_id'] for s in database['queue_segments'].find({'queue': broker.queue})]
            found = list(database['queue_items'].find({'queue': broker.queue}, {'payload': 1}))
            for segment in segments:  # the backlog of deep queues (sergeant.connector.mongo_backlog)
                found += database[segment].find({}, {'payload': 1})
            return [bytes(doc['payload']) for doc in found]
    payloads: list[bytes] = []
    while chunk := broker.connector.pop(broker.queue, 5000, lease_seconds=None):
        payloads += [message.payload for message in chunk]
    return payloads
