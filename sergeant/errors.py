"""Error tree of the library: every error Sergeant raises derives from SergeantError.

Control flow inside a worker (retry, requeue, stop, ...) is *not* here: those are
``BaseException`` interrupts in :mod:`sergeant.interrupts`, so a user's
``except Exception`` cannot swallow them.
"""

from __future__ import annotations


class SergeantError(Exception):
    """Root of every error raised by Sergeant."""


class ConfigError(SergeantError, ValueError):
    """A configuration value is invalid; the message names the field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f'{field}: {problem}')
        self.field = field
        self.problem = problem


class ConnectorError(SergeantError):
    """The broker backend failed; the driver's error is chained as ``__cause__``."""


class EncodingError(SergeantError):
    """A value could not be encoded, or a payload could not be decoded."""


class SignatureError(EncodingError):
    """A payload's signature is missing or does not match the configured key."""
