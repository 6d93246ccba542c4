"""Which CPUs Redis and the measured process run on, and how idle CPUs wake up.

On a small VM two things dominate loopback numbers more than either library:

* *Placement.* Left to the scheduler, a run lands with Redis and the driver on
  the same CPU or on two, and results swing by 3x or more. Every measurement is
  pinned. ``split`` (the default): Redis on one CPU, the driver on another, as
  with a broker on its own core or host. ``shared``: both on one CPU, so the
  numbers show the CPU spent per task by client plus server. ``unpinned``: both may
  run on every CPU, as on a machine nobody tuned; its rounds are paired for the
  verdicts that compare ours with 0.27 round by round.
* *Idle wake-ups.* An idle vCPU halts, and waking it for the next reply costs
  tens of µs that vary with the host's load (single-task modes swung by 2x
  between runs). For the duration of the run a PM QoS request
  (``/dev/cpu_dma_latency`` = 0, root only) makes idle CPUs poll instead, as
  latency-tuned servers do; the kernel drops the request when the file is closed
  or the process exits. ``--allow-idle`` skips it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

_PM_QOS = '/dev/cpu_dma_latency'


@dataclasses.dataclass(frozen=True)
class Placement:
    key: str
    label: str
    redis_cpus: frozenset[int]
    client_cpus: frozenset[int]

    def pin_client(self) -> Callable[[], None]:
        """A ``preexec_fn`` that pins a child process before it starts the driver."""
        cpus = set(self.client_cpus)
        return lambda: os.sched_setaffinity(0, cpus)

    def pin_redis(self, pid: int) -> None:
        """Pin every thread of the running Redis (it starts helper threads at boot)."""
        for task in Path(f'/proc/{pid}/task').iterdir():
            os.sched_setaffinity(int(task.name), set(self.redis_cpus))

    def describe(self) -> str:
        return f'Redis on CPU {_cpus(self.redis_cpus)}, measured process on CPU {_cpus(self.client_cpus)}'


def _cpus(cpus: frozenset[int]) -> str:
    return ','.join(str(cpu) for cpu in sorted(cpus))


def available(wanted: list[str]) -> list[Placement]:
    """The requested placements this machine can offer (``split`` needs two CPUs)."""
    cpus = sorted(os.sched_getaffinity(0))
    first, last, every = frozenset(cpus[:1]), frozenset(cpus[-1:]), frozenset(cpus)
    known = {
        'split': Placement('split', 'Redis and worker on separate CPUs', first, last),
        'unpinned': Placement('unpinned', 'Redis and worker left to the scheduler', every, every),
        'shared': Placement('shared', 'Redis and worker sharing one CPU', last, last),
    }
    return [known[key] for key in wanted if not (key == 'split' and len(cpus) < 2)]


@contextlib.contextmanager
def polling_idle(enabled: bool) -> Iterator[str]:
    """Hold a zero-latency PM QoS request while inside; yield how idle CPUs behave."""
    if not enabled:
        yield 'idle CPUs may halt (--allow-idle)'
        return
    try:
        descriptor = os.open(_PM_QOS, os.O_WRONLY)
    except OSError as error:
        yield f'idle CPUs may halt ({_PM_QOS} unavailable: {error.strerror})'
        return
    try:
        os.write(descriptor, struct.pack('i', 0))
        yield f'idle CPUs poll ({_PM_QOS} = 0 held during the run)'
    finally:
        os.close(descriptor)
