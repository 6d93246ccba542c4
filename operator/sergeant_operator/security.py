"""What a SergeantWorker may not ask of its pods, checked on the Deployment the operator would apply (pure).

Whoever may create a SergeantWorker makes the operator create a Deployment, so the
resource is checked as a Deployment would be: unless the operator runs with
``--allow-privileged-pods``, a pod template that asks for any of these is refused
(the Deployment is neither created nor changed, Ready=False with reason
``PrivilegedPodRefused`` and a Warning event say why):

* a privileged container, or host namespaces (``hostNetwork``, ``hostPID``, ``hostIPC``);
* added capabilities other than ``NET_BIND_SERVICE`` (the one Pod Security's
  'restricted' profile allows);
* running as root: ``runAsUser: 0`` or ``runAsNonRoot: false``, on the pod or a container;
* ``allowPrivilegeEscalation: true``;
* the ``Unconfined`` seccomp profile, or a Windows host-process container.

Fields that are not set are not refused here: the operator's defaults fill them in
(see :mod:`.deployment`), and those defaults meet the 'restricted' profile.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

ALLOWED_ADDED_CAPABILITIES = frozenset({'NET_BIND_SERVICE'})
_HOST_NAMESPACES = ('hostNetwork', 'hostPID', 'hostIPC')


def pod_violations(pod_spec: Mapping[str, Any]) -> list[str]:
    """Each thing ``pod_spec`` asks for that the operator refuses by default, as a phrase naming the field."""
    problems = [f'spec.{field} is true' for field in _HOST_NAMESPACES if pod_spec.get(field) is True]
    problems += _context_violations(pod_spec.get('securityContext'), 'securityContext')
    for kind, container in _containers(pod_spec):
        name = container.get('name', '?')
        problems += _context_violations(container.get('securityContext'), f'{kind}[{name}].securityContext')
    return problems


def _containers(pod_spec: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for kind in ('initContainers', 'containers', 'ephemeralContainers'):
        for container in pod_spec.get(kind) or []:
            if isinstance(container, Mapping):
                yield kind, container


def _context_violations(context: object, where: str) -> list[str]:
    if not isinstance(context, Mapping):
        return []
    problems = []
    if context.get('privileged') is True:
        problems.append(f'{where}.privileged is true')
    if context.get('allowPrivilegeEscalation') is True:
        problems.append(f'{where}.allowPrivilegeEscalation is true')
    if context.get('runAsUser') == 0:
        problems.append(f'{where}.runAsUser is 0 (root)')
    if context.get('runAsNonRoot') is False:
        problems.append(f'{where}.runAsNonRoot is false')
    added = (context.get('capabilities') or {}).get('add') or []
    extra = sorted(str(capability) for capability in added if capability not in ALLOWED_ADDED_CAPABILITIES)
    if extra:
        problems.append(f'{where}.capabilities.add has {", ".join(extra)}')
    if (context.get('seccompProfile') or {}).get('type') == 'Unconfined':
        problems.append(f'{where}.seccompProfile is Unconfined')
    if (context.get('windowsOptions') or {}).get('hostProcess') is True:
        problems.append(f'{where}.windowsOptions.hostProcess is true')
    return problems
