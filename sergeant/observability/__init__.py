"""The supervisor's observability endpoints: ``/metrics``, ``/healthz`` and ``/readyz`` on one port.

:class:`Observability` wires the pieces together: the Prometheus collector
(:mod:`.collector`) over the pool's view, the broker probe (:mod:`.probe`), the
probe verdicts (:mod:`.health`) and the HTTP server (:mod:`.server`). It also
aggregates what the worker processes count (:mod:`.pool_metrics`, the book the
supervisor keeps, read as a :class:`~.pool.PoolView`). :class:`Observability`
(in :mod:`.service`) is imported on first use, and the supervisor asks for it
only when ``--metrics-port`` is not 0, so prometheus_client, http.server and a
broker driver are loaded only then; it depends on the supervisor only through
the callables it is given.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .health import SupervisorStatus, Verdict
    from .service import Observability

_LAZY = {'Observability': '.service', 'SupervisorStatus': '.health', 'Verdict': '.health'}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


__all__ = ['Observability', 'SupervisorStatus', 'Verdict']
