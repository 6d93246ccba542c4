"""``python -m sergeant.supervisor``: Sergeant 0.27's command line for the supervisor.

Same flags as ``sergeant supervise``, 0.27's spellings included
(``--concurrent-worker``, ``--worker-module=...``); each can also come from its
``SERGEANT_*`` environment variable.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .options import OptionError, add_arguments, options_from
from .supervisor import run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m sergeant.supervisor', description='Run and supervise Sergeant worker processes.'
    )
    add_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    try:
        options = options_from(arguments)
    except OptionError as error:
        parser.error(str(error))
    return run(options)


if __name__ == '__main__':
    raise SystemExit(main())
