"""The consume loop, end to end: one task's path from fetch to acknowledgement.

* :mod:`.stream` fetches: pops (ahead of time, within a time budget), decodes
  through the codec, screens redeliveries (:mod:`.isolation`) and hands tasks out;
  it also settles them: acknowledge, retry, or dead-letter, in one place, by the
  one rule of :mod:`.retries`;
* an executor (:mod:`sergeant.executor`, serial or threaded) runs each task with
  a killer (:mod:`sergeant.killer`) enforcing time limits;
* :mod:`.runner` runs one task through the user's :class:`.hooks.Hooks` and
  turns what happened into an ``Outcome``; :mod:`.thread_guard` ends the threads
  a task left running;
* :mod:`.leases` keeps every held lease alive and sends acknowledgements;
* :mod:`.journal` notes each task as it starts, so that after a crash
  :mod:`.predecessor` hands back exactly what the dead worker held;
* :mod:`.summary` tells how the loop ended;
* :mod:`.consume` assembles one loop from these and tears it down; :mod:`.events`
  turns what the stream reports into outcome counts, handlers, logs and metrics.

:class:`sergeant.worker.Worker` assembles these; nothing here imports it.
"""
