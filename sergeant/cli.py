"""The ``sergeant`` command line.

Each subcommand adds its parser in a function of its own and sets a ``handler``
that receives the parsed arguments and its parser, and returns the exit code.
``supervise`` is here; the operating commands (``queues``, ``dlq``, ``push``,
``purge``) live in :mod:`sergeant.commands`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from . import __version__
from .commands import add_commands
from .supervisor import OptionError, add_arguments, options_from, run

Handler = Callable[[argparse.Namespace, argparse.ArgumentParser], int]


def add_supervise_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        'supervise',
        help='run and supervise worker processes',
        description='Run N worker processes, replace them when they end, crash or use too much memory, '
        'and drain them on SIGTERM/SIGINT.',
    )
    add_arguments(parser)
    parser.set_defaults(handler=run_supervise, command_parser=parser)


def run_supervise(arguments: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    try:
        options = options_from(arguments)
    except OptionError as error:
        parser.error(str(error))
    return run(options)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='sergeant', description='Sergeant task queue')
    parser.add_argument('--version', action='version', version=f'sergeant {__version__}')
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND')
    add_supervise_command(subparsers)
    add_commands(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    if arguments.command is None:
        parser.print_help()
        return 2
    handler: Handler = arguments.handler
    return handler(arguments, arguments.command_parser)


if __name__ == '__main__':
    sys.exit(main())
