"""Helpers of ``benchmark/run.py``: the Redis server, the 0.27 environment, measurements, the report.

Nothing here is part of the library; it runs under the project's venv only. The
drivers in ``benchmark/drivers/`` are separate scripts run in each library's own
interpreter and talk to this package only through command-line flags and JSON.
"""
