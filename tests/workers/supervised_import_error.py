"""Scenario: importing this worker module fails."""

from __future__ import annotations

import sergeant_module_that_does_not_exist  # type: ignore[import-not-found]  # noqa: F401
