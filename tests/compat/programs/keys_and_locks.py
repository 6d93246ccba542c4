"""Keys (``worker.broker``'s get_key/set_key/delete_key) and locks (``worker.lock``) on Redis.

0.27 keeps the key functions on the worker's broker, so that is where a 0.27 program
calls them: positionally, and with 0.27's keyword (``name=``). Locks are observed from
two lock objects of the same name: acquiring, contending with a timeout, ttl, and
releasing, each call's return value and type.
"""

from __future__ import annotations

from typing import Any

from _observe import emit, outcome, queue, redis_params

import sergeant.config
import sergeant.worker


class KeyWorker(sergeant.worker.Worker):
    def generate_config(self) -> sergeant.config.WorkerConfig:
        return sergeant.config.WorkerConfig(
            name=queue(),
            connector=sergeant.config.Connector(type='redis', params=redis_params()),
        )


def keys(worker: KeyWorker) -> dict[str, Any]:
    broker, key = worker.broker, queue('key')
    return {
        'get_missing': outcome(lambda: broker.get_key(key)),
        'set_new': outcome(lambda: broker.set_key(key, {'a': [1, 2], 'b': 'text'})),
        'get': outcome(lambda: broker.get_key(key)),
        'set_existing': outcome(lambda: broker.set_key(key, 7)),
        'get_replaced': outcome(lambda: broker.get_key(key)),
        'delete': outcome(lambda: broker.delete_key(key)),
        'delete_missing': outcome(lambda: broker.delete_key(key)),
        'get_deleted': outcome(lambda: broker.get_key(key)),
        'keyword.set': outcome(lambda: broker.set_key(name=queue('keyword'), value='v')),
        'keyword.get': outcome(lambda: broker.get_key(name=queue('keyword'))),
        'keyword.delete': outcome(lambda: broker.delete_key(name=queue('keyword'))),
    }


def locks(worker: KeyWorker) -> dict[str, Any]:
    name = queue('lock')
    first, second = worker.lock(name), worker.lock(name)
    return {
        'is_locked_before': outcome(first.is_locked),
        'get_ttl_before': outcome(first.get_ttl),
        'release_unacquired': outcome(first.release),
        'acquire': outcome(lambda: first.acquire(timeout=1, check_interval=0.05, ttl=30)),
        'is_locked': outcome(first.is_locked),
        'is_locked_other_object': outcome(second.is_locked),
        'get_ttl': outcome(lambda: 0 < (first.get_ttl() or 0) <= 30),
        'get_ttl_type': outcome(lambda: type(first.get_ttl()).__name__),
        'contended_acquire': outcome(lambda: second.acquire(timeout=0.3, check_interval=0.05, ttl=30)),
        'set_ttl': outcome(lambda: first.set_ttl(ttl=100)),
        'get_ttl_after_set': outcome(lambda: 30 < (first.get_ttl() or 0) <= 100),
        'set_ttl_by_other_object': outcome(lambda: second.set_ttl(ttl=50)),
        'release_by_other_object': outcome(second.release),
        'still_locked': outcome(first.is_locked),
        'release': outcome(first.release),
        'release_again': outcome(first.release),
        'is_locked_after_release': outcome(first.is_locked),
        'get_ttl_after_release': outcome(first.get_ttl),
        'acquire_after_release': outcome(lambda: second.acquire(timeout=1, check_interval=0.05, ttl=30)),
        'release_second': outcome(second.release),
        'acquire_defaults_return': outcome(lambda: worker.lock(queue('defaults')).acquire(timeout=1)),
    }


def main() -> None:
    worker = KeyWorker()
    worker.init_worker()
    emit({'keys': keys(worker), 'locks': locks(worker)})


if __name__ == '__main__':
    main()
