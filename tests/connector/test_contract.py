"""The connector contract, run against every backend on a real server.

Each test reads as given / when / then. Servers are shared, so every test uses
its own queue, key and lock names (the ``name`` fixture).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from sergeant.connector import Connector, DeadLetter, Released

LEASE = 0.6  # short leases keep expiry tests fast; sleeps below are LEASE + margin


def payloads(n: int, prefix: str = 'p') -> list[bytes]:
    return [f'{prefix}{i}'.encode() for i in range(n)]


# -- push / pop -----------------------------------------------------------------


def test_pop_returns_pushed_items_oldest_first(connector: Connector, name: str, global_order: bool) -> None:
    connector.push(name, [b'first'])
    connector.push(name, [b'second', b'third'])

    popped = [m.payload for m in connector.pop(name, 10, lease_seconds=None)]

    if global_order:
        assert popped == [b'first', b'second', b'third']
    else:
        assert sorted(popped) == [b'first', b'second', b'third']
        assert popped.index(b'second') < popped.index(b'third')


def test_pop_from_empty_queue_returns_nothing(connector: Connector, name: str) -> None:
    assert connector.pop(name, 5, lease_seconds=LEASE) == []


def test_push_returns_number_stored(connector: Connector, name: str) -> None:
    assert connector.push(name, payloads(7)) == 7
    assert connector.length(name) == 7


def test_pop_respects_count(connector: Connector, name: str) -> None:
    connector.push(name, payloads(10))

    first = connector.pop(name, 4, lease_seconds=None)
    rest = connector.pop(name, 100, lease_seconds=None)

    assert [m.payload for m in first] == payloads(10)[:4]
    assert [m.payload for m in rest] == payloads(10)[4:]


def test_payloads_are_binary_safe(connector: Connector, name: str) -> None:
    blob = bytes(range(256)) * 4
    connector.push(name, [blob, b'', b'\x00'])

    assert [m.payload for m in connector.pop(name, 3, lease_seconds=LEASE)] == [blob, b'', b'\x00']


def test_high_priority_goes_first(connector: Connector, name: str, global_order: bool) -> None:
    connector.push(name, [b'normal-1', b'normal-2'])
    connector.push(name, [b'urgent'], priority='HIGH')

    popped = [m.payload for m in connector.pop(name, 3, lease_seconds=None)]

    assert sorted(popped) == [b'normal-1', b'normal-2', b'urgent']
    if global_order:
        assert popped[0] == b'urgent'


def test_bulk_push_and_pop_of_thousands(connector: Connector, name: str) -> None:
    items = payloads(2500)
    connector.push(name, items)

    got: list[bytes] = []
    while batch := connector.pop(name, 1000, lease_seconds=LEASE * 10):
        got.extend(m.payload for m in batch)
        connector.ack(name, [m.receipt for m in batch])

    assert sorted(got) == sorted(items)
    assert connector.in_flight(name) == 0


def test_unknown_priority_is_rejected(connector: Connector, name: str) -> None:
    with pytest.raises(ValueError, match='priority'):
        connector.push(name, [b'x'], priority='URGENT')  # type: ignore[arg-type]


# -- delayed items ----------------------------------------------------------------


def test_delayed_item_is_invisible_until_its_time(connector: Connector, name: str) -> None:
    connector.push(name, [b'later'], consumable_from=time.time() + 1.0)
    connector.push(name, [b'now'])

    assert [m.payload for m in connector.pop(name, 5, lease_seconds=None)] == [b'now']
    assert connector.length(name) == 0
    assert connector.length(name, include_delayed=True) == 1

    time.sleep(1.2)

    assert connector.length(name) == 1
    assert [m.payload for m in connector.pop(name, 5, lease_seconds=None)] == [b'later']


def test_past_consumable_from_is_ready_at_once(connector: Connector, name: str) -> None:
    connector.push(name, [b'old'], consumable_from=time.time() - 10)

    assert [m.payload for m in connector.pop(name, 1, lease_seconds=None)] == [b'old']


# -- leases ------------------------------------------------------------------------


def test_leased_item_is_invisible_to_other_consumers(
    connector_factory: Callable[[], Connector], name: str
) -> None:
    producer, consumer_a, consumer_b = connector_factory(), connector_factory(), connector_factory()
    producer.push(name, [b'job'])

    leased = consumer_a.pop(name, 1, lease_seconds=30)

    assert [m.payload for m in leased] == [b'job']
    assert leased[0].delivery_count == 1
    assert consumer_b.pop(name, 1, lease_seconds=30) == []
    assert producer.length(name) == 0
    assert producer.in_flight(name) == 1


def test_acked_item_is_gone_for_good(connector: Connector, name: str) -> None:
    connector.push(name, [b'job'])
    [message] = connector.pop(name, 1, lease_seconds=LEASE)

    assert connector.ack(name, [message.receipt]) == 1
    time.sleep(LEASE + 0.4)

    assert connector.pop(name, 1, lease_seconds=LEASE) == []
    assert connector.in_flight(name) == 0


def test_expired_lease_redelivers_with_higher_delivery_count(connector: Connector, name: str) -> None:
    connector.push(name, [b'job'])
    [first] = connector.pop(name, 1, lease_seconds=LEASE)

    time.sleep(LEASE + 0.4)
    [second] = connector.pop(name, 1, lease_seconds=LEASE)

    assert second.payload == b'job'
    assert second.delivery_count == 2
    assert connector.ack(name, [first.receipt]) == 0, 'a stale receipt must not ack the new delivery'
    assert connector.in_flight(name) == 1
    assert connector.ack(name, [second.receipt]) == 1


def test_extended_lease_keeps_item_invisible(connector: Connector, name: str) -> None:
    connector.push(name, [b'long-job'])
    [message] = connector.pop(name, 1, lease_seconds=LEASE)

    for _ in range(3):
        time.sleep(LEASE / 2)
        assert connector.extend_leases(name, [message.receipt], LEASE) == 1

    assert connector.pop(name, 1, lease_seconds=LEASE) == []
    assert connector.ack(name, [message.receipt]) == 1


def test_extend_of_a_lost_lease_reports_zero(connector: Connector, name: str) -> None:
    connector.push(name, [b'job'])
    [message] = connector.pop(name, 1, lease_seconds=LEASE)
    connector.ack(name, [message.receipt])

    assert connector.extend_leases(name, [message.receipt], LEASE) == 0


def test_nack_hands_item_back_at_once_without_counting_a_delivery(connector: Connector, name: str) -> None:
    connector.push(name, [b'a', b'b'])
    [first] = connector.pop(name, 1, lease_seconds=30)

    assert connector.nack(name, [first.receipt]) == 1

    again = connector.pop(name, 2, lease_seconds=30)
    assert [m.payload for m in again] == [b'a', b'b']
    assert again[0].delivery_count == 1
    assert connector.in_flight(name) == 2


def test_settling_some_items_of_a_batch_leaves_the_others_leased(connector: Connector, name: str) -> None:
    payloads = [f'{i}'.encode() for i in range(50)]
    connector.push(name, payloads)
    batch = connector.pop(name, 50, lease_seconds=30)

    assert connector.nack(name, [batch[i].receipt for i in (3, 30, 40)]) == 3
    assert connector.ack(name, [batch[i].receipt for i in (0, 21, 49)]) == 3
    assert connector.nack(name, [batch[3].receipt, batch[0].receipt]) == 0, 'settled already'

    assert connector.in_flight(name) == 44
    assert [m.payload for m in connector.pop(name, 10, lease_seconds=30)] == [b'3', b'30', b'40']
    assert connector.ack(name, [m.receipt for m in batch]) == 44
    assert connector.in_flight(name) == 3


def test_an_expired_batch_redelivers_only_its_unsettled_items(connector: Connector, name: str) -> None:
    connector.push(name, [b'a', b'b', b'c', b'd', b'e'])
    batch = connector.pop(name, 5, lease_seconds=LEASE)
    assert connector.ack(name, [batch[1].receipt, batch[3].receipt]) == 2
    assert connector.nack(name, [batch[4].receipt]) == 1

    time.sleep(LEASE + 0.4)
    again = connector.pop(name, 5, lease_seconds=30)

    assert sorted(m.payload for m in again) == [b'a', b'c', b'e']
    assert {m.payload: m.delivery_count for m in again} == {b'a': 2, b'c': 2, b'e': 1}
    assert connector.ack(name, [m.receipt for m in batch]) == 0, 'the expired receipts match nothing'


def test_pop_acks_receipts_in_the_same_call(connector: Connector, name: str) -> None:
    connector.push(name, [b'one', b'two'])
    [one] = connector.pop(name, 1, lease_seconds=LEASE)

    [two] = connector.pop(name, 1, lease_seconds=LEASE, ack=[one.receipt])

    assert two.payload == b'two'
    assert connector.in_flight(name) == 1
    time.sleep(LEASE + 0.4)
    assert [m.payload for m in connector.pop(name, 5, lease_seconds=LEASE)] == [b'two']


def test_at_most_once_pop_deletes_items(connector: Connector, name: str) -> None:
    connector.push(name, [b'fire-and-forget'])

    [message] = connector.pop(name, 1, lease_seconds=None)
    time.sleep(0.2)

    assert message.payload == b'fire-and-forget'
    assert connector.in_flight(name) == 0
    assert connector.length(name, include_delayed=True) == 0
    assert connector.pop(name, 1, lease_seconds=None) == []


def test_concurrent_consumers_never_share_an_item(
    connector_factory: Callable[[], Connector], name: str
) -> None:
    items = payloads(300)
    connector_factory().push(name, items)
    consumers = [connector_factory() for _ in range(4)]
    seen: list[bytes] = []
    guard = threading.Lock()

    def consume(consumer: Connector) -> None:
        while batch := consumer.pop(name, 7, lease_seconds=30):
            with guard:
                seen.extend(m.payload for m in batch)
            consumer.ack(name, [m.receipt for m in batch])

    threads = [threading.Thread(target=consume, args=(c,)) for c in consumers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(seen) == len(items)
    assert set(seen) == set(items)


# -- lengths and deletion -------------------------------------------------------------


def test_length_counts_ready_and_optionally_delayed_items(connector: Connector, name: str) -> None:
    connector.push(name, payloads(3))
    connector.push(name, payloads(2, 'd'), consumable_from=time.time() + 60)
    connector.pop(name, 1, lease_seconds=30)

    assert connector.length(name) == 2
    assert connector.length(name, include_delayed=True) == 4
    assert connector.in_flight(name) == 1


def test_delete_removes_ready_delayed_and_leased_items(connector: Connector, name: str) -> None:
    connector.push(name, payloads(3))
    connector.push(name, [b'delayed'], consumable_from=time.time() + 60)
    connector.pop(name, 1, lease_seconds=LEASE)

    assert connector.delete(name) is True

    assert connector.length(name, include_delayed=True) == 0
    assert connector.in_flight(name) == 0
    time.sleep(LEASE + 0.4)
    assert connector.pop(name, 10, lease_seconds=LEASE) == []
    assert connector.delete(name) is False


def test_queues_are_independent(connector: Connector, name: str) -> None:
    connector.push(name, [b'mine'])
    connector.push(name + '-other', [b'theirs'])

    assert [m.payload for m in connector.pop(name, 5, lease_seconds=None)] == [b'mine']
    assert connector.length(name + '-other') == 1


# -- dead letters --------------------------------------------------------------------


def test_dead_letter_keeps_payload_and_reason_and_acks(connector: Connector, name: str) -> None:
    connector.push(name, [b'poison'])
    [message] = connector.pop(name, 1, lease_seconds=LEASE)

    connector.dead_letter(name, [DeadLetter(message.payload, 'cannot decode', 1234.5)], [message.receipt])

    assert connector.in_flight(name) == 0
    assert connector.dead_letter_length(name) == 1
    [letter] = connector.dead_letters(name)
    assert (letter.payload, letter.reason, letter.failed_at) == (b'poison', 'cannot decode', 1234.5)
    time.sleep(LEASE + 0.4)
    assert connector.pop(name, 1, lease_seconds=LEASE) == []


def test_dead_letters_are_read_oldest_first_and_bounded(connector: Connector, name: str) -> None:
    connector.dead_letter(name, [DeadLetter(p, f'reason {p.decode()}') for p in payloads(5)])

    letters = connector.dead_letters(name, count=3)

    assert [letter.payload for letter in letters] == payloads(5)[:3]
    assert letters[0].reason == 'reason p0'
    assert connector.dead_letter_length(name) == 5


def test_requeued_dead_letters_are_consumable_again(connector: Connector, name: str) -> None:
    connector.dead_letter(name, [DeadLetter(p, 'failed') for p in payloads(4)])

    assert connector.requeue_dead_letters(name, count=3) == 3

    assert connector.dead_letter_length(name) == 1
    popped = connector.pop(name, 10, lease_seconds=LEASE)
    assert sorted(m.payload for m in popped) == payloads(4)[:3]
    assert all(m.delivery_count == 1 for m in popped)
    assert connector.requeue_dead_letters(name) == 1


def test_purge_dead_letters(connector: Connector, name: str) -> None:
    connector.dead_letter(name, [DeadLetter(b'x', 'failed'), DeadLetter(b'y', 'failed')])

    assert connector.purge_dead_letters(name) == 2
    assert connector.dead_letter_length(name) == 0
    assert connector.dead_letters(name) == []


def test_delete_leaves_dead_letters_alone(connector: Connector, name: str) -> None:
    connector.dead_letter(name, [DeadLetter(b'x', 'failed')])
    connector.push(name, [b'y'])

    connector.delete(name)

    assert connector.dead_letter_length(name) == 1


def test_dead_letters_carry_ids_that_find_them(connector: Connector, name: str) -> None:
    connector.dead_letter(name, [DeadLetter(p, 'failed') for p in payloads(5)])
    ids = [letter.id for letter in connector.dead_letters(name)]

    found = connector.find_dead_letters(name, [ids[3], ids[1], 'no-such-id'])

    assert len(set(ids)) == 5 and all(ids)
    assert [(letter.payload, letter.id) for letter in found] == [(b'p1', ids[1]), (b'p3', ids[3])]
    assert connector.find_dead_letters(name + '-other', ids) == []
    assert connector.find_dead_letters(name, []) == []


def test_requeue_by_id_moves_each_letter_once_with_optional_new_payloads(
    connector_factory: Callable[[], Connector], name: str
) -> None:
    first, second = connector_factory(), connector_factory()
    first.dead_letter(name, [DeadLetter(p, 'failed') for p in payloads(4)])
    ids = [letter.id for letter in first.dead_letters(name)]

    assert first.requeue_dead_letters_by_id(name, [ids[0], ids[2]], {ids[2]: b'p2-reset'}) == 2
    assert second.requeue_dead_letters_by_id(name, [ids[0], ids[2], 'no-such-id']) == 0

    popped = first.pop(name, 10, lease_seconds=None)
    assert sorted(m.payload for m in popped) == [b'p0', b'p2-reset']
    assert all(m.delivery_count == 1 for m in popped)
    assert [letter.payload for letter in first.dead_letters(name)] == [b'p1', b'p3']


def test_concurrent_requeues_by_id_never_duplicate(
    connector_factory: Callable[[], Connector], name: str
) -> None:
    connector_factory().dead_letter(name, [DeadLetter(p, 'failed') for p in payloads(300)])
    ids = [letter.id for letter in connector_factory().dead_letters(name, 300)]
    moved: list[int] = []

    def requeue() -> None:
        connector = connector_factory()
        moved.append(connector.requeue_dead_letters_by_id(name, ids))

    threads = [threading.Thread(target=requeue) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(moved) == 300
    popped = connector_factory().pop(name, 1000, lease_seconds=None)
    assert sorted(m.payload for m in popped) == sorted(payloads(300))


def test_purge_dead_letters_oldest_first_by_count(connector: Connector, name: str) -> None:
    connector.dead_letter(name, [DeadLetter(p, 'failed') for p in payloads(5)])

    assert connector.purge_dead_letters(name, count=2) == 2
    assert connector.purge_dead_letters(name, count=0) == 0

    assert [letter.payload for letter in connector.dead_letters(name)] == payloads(5)[2:]
    assert connector.purge_dead_letters(name, count=10) == 3
    assert connector.dead_letter_length(name) == 0


# -- what sergeant queues shows -------------------------------------------------------


def test_queues_names_every_queue_holding_anything(connector: Connector, name: str) -> None:
    connector.push(name + ':ready', [b'r'])
    connector.push(name + '-delayed', [b'd'], consumable_from=time.time() + 60)
    connector.push(name + '-leased', [b'l'])
    connector.pop(name + '-leased', 1, lease_seconds=30)
    connector.dead_letter(name + '-dead', [DeadLetter(b'x', 'failed')])
    connector.push(name + '-emptied', [b'e'])
    connector.delete(name + '-emptied')

    mine = [queue for queue in connector.queues() if queue.startswith(name)]

    assert mine == sorted([name + ':ready', name + '-delayed', name + '-leased', name + '-dead'])


def test_head_pushed_at_is_the_push_time_of_the_next_item(connector: Connector, name: str) -> None:
    assert connector.head_pushed_at(name) is None
    before = time.time()
    connector.push(name, [b'first', b'second'])
    connector.push(name, [b'later'], consumable_from=time.time() + 60)

    pushed = connector.head_pushed_at(name)

    # MongoDB's ObjectIds hold whole seconds
    assert pushed is not None and before - 1 <= pushed <= time.time()
    connector.pop(name, 2, lease_seconds=30)
    assert connector.head_pushed_at(name) is None


# -- keys ------------------------------------------------------------------------------


def test_key_set_get_delete(connector: Connector, name: str) -> None:
    assert connector.key_get(name) is None
    assert connector.key_set(name, b'v1') is True
    assert connector.key_set(name, b'v2') is False
    assert connector.key_get(name) == b'v2'
    assert connector.key_delete(name) is True
    assert connector.key_delete(name) is False
    assert connector.key_get(name) is None


# -- locks -----------------------------------------------------------------------------


def test_lock_is_exclusive_until_released(connector_factory: Callable[[], Connector], name: str) -> None:
    mine, theirs = connector_factory().lock(name), connector_factory().lock(name)

    assert mine.acquire(timeout=0) is True
    assert mine.is_locked() and theirs.is_locked()
    assert theirs.acquire(timeout=0.3, check_interval=0.1) is False
    assert theirs.release() is False

    assert mine.release() is True
    assert not theirs.is_locked()
    assert theirs.acquire(timeout=0) is True
    assert theirs.release() is True


def test_lock_waits_for_release(connector_factory: Callable[[], Connector], name: str) -> None:
    holder, waiter = connector_factory().lock(name), connector_factory().lock(name)
    holder.acquire()
    timer = threading.Timer(0.3, holder.release)
    timer.start()

    started = time.monotonic()
    assert waiter.acquire(timeout=5, check_interval=0.05) is True
    assert time.monotonic() - started >= 0.25
    timer.join()
    waiter.release()


def test_lock_ttl_can_be_read_and_changed(connector: Connector, name: str) -> None:
    lock = connector.lock(name)
    assert lock.get_ttl() is None

    lock.acquire(ttl=30)
    ttl = lock.get_ttl()
    assert ttl is not None and 28 <= ttl <= 30

    assert lock.set_ttl(100) is True
    ttl = lock.get_ttl()
    assert ttl is not None and 98 <= ttl <= 100
    lock.release()
    assert lock.get_ttl() is None


def test_expired_lock_can_be_taken_and_stale_owner_cannot_release_it(
    connector_factory: Callable[[], Connector], name: str
) -> None:
    stale, fresh = connector_factory().lock(name), connector_factory().lock(name)
    stale.acquire(ttl=1)

    time.sleep(1.3)

    assert not fresh.is_locked()
    assert fresh.acquire(timeout=0) is True
    assert stale.release() is False, 'a holder whose lock expired must not release the new owner'
    assert stale.set_ttl(60) is False
    assert fresh.is_locked()
    assert fresh.release() is True


# -- health ----------------------------------------------------------------------------


def test_ping_answers_true(connector: Connector) -> None:
    assert connector.ping() is True


# -- optional: pops sent ahead ------------------------------------------------------


def test_begin_pop_leases_at_once_and_result_brings_the_items(connector: Connector, name: str) -> None:
    connector.push(name, [b'a', b'b', b'c'])
    [first] = connector.pop(name, 1, lease_seconds=30)

    pending = connector.begin_pop(name, 5, lease_seconds=30, ack=[first.receipt])
    deliveries = pending.result()

    assert deliveries.payloads == [b'b', b'c']
    assert deliveries.delivery_counts == [1, 1]
    assert pending.result() is deliveries or pending.result() == deliveries, 'result() can be read again'
    assert connector.in_flight(name) == 2, 'the ack rode along; the two popped items are leased'
    assert connector.ack(name, deliveries.receipts) == 2
    assert connector.in_flight(name) == 0


def test_begin_pop_at_most_once_deletes(connector: Connector, name: str) -> None:
    connector.push(name, [b'a'])

    deliveries = connector.begin_pop(name, 5, lease_seconds=None).result()

    assert deliveries.payloads == [b'a']
    assert connector.in_flight(name) == 0
    assert connector.length(name) == 0


# -- lease owners ---------------------------------------------------------------------


def owned_by(connector_factory: Callable[[], Connector], owner: str) -> Connector:
    connector = connector_factory()
    connector.lease_owner = owner
    return connector


def test_leases_are_counted_per_owner(connector_factory: Callable[[], Connector], name: str) -> None:
    # given two consumers with owners and one without
    first, second = owned_by(connector_factory, 'pod-a/1'), owned_by(connector_factory, 'pod-b/7')
    anonymous = connector_factory()
    first.push(name, payloads(10))

    # when each leases some items and the first settles one
    held = first.pop(name, 3, lease_seconds=30)
    second.pop(name, 2, lease_seconds=30)
    second.begin_pop(name, 1, lease_seconds=30).result()
    anonymous.pop(name, 1, lease_seconds=30)
    first.ack(name, [held[0].receipt])

    # then the counts name each owner's items still leased, the anonymous lease left out
    assert first.leases_by_owner(name) == {'pod-a/1': 2, 'pod-b/7': 3}
    assert first.in_flight(name) == 6


def test_release_owner_hands_back_at_once_charging_only_started_deliveries(
    connector_factory: Callable[[], Connector], name: str, global_order: bool
) -> None:
    # given a consumer that leased five items (two of them started) and died; another consumer holds one
    dead, alive = owned_by(connector_factory, 'pod-a/1'), owned_by(connector_factory, 'pod-a/2')
    dead.push(name, [b'a', b'b', b'c', b'd', b'e', b'f'])
    batch = dead.pop(name, 3, lease_seconds=30)
    [sent_ahead] = [*dead.begin_pop(name, 2, lease_seconds=30).result().receipts][:1]
    [other] = alive.pop(name, 1, lease_seconds=30)
    started = [batch[0].receipt, batch[1].receipt]

    # when it is released, its first started item acknowledged already
    dead.ack(name, [batch[0].receipt])
    released = alive.release_owner(name, 'pod-a/1', started)

    # then its four unsettled items are back at once, only the started one charged
    assert released.charged == [batch[1].payload]
    assert released.uncharged == 3
    assert alive.leases_by_owner(name) == {'pod-a/2': 1}
    again = alive.pop(name, 10, lease_seconds=30)
    counts = {m.payload: m.delivery_count for m in again}
    assert counts == {b'b': 2, b'c': 1, b'd': 1, b'e': 1}
    if global_order:
        assert [m.payload for m in again] == [b'b', b'c', b'd', b'e']
    assert dead.ack(name, [sent_ahead]) == 0, 'the released receipts match nothing'
    assert other.payload == b'f'
    assert alive.release_owner(name, 'pod-a/1', started) == Released([], 0), 'nothing left'


def test_a_living_owner_gets_back_the_items_of_a_pop_whose_answer_it_lost(
    connector_factory: Callable[[], Connector], name: str
) -> None:
    # given a consumer that knows one batch of its leases, and leased another batch whose answer it lost
    consumer = owned_by(connector_factory, 'pod-a/1')
    consumer.push(name, [b'a', b'b', b'c', b'd', b'e'])
    known = consumer.pop(name, 2, lease_seconds=30)
    consumer.pop(name, 2, lease_seconds=30)  # its answer "lost"

    # when it releases what it holds, keeping what it knows
    released = consumer.release_owner(name, 'pod-a/1', [], keep=[message.receipt for message in known])

    # then only the lost batch goes back, uncounted; the known leases still hold
    assert released == Released([], 2)
    assert consumer.leases_by_owner(name) == {'pod-a/1': 2}
    again = consumer.pop(name, 5, lease_seconds=30)
    assert sorted((m.payload, m.delivery_count) for m in again) == [(b'c', 1), (b'd', 1), (b'e', 1)]
    assert consumer.ack(name, [message.receipt for message in known]) == 2
