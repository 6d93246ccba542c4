"""A security boundary: rendered pods meet the 'restricted' profile, privileges are refused."""

from __future__ import annotations

from typing import Any

import pytest
from sergeant_operator.deployment import desired_deployment
from sergeant_operator.resource import parse_worker
from sergeant_operator.security import pod_violations

from tests.operator.pod_security import baseline, restricted
from tests.operator.test_resource import with_spec

# Each asks for something refused by default, as a spec.template.
PRIVILEGED_TEMPLATES = {
    'privileged': {'securityContext': {'privileged': True}},
    'escalation': {'securityContext': {'allowPrivilegeEscalation': True}},
    'added-capability': {'securityContext': {'capabilities': {'add': ['SYS_ADMIN']}}},
    'root-container': {'securityContext': {'runAsUser': 0}},
    'root-pod': {'podSecurityContext': {'runAsUser': 0}},
    'root-allowed': {'podSecurityContext': {'runAsNonRoot': False}},
    'unconfined': {'podSecurityContext': {'seccompProfile': {'type': 'Unconfined'}}},
}


def pod_of(template: dict[str, Any] | None = None) -> dict[str, Any]:
    obj = with_spec(template=template) if template is not None else with_spec()
    pod: dict[str, Any] = desired_deployment(parse_worker(obj), 1)['spec']['template']['spec']
    return pod


def test_the_checker_knows_a_bad_pod() -> None:
    pod = {
        'hostNetwork': True,
        'containers': [{'name': 'c', 'securityContext': {'privileged': True}, 'ports': [{'hostPort': 80}]}],
        'volumes': [{'name': 'root', 'hostPath': {'path': '/'}}],
    }
    assert len(baseline(pod)) == 4
    assert len(restricted(pod)) > len(baseline(pod))


def test_the_rendered_pod_meets_the_restricted_profile() -> None:
    pod = pod_of()

    assert restricted(pod) == []
    assert pod_violations(pod) == []


def test_a_template_changes_only_the_security_fields_it_names() -> None:
    template = {
        'podSecurityContext': {'runAsUser': 2000, 'fsGroup': 2000},
        'securityContext': {'readOnlyRootFilesystem': False, 'capabilities': {'add': ['NET_BIND_SERVICE']}},
    }
    pod = pod_of(template)
    [container] = pod['containers']

    assert pod['securityContext'] == {
        'runAsNonRoot': True,
        'seccompProfile': {'type': 'RuntimeDefault'},
        'runAsUser': 2000,
        'fsGroup': 2000,
    }
    assert container['securityContext'] == {
        'allowPrivilegeEscalation': False,
        'readOnlyRootFilesystem': False,
        'capabilities': {'drop': ['ALL'], 'add': ['NET_BIND_SERVICE']},
    }
    assert restricted(pod) == []
    assert pod_violations(pod) == []


@pytest.mark.parametrize('template', PRIVILEGED_TEMPLATES.values(), ids=PRIVILEGED_TEMPLATES.keys())
def test_what_is_refused_is_what_the_restricted_profile_forbids(template: dict[str, Any]) -> None:
    pod = pod_of(template)

    assert restricted(pod) != []
    [problem] = pod_violations(pod)
    context = 'securityContext' if 'podSecurityContext' in template else 'containers[worker].securityContext'
    assert problem.startswith(context)


def test_host_namespaces_and_any_container_are_checked() -> None:
    pod = {
        'hostPID': True,
        'hostIPC': True,
        'hostNetwork': False,
        'initContainers': [{'name': 'setup', 'securityContext': {'privileged': True}}],
        'containers': [{'name': 'worker', 'securityContext': {'windowsOptions': {'hostProcess': True}}}],
    }

    assert pod_violations(pod) == [
        'spec.hostPID is true',
        'spec.hostIPC is true',
        'initContainers[setup].securityContext.privileged is true',
        'containers[worker].securityContext.windowsOptions.hostProcess is true',
    ]
