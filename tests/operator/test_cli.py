"""The sergeant-operator command line: flags, their environment variables, and the objects built."""

from __future__ import annotations

from pathlib import Path

import pytest
from sergeant_operator.cli import build_operator, build_parser, main


def test_defaults_watch_all_namespaces_with_leader_election() -> None:
    arguments = build_parser().parse_args([])

    assert arguments.namespace == 'all'
    assert arguments.leader_election is True
    assert arguments.metrics_port == 8080
    assert arguments.lease_name == 'sergeant-operator'


def test_crd_management_and_privileged_pods_are_off_unless_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = build_parser().parse_args([])
    flags = build_parser().parse_args(['--manage-crd', '--allow-privileged-pods'])
    monkeypatch.setenv('SERGEANT_OPERATOR_MANAGE_CRD', 'true')
    monkeypatch.setenv('SERGEANT_OPERATOR_ALLOW_PRIVILEGED_PODS', '1')
    from_env = build_parser().parse_args([])
    overridden = build_parser().parse_args(['--no-manage-crd', '--no-allow-privileged-pods'])

    assert (defaults.manage_crd, defaults.allow_privileged_pods) == (False, False)
    assert (flags.manage_crd, flags.allow_privileged_pods) == (True, True)
    assert (from_env.manage_crd, from_env.allow_privileged_pods) == (True, True)
    assert (overridden.manage_crd, overridden.allow_privileged_pods) == (False, False)


def test_environment_variables_set_defaults_and_flags_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('SERGEANT_OPERATOR_NAMESPACE', 'jobs')
    monkeypatch.setenv('SERGEANT_OPERATOR_LEADER_ELECTION', 'false')
    monkeypatch.setenv('SERGEANT_OPERATOR_METRICS_PORT', '9000')

    from_env = build_parser().parse_args([])
    from_flags = build_parser().parse_args(['--namespace', 'other', '--leader-election'])

    assert (from_env.namespace, from_env.leader_election, from_env.metrics_port) == ('jobs', False, 9000)
    assert (from_flags.namespace, from_flags.leader_election) == ('other', True)


def test_the_operator_is_built_from_a_kubeconfig(tmp_path: Path) -> None:
    kubeconfig = tmp_path / 'kubeconfig'
    kubeconfig.write_text(
        '{"apiVersion": "v1", "kind": "Config", "current-context": "c",'
        ' "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:1"}}],'
        ' "users": [{"name": "u", "user": {"token": "t"}}],'
        ' "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}]}'
    )
    arguments = build_parser().parse_args(
        [
            '--kubeconfig',
            str(kubeconfig),
            '--namespace',
            'jobs',
            '--identity',
            'op-7',
            '--lease-namespace',
            'ops',
        ]
    )

    operator = build_operator(arguments)

    assert operator.settings.namespace == 'jobs'
    assert operator.elector is not None
    assert (operator.elector.namespace, operator.elector.identity) == ('ops', 'op-7')
    operator.kube.close()


def test_a_missing_kubeconfig_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(['--kubeconfig', str(tmp_path / 'absent')])

    assert code == 2
    assert 'cannot reach a Kubernetes API server' in capsys.readouterr().err
