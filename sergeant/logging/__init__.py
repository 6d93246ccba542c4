"""Logging helpers: one-JSON-object-per-line output and Logstash handlers.

:class:`~.json_lines.JsonLinesFormatter` is what ``config.Logging(format='json')``
and the supervisor's ``--log-format json`` use; :mod:`.logstash` keeps Sergeant
0.27's ``sergeant.logging.logstash.LogstashHandler`` and
``BufferedLogstashHandler`` working.
"""

from __future__ import annotations

from . import logstash
from .json_lines import JsonLinesFormatter

__all__ = ['JsonLinesFormatter', 'logstash']
