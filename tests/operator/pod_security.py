"""Kubernetes' Pod Security Standards, 'baseline' and 'restricted' profiles, as checks on a pod spec.

Written from the published standard (the controls as of Kubernetes 1.25 and later), so a rendered
pod template can be checked without an API server; the end-to-end tests let the API server's own
PodSecurity admission judge the same templates. Each check returns what it found wrong.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

BASELINE_CAPABILITIES = frozenset(
    {
        'AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'MKNOD', 'NET_BIND_SERVICE',
        'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT',
    }
)  # fmt: skip
SAFE_SYSCTLS = frozenset(
    {
        'kernel.shm_rmid_forced', 'net.ipv4.ip_local_port_range', 'net.ipv4.ip_unprivileged_port_start',
        'net.ipv4.tcp_syncookies', 'net.ipv4.ping_group_range', 'net.ipv4.ip_local_reserved_ports',
        'net.ipv4.tcp_keepalive_time', 'net.ipv4.tcp_fin_timeout', 'net.ipv4.tcp_keepalive_intvl',
        'net.ipv4.tcp_keepalive_probes',
    }
)  # fmt: skip
SELINUX_TYPES = frozenset({'', 'container_t', 'container_init_t', 'container_kvm_t', 'container_engine_t'})
RESTRICTED_VOLUME_SOURCES = frozenset(
    {'configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected'}
    | {'secret'}
)


def containers(pod: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for kind in ('initContainers', 'containers', 'ephemeralContainers'):
        yield from pod.get(kind) or []


def _contexts(pod: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    yield 'pod', pod.get('securityContext') or {}
    for container in containers(pod):
        yield f'container {container["name"]}', container.get('securityContext') or {}


def baseline(pod: Mapping[str, Any]) -> list[str]:
    problems = [f'{field} is set' for field in ('hostNetwork', 'hostPID', 'hostIPC') if pod.get(field)]
    problems += [f'volume {v["name"]} is a hostPath' for v in pod.get('volumes') or [] if 'hostPath' in v]
    for where, context in _contexts(pod):
        if (context.get('windowsOptions') or {}).get('hostProcess'):
            problems.append(f'{where}: hostProcess')
        if context.get('privileged'):
            problems.append(f'{where}: privileged')
        added = set((context.get('capabilities') or {}).get('add') or [])
        if added - BASELINE_CAPABILITIES:
            problems.append(f'{where}: adds {sorted(added - BASELINE_CAPABILITIES)}')
        selinux = context.get('seLinuxOptions') or {}
        if selinux.get('type', '') not in SELINUX_TYPES or selinux.get('user') or selinux.get('role'):
            problems.append(f'{where}: seLinuxOptions {selinux}')
        if context.get('procMount', 'Default') != 'Default':
            problems.append(f'{where}: procMount {context["procMount"]}')
        if (context.get('seccompProfile') or {}).get('type') == 'Unconfined':
            problems.append(f'{where}: seccomp Unconfined')
        if (context.get('appArmorProfile') or {}).get('type') == 'Unconfined':
            problems.append(f'{where}: AppArmor Unconfined')
    for sysctl in (pod.get('securityContext') or {}).get('sysctls') or []:
        if sysctl['name'] not in SAFE_SYSCTLS:
            problems.append(f'sysctl {sysctl["name"]}')
    for container in containers(pod):
        for port in container.get('ports') or []:
            if port.get('hostPort'):
                problems.append(f'container {container["name"]}: hostPort {port["hostPort"]}')
    return problems


def restricted(pod: Mapping[str, Any]) -> list[str]:
    problems = baseline(pod)
    for volume in pod.get('volumes') or []:
        if not set(volume) - {'name'} <= RESTRICTED_VOLUME_SOURCES:
            problems.append(f'volume {volume["name"]} is of a restricted type')
    pod_context = pod.get('securityContext') or {}
    for where, context in _contexts(pod):
        if context.get('runAsNonRoot') is False:
            problems.append(f'{where}: runAsNonRoot false')
        if context.get('runAsUser') == 0:
            problems.append(f'{where}: runAsUser 0')
        if (context.get('seccompProfile') or {}).get('type') not in (None, 'RuntimeDefault', 'Localhost'):
            problems.append(f'{where}: seccomp {context["seccompProfile"]}')
    for container in containers(pod):
        context, name = container.get('securityContext') or {}, container['name']
        if context.get('allowPrivilegeEscalation') is not False:
            problems.append(f'container {name}: allowPrivilegeEscalation is not false')
        if not context.get('runAsNonRoot', pod_context.get('runAsNonRoot')):
            problems.append(f'container {name}: runAsNonRoot is not true')
        seccomp = (context.get('seccompProfile') or pod_context.get('seccompProfile') or {}).get('type')
        if seccomp not in ('RuntimeDefault', 'Localhost'):
            problems.append(f'container {name}: no RuntimeDefault or Localhost seccomp profile')
        capabilities = context.get('capabilities') or {}
        if 'ALL' not in (capabilities.get('drop') or []):
            problems.append(f'container {name}: capabilities do not drop ALL')
        if set(capabilities.get('add') or []) - {'NET_BIND_SERVICE'}:
            problems.append(f'container {name}: adds capabilities beyond NET_BIND_SERVICE')
    return problems
