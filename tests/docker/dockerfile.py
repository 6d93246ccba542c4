"""A small Dockerfile reader, so tests run the images' own command lines rather than copies of them.

Reads instructions (comments dropped, continuation lines joined) into build
stages, and answers what a container of the final stage would run: its
ENTRYPOINT and HEALTHCHECK command (exec form only: the JSON arrays Docker runs
without a shell) and its ENV.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
from pathlib import Path

DOCKER = Path(__file__).resolve().parents[2] / 'docker'
WORKER_DOCKERFILE = DOCKER / 'worker.Dockerfile'
OPERATOR_DOCKERFILE = DOCKER / 'operator.Dockerfile'


@dataclasses.dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, ENV...
    arguments: str


@dataclasses.dataclass(frozen=True)
class Stage:
    base: str  # the FROM image, with global ARG defaults substituted
    name: str | None
    instructions: tuple[Instruction, ...]

    def all(self, keyword: str) -> list[str]:
        return [item.arguments for item in self.instructions if item.keyword == keyword]

    def last(self, keyword: str) -> str:
        found = self.all(keyword)
        assert found, f'no {keyword} in the stage FROM {self.base}'
        return found[-1]


def instructions(text: str) -> list[Instruction]:
    logical: list[str] = []
    pending = ''
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith('#') or (not stripped and not pending):
            continue
        if stripped.endswith('\\'):
            pending += stripped[:-1] + ' '
            continue
        logical.append(pending + stripped)
        pending = ''
    assert not pending, 'the Dockerfile ends inside a continued line'
    result = []
    for entry in logical:
        keyword, _, arguments = entry.partition(' ')
        result.append(Instruction(keyword.upper(), arguments.strip()))
    return result


def stages(path: Path) -> list[Stage]:
    global_args: dict[str, str] = {}
    found: list[Stage] = []
    current: list[Instruction] | None = None
    base, name = '', None
    for instruction in instructions(path.read_text()):
        if instruction.keyword == 'FROM':
            if current is not None:
                found.append(Stage(base, name, tuple(current)))
            words = instruction.arguments.split()
            base = re.sub(r'\$\{(\w+)\}|\$(\w+)', lambda m: global_args[m.group(1) or m.group(2)], words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == 'AS' else None
            current = []
        elif current is None:
            if instruction.keyword == 'ARG':
                key, _, value = instruction.arguments.partition('=')
                global_args[key] = value
        else:
            current.append(instruction)
    if current is not None:
        found.append(Stage(base, name, tuple(current)))
    return found


def final_stage(path: Path) -> Stage:
    return stages(path)[-1]


def exec_form(arguments: str) -> list[str]:
    """The JSON array of an exec-form instruction; anything else (a shell form) fails."""
    command = json.loads(arguments)
    assert isinstance(command, list) and all(isinstance(word, str) for word in command), arguments
    return command


def entrypoint(path: Path) -> list[str]:
    return exec_form(final_stage(path).last('ENTRYPOINT'))


def healthcheck(path: Path) -> tuple[dict[str, str], list[str]]:
    """HEALTHCHECK's options (``{'interval': '30s', ...}``) and its exec-form command."""
    options_text, marker, command = final_stage(path).last('HEALTHCHECK').partition('CMD ')
    assert marker, 'HEALTHCHECK without CMD'
    options = dict(option.removeprefix('--').split('=', 1) for option in options_text.split())
    return options, exec_form(command)


def env(path: Path) -> dict[str, str]:
    """The final stage's ENV, in ``key=value`` form (values kept unexpanded, e.g. ``$PATH``)."""
    variables: dict[str, str] = {}
    for arguments in final_stage(path).all('ENV'):
        for word in shlex.split(arguments):
            key, separator, value = word.partition('=')
            assert separator, f'ENV in the legacy "key value" form: {arguments}'
            variables[key] = value
    return variables
