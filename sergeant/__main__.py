"""``python -m sergeant``: the ``sergeant`` command (:mod:`sergeant.cli`)."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == '__main__':
    sys.exit(main())
