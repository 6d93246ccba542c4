"""The supervisor: runs, watches and replaces a pool of worker processes.

``sergeant supervise --worker-module M --worker-class C --concurrent-workers N``
(or ``python -m sergeant.supervisor`` with the same flags, Sergeant 0.27's
command line) starts N worker processes (:mod:`.child`), respawns them when they
end, crash or exceed the memory limit, reaps zombies (it can be PID 1 in a
container) and drains the workers on SIGTERM/SIGINT. From Python, as in 0.27:
``Supervisor(worker_module_name, worker_class_name, concurrent_workers,
max_worker_memory_usage=None, logger=None).start()``.

Modules, top down: :mod:`.options` (flags and ``SERGEANT_*`` variables),
:mod:`.supervisor` (the loop, signals, draining), :mod:`.pool` (slots, respawns,
memory limit), :mod:`.backoff`, :mod:`.memory`, :mod:`.reaper` (zombies and
orphans), :mod:`.process` (one worker process), :mod:`.ledger` (summaries and
totals, for logs), :mod:`sergeant.observability.pool_metrics` (what ``/metrics`` adds up, served by
:mod:`sergeant.observability`), :mod:`.protocol` (what workers report) and
:mod:`.child` (the worker side). The supervisor process never imports the
user's worker module, nor :mod:`.child`.
"""

from __future__ import annotations

from .options import OptionError, SupervisorOptions, add_arguments, options_from
from .process import EndReason
from .supervisor import Supervisor, SupervisorExit, run

__all__ = [
    'EndReason',
    'OptionError',
    'Supervisor',
    'SupervisorExit',
    'SupervisorOptions',
    'add_arguments',
    'options_from',
    'run',
]
