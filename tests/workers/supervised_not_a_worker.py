"""Scenario: the named class exists but is not a sergeant Worker."""

from __future__ import annotations


class NotAWorker:
    pass
