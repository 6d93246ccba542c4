"""mkdocs hooks: the reference pages that are generated from the code, so that they cannot drift.

A page asks for generated text with a marker on a line of its own::

    <!-- sergeant:generate cli -->               every subcommand of ``sergeant`` (sergeant.cli.build_parser)
    <!-- sergeant:generate supervisor -->        ``python -m sergeant.supervisor``'s flags
    <!-- sergeant:generate metrics -->           the ``sergeant_*`` families of the supervisor's /metrics
    <!-- sergeant:generate crd -->               SergeantWorker fields, from the CRD's openAPIV3Schema
    <!-- sergeant:generate helm-values -->       the chart's values.yaml with values.schema.json
    <!-- sergeant:generate alerts -->            the alerts of the chart's rules file, one line each
    <!-- sergeant:include RELIABILITY.md -->     a Markdown file of the repository root, whole
    <!-- sergeant:include README.md#Title -->    one ``## Title`` section of it, without its heading
    <!-- sergeant:include examples/x/y.py -->   a file of examples/, as a code block

Links of included text are made relative to the page: to the pages that hold
README.md, RELIABILITY.md and docs/architecture.md, to images (copied into the
site under ``repo/``), and other repository files become plain code text.

mkdocs loads this file by path (``hooks:`` in mkdocs.yml); tests/docs loads it the
same way to check that each generated page holds every flag, metric, field and value.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import posixpath
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
CRD = REPO / 'operator' / 'crd' / 'sergeantworkers.sergeant.io.yaml'
VALUES = REPO / 'helm' / 'sergeant' / 'values.yaml'
VALUES_SCHEMA = REPO / 'helm' / 'sergeant' / 'values.schema.json'
RULES = REPO / 'helm' / 'sergeant' / 'rules' / 'sergeant.rules.yaml'
# repository files that are pages of the site, and where
PAGES_OF_REPO_FILES = {
    'README.md': 'index.md',
    'RELIABILITY.md': 'reliability.md',
    'docs/architecture.md': 'architecture.md',
}
INCLUDED = ('README.md', 'RELIABILITY.md')  # the files markers may include
HELP_COLUMNS = '100'  # argparse wraps --help to $COLUMNS

_MARKER = re.compile(r'^<!-- sergeant:(generate|include) ([^>]+?) -->$', re.MULTILINE)
_LINK = re.compile(r'(!?)\[([^\]]*)\]\(([^)\s]+)\)')


# -- argparse ------------------------------------------------------------------------


@contextlib.contextmanager
def _help_width() -> Iterator[None]:
    saved = os.environ.get('COLUMNS')
    os.environ['COLUMNS'] = HELP_COLUMNS
    try:
        yield
    finally:
        if saved is None:
            del os.environ['COLUMNS']
        else:
            os.environ['COLUMNS'] = saved


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """``(name, help, parser)`` of each subcommand, aliases left out, in the order they were added."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or '' for choice in action._choices_actions}
            seen: set[int] = set()
            for name, subparser in action.choices.items():
                if id(subparser) not in seen:
                    seen.add(id(subparser))
                    found.append((name, helps.get(name, ''), subparser))
    return found


def walk_parsers(
    parser: argparse.ArgumentParser, prog: str | None = None
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """``(command line, parser)`` of ``parser`` and of every subcommand below it, depth first."""
    prog = prog or parser.prog
    yield prog, parser
    for name, _help, subparser in _subcommands(parser):
        yield from walk_parsers(subparser, f'{prog} {name}')


def option_strings(parser: argparse.ArgumentParser) -> list[str]:
    """Every flag the parser itself takes (hidden aliases too), without -h/--help."""
    return [
        flag
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction)
        for flag in action.option_strings
    ]


def _cell(text: str) -> str:
    """``text`` on one line of a table: pipes escaped, and ``<`` outside code so it is no HTML tag."""
    parts = ' '.join(text.split()).replace('|', '\\|').split('`')
    return '`'.join(part.replace('<', '&lt;') if index % 2 == 0 else part for index, part in enumerate(parts))


def _parser_section(prog: str, parser: argparse.ArgumentParser, level: int) -> str:
    lines = [f'{"#" * level} `{prog}`', '']
    if parser.description:
        lines += [parser.description, '']
    with _help_width():
        lines += ['```text', parser.format_help().rstrip(), '```', '']
    subcommands = _subcommands(parser)
    if subcommands:
        lines += ['| subcommand | what it does |', '| --- | --- |']
        lines += [f'| `{prog} {name}` | {_cell(text)} |' for name, text, _parser in subcommands]
        lines.append('')
    hidden = [
        (flag, action)
        for action in parser._actions
        if action.help == argparse.SUPPRESS
        for flag in action.option_strings
    ]
    for flag, action in hidden:
        shown = next(
            (
                other.option_strings[0]
                for other in parser._actions
                if other.help != argparse.SUPPRESS
                and other.option_strings
                and other.metavar == action.metavar
                and other.option_strings[0].startswith(flag)
            ),
            None,
        )
        also = f', another spelling of `{shown}`' if shown else ''
        lines += [f'Also accepted, not shown by `--help`: `{flag}`{also}.', '']
    return '\n'.join(lines)


def cli_page() -> str:
    """Every command of ``sergeant``, from :func:`sergeant.cli.build_parser` as it is now."""
    from sergeant.cli import build_parser

    parts = []
    for prog, parser in walk_parsers(build_parser()):
        level = 2 + prog.count(' ')
        parts.append(_parser_section(prog, parser, min(level, 4)))
    return '\n'.join(parts)


def supervisor_page() -> str:
    """The flags of ``python -m sergeant.supervisor`` (the same as ``sergeant supervise``)."""
    from sergeant.supervisor.__main__ import build_parser

    return _parser_section('python -m sergeant.supervisor', build_parser(), 2)


# -- metrics -------------------------------------------------------------------------

_LABEL_VALUES_DOC = {
    'worker': "the worker's `config.name`",
    'queue': "the queue the supervisor probes (its workers' `config.name`)",
    'slot': "the worker process's slot in the pool, `0` to `--concurrent-workers` - 1",
}


def _label_values() -> dict[str, str]:
    from sergeant.metrics.snapshot import OUTCOMES
    from sergeant.observability.collector import QUEUE_STATES
    from sergeant.supervisor.process import RESPAWN_REASONS

    return {
        **_LABEL_VALUES_DOC,
        'outcome': ', '.join(f'`{outcome}`' for outcome in OUTCOMES),
        'state': ', '.join(f'`{state}`' for state in QUEUE_STATES),
        'reason': ', '.join(f'`{reason.name.lower()}` ({reason.value})' for reason in RESPAWN_REASONS),
        'source': '`worker` (failed fetches of the workers), `probe` (failed probes of the supervisor)',
    }


def exposed_names(name: str, kind: str) -> list[str]:
    """The sample names a family shows in the text format."""
    if kind == 'counter':
        return [f'{name}_total']
    if kind == 'histogram':
        return [f'{name}_bucket', f'{name}_sum', f'{name}_count']
    return [name]


def metrics_page() -> str:
    """Every ``sergeant_*`` family of :mod:`sergeant.observability.collector`, with its labels."""
    from sergeant.observability.collector import FAMILIES

    values = _label_values()
    lines = ['| metric | type | labels | what it measures |', '| --- | --- | --- | --- |']
    for family in FAMILIES:
        names = exposed_names(family.name, family.kind)
        labels = ', '.join(f'`{label}`' for label in family.labels) or '—'
        lines.append(f'| `{names[0]}` | {family.kind} | {labels} | {_cell(family.help)} |')
        lines += [f'| `{extra}` | | | |' for extra in names[1:]]
    lines += ['', '| label | values |', '| --- | --- |']
    used = sorted({label for family in FAMILIES for label in family.labels})
    lines += [f'| `{label}` | {values.get(label, "")} |' for label in used]
    return '\n'.join(lines) + '\n'


# -- JSON schemas: the CRD and the chart's values -------------------------------------


def _type_of(schema: dict[str, Any]) -> str:
    if schema.get('x-kubernetes-int-or-string'):
        return 'integer or string'
    if 'const' in schema:
        return f'`{json.dumps(schema["const"])}`'
    if 'enum' in schema:
        return 'one of ' + ', '.join(f'`{value}`' for value in schema['enum'])
    if 'anyOf' in schema and 'type' not in schema:
        return ' or '.join(_type_of(option) for option in schema['anyOf'])
    kind = schema.get('type', 'any')
    if kind == 'array':
        return f'array of {_type_of(schema.get("items", {}))}'
    if kind == 'object' and isinstance(schema.get('additionalProperties'), dict):
        return f'map of {_type_of(schema["additionalProperties"])}'
    return str(kind)


def _constraints(schema: dict[str, Any]) -> str:
    found = []
    for key, text in (('minimum', '≥ {}'), ('maximum', '≤ {}'), ('minLength', 'at least {} characters')):
        if key in schema:
            found.append('not empty' if (key, schema[key]) == ('minLength', 1) else text.format(schema[key]))
    if 'pattern' in schema:
        found.append(f'matches `{schema["pattern"]}`')
    for rule in schema.get('x-kubernetes-validations', []):
        found.append(rule.get('message') or f'`{rule["rule"]}`')
    if 'oneOf' in schema:
        choices = [
            ' and '.join(f'`{name}`' for name in option.get('required', [])) for option in schema['oneOf']
        ]
        found.append('exactly one of ' + ', '.join(choices))
    return '; '.join(found)


def schema_fields(
    schema: dict[str, Any], prefix: str, required: bool = False
) -> Iterator[tuple[str, dict[str, Any], bool]]:
    """``(path, schema, required)`` of every field under ``schema``; arrays of objects as ``path[]``."""
    yield prefix, schema, required
    items = schema.get('items', {})
    if schema.get('type') == 'array' and 'properties' in items:
        yield from _properties(items, f'{prefix}[]')
    yield from _properties(schema, prefix)


def _properties(schema: dict[str, Any], prefix: str) -> Iterator[tuple[str, dict[str, Any], bool]]:
    required = set(schema.get('required', []))
    for name, child in schema.get('properties', {}).items():
        yield from schema_fields(child, f'{prefix}.{name}' if prefix else name, name in required)


def crd_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text())
    [version] = crd['spec']['versions']
    schema: dict[str, Any] = version['schema']['openAPIV3Schema']
    return schema


def crd_paths() -> list[str]:
    schema = crd_schema()['properties']
    return [path for top in ('spec', 'status') for path, _schema, _req in schema_fields(schema[top], top)]


def crd_page() -> str:
    """A table per top-level part (spec, status): every field with its type, default and rules."""
    crd = yaml.safe_load(CRD.read_text())
    [version] = crd['spec']['versions']
    schema = version['schema']['openAPIV3Schema']
    lines = [
        f'`apiVersion: {crd["spec"]["group"]}/{version["name"]}`, `kind: {crd["spec"]["names"]["kind"]}` '
        f'(short name `{", ".join(crd["spec"]["names"].get("shortNames", []))}`), CRD revision '
        f'{crd["metadata"]["annotations"]["sergeant.io/crd-revision"]}.',
        '',
    ]
    for top in ('spec', 'status'):
        lines += [f'## `{top}`', '']
        if schema['properties'][top].get('description'):
            lines += [_cell(schema['properties'][top]['description']), '']
        lines += ['| field | type | required | default | rules | description |']
        lines += ['| --- | --- | --- | --- | --- | --- |']
        for path, field, required in schema_fields(schema['properties'][top], top):
            if path == top:
                continue
            default = f'`{json.dumps(field["default"])}`' if 'default' in field else ''
            lines.append(
                f'| `{path}` | {_type_of(field)} | {"yes" if required else ""} | {default} '
                f'| {_cell(_constraints(field))} | {_cell(field.get("description", ""))} |'
            )
        lines.append('')
    columns = version.get('additionalPrinterColumns', [])
    lines += ['## `kubectl get sgw` columns', '', '| column | from | description |', '| --- | --- | --- |']
    lines += [
        f'| {column["name"]} | `{column["jsonPath"]}` | {_cell(column.get("description", ""))} |'
        for column in columns
    ]
    return '\n'.join(lines) + '\n'


def values_leaves(values: Any, prefix: str = '') -> Iterator[tuple[str, Any]]:
    """``(dotted key, default)`` of every setting: keys whose value is not a non-empty mapping."""
    for key, value in values.items():
        path = f'{prefix}.{key}' if prefix else key
        if isinstance(value, dict) and value:
            yield from values_leaves(value, path)
        else:
            yield path, value


def values_comments() -> tuple[dict[str, str], dict[str, str]]:
    """The ``# --`` comment above each key of values.yaml, and the examples (indented lines) in them."""
    descriptions: dict[str, str] = {}
    examples: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    text: list[str] = []
    example: list[str] = []
    open_comment = False
    for line in VALUES.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith('# --'):
            text, example, open_comment = [stripped[4:].strip()], [], True
        elif stripped.startswith('#') and open_comment:
            body = stripped[1:]
            if body.startswith('   ') or example:
                example.append(body[1:])
            else:
                text.append(body.strip())
        elif not stripped:
            text, example, open_comment = [], [], False
        elif match := re.match(r'^(\s*)([A-Za-z_][\w.-]*):(\s|$)', line):
            indent = len(match.group(1))
            while stack and stack[-1][0] >= indent:
                stack.pop()
            stack.append((indent, match.group(2)))
            path = '.'.join(name for _indent, name in stack)
            if text:
                descriptions[path] = ' '.join(text)
            if example:
                examples[path] = '\n'.join(example)
            text, example, open_comment = [], [], False
    return descriptions, examples


def _inline_refs(schema: Any, definitions: dict[str, Any]) -> Any:
    """``schema`` with every ``{"$ref": "#/definitions/x"}`` replaced by the definition itself."""
    if isinstance(schema, list):
        return [_inline_refs(item, definitions) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if '$ref' in schema:
        return _inline_refs(definitions[schema['$ref'].rsplit('/', 1)[-1]], definitions)
    return {key: _inline_refs(value, definitions) for key, value in schema.items()}


def _values_schema_at(path: str) -> dict[str, Any]:
    root = json.loads(VALUES_SCHEMA.read_text())
    schema: dict[str, Any] = _inline_refs(root, root.get('definitions', {}))
    for name in path.split('.'):
        schema = schema.get('properties', {}).get(name, {})
    return schema


_JSON_TYPES = {str: 'string', int: 'integer', bool: 'boolean', float: 'number', list: 'array', dict: 'object'}


def values_page() -> str:
    """Every setting of helm/sergeant/values.yaml: its type (from the schema), default and comment."""
    values = yaml.safe_load(VALUES.read_text())
    descriptions, examples = values_comments()
    lines = ['| value | type | default | description |', '| --- | --- | --- | --- |']
    leaves = dict(values_leaves(values))
    described_groups = {path for path in descriptions if path not in leaves}
    for path, default in leaves.items():
        # a comment on a group of settings (metrics.serviceMonitor) gets a row before its first setting
        for group in sorted(described_groups):
            if path.startswith(group + '.'):
                described_groups.discard(group)
                lines.append(f'| `{group}` | object | | {_cell(descriptions[group])} |')
        schema = _values_schema_at(path)
        kind = _type_of(schema) if schema else _JSON_TYPES.get(type(default), 'any')
        description = descriptions.get(path, '')
        if path in examples:
            description = description.removesuffix('Example:').strip() + ' See the example below.'
        lines.append(f'| `{path}` | {kind} | `{json.dumps(default)}` | {_cell(description)} |')
    lines.append('')
    for path, example in examples.items():
        lines += [f'Example of `{path}`:', '', '```yaml', f'{path.rsplit(".", 1)[-1]}:', example, '```', '']
    return '\n'.join(lines)


# -- alerts ----------------------------------------------------------------------------


def alerts() -> list[dict[str, Any]]:
    rules = yaml.safe_load(RULES.read_text())
    return [rule for group in rules['groups'] for rule in group['rules'] if 'alert' in rule]


def alerts_page() -> str:
    lines = ['| alert | severity | for | summary |', '| --- | --- | --- | --- |']
    for rule in alerts():
        anchor = rule['alert'].lower()
        summary = re.sub(r'\{\{[^}]*\}\}', '…', rule['annotations']['summary'])
        lines.append(
            f'| [{rule["alert"]}](#{anchor}) | {rule["labels"]["severity"]} | {rule.get("for", "—")} '
            f'| {_cell(summary)} |'
        )
    return '\n'.join(lines) + '\n'


# -- included Markdown -----------------------------------------------------------------


def _section(text: str, title: str) -> str:
    match = re.search(rf'^## {re.escape(title)}\n(.*?)(?=^## |\Z)', text, re.MULTILINE | re.DOTALL)
    if match is None:
        raise ValueError(f'no section "## {title}"')
    return match.group(1).strip() + '\n'


def _rebase_links(text: str, source: str, page: str) -> str:
    """Make the links of ``source`` (a repository path) right for the site page ``page``."""
    page_dir = posixpath.dirname(page)

    def rebase(match: re.Match[str]) -> str:
        bang, label, target = match.groups()
        if re.match(r'^[a-z]+:|^#', target):
            return match.group(0)
        path, _hash, anchor = target.partition('#')
        repo_path = posixpath.normpath(posixpath.join(posixpath.dirname(source), path))
        if repo_path in PAGES_OF_REPO_FILES:
            site_path = PAGES_OF_REPO_FILES[repo_path]
        elif bang:
            site_path = f'repo/{repo_path}'
        else:
            return f'{label} (`{repo_path}` in the repository)'
        relative = posixpath.relpath(site_path, page_dir or '.')
        return f'{bang}[{label}]({relative}{"#" + anchor if anchor else ""})'

    return _LINK.sub(rebase, text)


def include(spec: str, page: str) -> str:
    name, _hash, title = spec.partition('#')
    if name.startswith('examples/') and not title:
        language = {'.yaml': 'yaml', '.py': 'python'}.get(posixpath.splitext(name)[1], 'text')
        return f'```{language} title="{name}"\n{(REPO / name).read_text().rstrip()}\n```\n'
    if name not in INCLUDED:
        raise ValueError(f'{name} is not one of the files pages may include: {", ".join(INCLUDED)}')
    text = (REPO / name).read_text()
    return _rebase_links(_section(text, title) if title else text, name, page)


GENERATORS = {
    'cli': cli_page,
    'supervisor': supervisor_page,
    'metrics': metrics_page,
    'crd': crd_page,
    'helm-values': values_page,
    'alerts': alerts_page,
}


def expand(markdown: str, page: str) -> str:
    """Replace every marker of ``markdown`` (the page ``page``, relative to docs/) with its text."""

    def replace(match: re.Match[str]) -> str:
        kind, argument = match.groups()
        if kind == 'include':
            return include(argument.strip(), page)
        return GENERATORS[argument.strip()]()

    return _MARKER.sub(replace, markdown)


# -- the mkdocs events -------------------------------------------------------------------


def on_files(files: Any, config: Any) -> Any:
    """Copy the images the included files show into the site, under repo/."""
    from mkdocs.structure.files import File

    for name in INCLUDED:
        for bang, _label, target in _LINK.findall((REPO / name).read_text()):
            if bang and not re.match(r'^[a-z]+:', target):
                image = REPO / target
                files.append(File.generated(config, f'repo/{target}', abs_src_path=str(image)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    return expand(markdown, page.file.src_uri)


def on_serve(server: Any, config: Any, builder: Any) -> Any:
    """`make docs-serve` rebuilds when a file the generated pages come from changes."""
    for path in (CRD, VALUES, VALUES_SCHEMA, RULES, REPO / 'sergeant', *(REPO / name for name in INCLUDED)):
        server.watch(str(path))
    return server


_REST_ROLE = re.compile(r':(?:class|meth|func|data|mod|attr|exc|obj):(?=<code>)')


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    """Docstrings use Sphinx roles (:class:`X`); the rendered text keeps the code, not the role."""
    return _REST_ROLE.sub('', html)
