"""The ``sergeant`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='sergeant', description='Sergeant task queue')
    parser.add_argument('--version', action='version', version=f'sergeant {__version__}')
    parser.add_subparsers(dest='command', metavar='COMMAND')
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    if arguments.command is None:
        parser.print_help()
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
