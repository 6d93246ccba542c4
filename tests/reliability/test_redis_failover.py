"""A Redis Cluster master SIGKILLed under load; its replica takes over and the queue goes on.

A cluster of 3 masters and 3 replicas (``cluster-node-timeout`` 1.5 s). Two workers
consume the queue in batches of 10 with 2 s leases while a producer in the test
pushes a task every few milliseconds; then the master serving the queue's slot is
SIGKILLed, with no pause: a crash under load. Its replica is promoted once the
other masters agree it failed, and workers and producer find the new master
through their cluster clients.

Redis replicates asynchronously: the replica holds what the old master had
streamed to it when it died. So the test asserts what that still guarantees, and
records the rest:

* no task whose push had reached the replica before the kill is lost (the tasks
  pushed before the workers started, checked by replication offsets): it was
  ready, leased (the lease expires on the new master) or acknowledged after it ran;
* every task pushed after the promotion is processed: the queue works on;
* a task pushed and acknowledged by the old master in the last moments before the
  kill may be lost (``lost_acknowledged``), and a task whose acknowledgement or
  pop did not reach the replica runs again (``duplicates``): both are recorded.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.cluster import key_slot

from sergeant.codec import TaskCodec
from sergeant.connector.redis_node import cluster_queue_keys
from sergeant.errors import SergeantError
from sergeant.objects import Task
from tests.reliability.conftest import Record, queue_is_empty, since, tally
from tests.servers.redis import RedisServer
from tests.servers.redis_cluster import RedisClusterServers, running_redis_cluster
from tests.supervisor.conftest import QUEUE, Supervise, broker_for, push_ids, wait_until

TASKS = 2000  # pushed and replicated before the workers start
PRODUCED_FIRST = 100_000  # ids of the producer's tasks start here
PRODUCE_EVERY = 0.005
AFTER_PROMOTION = 200  # tasks the producer pushes after the promotion before it stops


class Producer(threading.Thread):
    """Pushes one task at a time until stopped; notes the ids whose push was acknowledged, and when."""

    def __init__(self, broker: TaskCodec) -> None:
        super().__init__(daemon=True)
        self.broker = broker
        self.acknowledged: list[tuple[int, float]] = []  # (id, monotonic time of the answer)
        self.failed = 0
        # a push answered by an error may still have been applied (the master died after
        # running it): its task may run, and is no stranger
        self.unanswered: list[int] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        task_id = PRODUCED_FIRST
        while not self.stopping.is_set():
            try:
                self.broker.push_tasks(QUEUE, [Task(kwargs={'id': task_id})])
            except SergeantError:
                self.failed += 1
                self.unanswered.append(task_id)
            else:
                self.acknowledged.append((task_id, time.monotonic()))
            task_id += 1
            time.sleep(PRODUCE_EVERY)

    def pushed_after(self, moment: float) -> list[int]:
        return [task_id for task_id, at in self.acknowledged if at > moment]


def replica_offset_reached(master: redis.Redis, offset: int) -> bool:
    """Whether every replica of ``master`` has acknowledged its replication stream up to ``offset``."""
    info = master.info('replication')
    replicas = [info[key] for key in info if key.startswith('slave') and isinstance(info[key], dict)]
    return bool(replicas) and all(int(replica['offset']) >= offset for replica in replicas)


def promoted(cluster: RedisClusterServers, slot: int, killed: RedisServer) -> bool:
    with contextlib.suppress(redis.RedisError, LookupError):
        return cluster.master_of_slot(slot).port != killed.port and cluster.is_healthy()
    return False


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[RedisClusterServers]:
    with running_redis_cluster(tmp_path / 'cluster') as servers:
        yield servers


def test_a_killed_master_is_replaced_by_its_replica_and_the_queue_goes_on(
    supervise: Supervise, cluster: RedisClusterServers, record_property: Record
) -> None:
    # given tasks pushed to the queue's slot and replicated, consumed by two workers in batches of 10
    settings = {'type': 'redis', 'params': {'cluster': {'nodes': cluster.startup_nodes}}}
    broker = broker_for(settings)
    push_ids(broker, range(TASKS))
    slot = key_slot(cluster_queue_keys(QUEUE).ready.encode())
    master = cluster.master_of_slot(slot)
    client = cluster.client(master)
    try:
        offset = int(client.info('replication')['master_repl_offset'])
        wait_until(lambda: replica_offset_reached(client, offset), 30, 'the pushes replicated')
    finally:
        client.close()
    record_property('tasks', TASKS)
    run = supervise(
        'supervised_broker_outage',
        'OutageWorker',
        '--concurrent-workers',
        '2',
        settings=settings,
        env={'TEST_TASKS_PER_TRANSACTION': '10', 'TEST_TASK_SECONDS': '0.005'},
    )
    producer = Producer(broker_for(settings))
    producer.start()
    try:
        wait_until(lambda: len(set(run.processed_ids())) >= TASKS // 4, 120, 'a quarter processed')

        # when the master serving the queue's slot is SIGKILLed while the workers consume and
        # the producer pushes, and its replica is promoted
        done_at_kill = len(set(run.processed_ids()))
        master.kill()
        killed_at = time.monotonic()
        wait_until(lambda: promoted(cluster, slot, master), 60, 'the replica promoted', interval=0.05)
        promoted_at = time.monotonic()
        pushed = lambda: len(producer.pushed_after(promoted_at)) >= AFTER_PROMOTION  # noqa: E731
        wait_until(pushed, 60, 'pushes to the new master')
    finally:
        producer.stopping.set()
        producer.join()
    record_property('done_at_kill', done_at_kill)
    record_property('failover_s', round(promoted_at - killed_at, 2))
    first_push = min((at for _, at in producer.acknowledged if at > killed_at), default=promoted_at)
    record_property('pushes_resumed_s', round(first_push - killed_at, 2))
    record_property('push_errors', producer.failed)

    # then every task the replica had and every task pushed after the promotion is processed,
    guaranteed = [*range(TASKS), *producer.pushed_after(promoted_at)]
    broker = broker_for(settings)
    missing = lambda: set(guaranteed) - set(run.processed_ids())  # noqa: E731
    try:
        wait_until(lambda: not missing(), 180, 'every guaranteed task processed', interval=0.2)
    except AssertionError as timeout:
        state = f'missing {sorted(missing())[:20]}; log:\n{run.log()[-4000:]}'
        raise AssertionError(f'{timeout}: {state}') from None
    record_property('recover_s', since(killed_at))
    wait_until(lambda: queue_is_empty(broker), 60, 'no task left ready or in flight')
    acknowledged = [task_id for task_id, _ in producer.acknowledged]
    counts = tally(run.processed_ids(), [*range(TASKS), *acknowledged])
    record_property('pushed_during_run', len(acknowledged))
    record_property('lost_acknowledged', len(counts.lost))
    record_property('duplicates', counts.duplicates)
    assert done_at_kill < TASKS, 'the kill landed while tasks were left'
    assert set(counts.strangers) <= set(producer.unanswered), counts
    assert set(counts.lost) <= set(acknowledged) - set(guaranteed), counts
    # and the workers rode out the failover without being replaced
    log = run.log()
    assert log.count('started in slot') == 2 and 'ended after' not in log, log[-3000:]
    run.send(signal.SIGTERM)
    assert run.wait(60) == 0
