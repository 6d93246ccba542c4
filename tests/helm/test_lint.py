"""`helm lint --strict` passes with the default values and with every scenario under ci/."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helm.conftest import CHART, KUBE_VERSION, SCENARIOS, Helm


def test_there_are_scenarios_and_one_turns_every_option_on() -> None:
    assert CHART / 'ci' / 'all-on-values.yaml' in SCENARIOS


@pytest.mark.parametrize('values', [None, *SCENARIOS], ids=lambda path: path.name if path else 'defaults')
def test_lint_strict(helm: Helm, values: Path | None) -> None:
    arguments = ['lint', '--strict', str(CHART), '--kube-version', KUBE_VERSION]
    if values is not None:
        arguments += ['--values', str(values)]

    result = helm.run(*arguments)

    assert '1 chart(s) linted, 0 chart(s) failed' in result.stdout
    assert '[WARNING]' not in result.stdout and '[ERROR]' not in result.stdout


def test_lint_strict_fails_on_a_value_the_schema_refuses(helm: Helm) -> None:
    result = helm.run(
        'lint', '--strict', str(CHART), '--kube-version', KUBE_VERSION, '--set', 'operator.replicas=-1',
        check=False,
    )  # fmt: skip

    assert result.returncode != 0
    assert 'replicas' in result.stdout + result.stderr
