"""``sergeant-operator``: the command that runs the operator.

Every flag also reads a ``SERGEANT_OPERATOR_*`` environment variable (a flag
wins), e.g. ``--namespace`` and ``SERGEANT_OPERATOR_NAMESPACE``. SIGTERM and
SIGINT stop it cleanly: the loops stop and the Lease is released, so a standby
replica takes over at once.

``--manage-crd`` applies the bundled SergeantWorker CRD at start when the
cluster's is missing or older (:mod:`.crd`); ``--allow-privileged-pods`` lets
SergeantWorkers ask for privileged pods (:mod:`.security`), refused otherwise.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import uuid
from collections.abc import Sequence
from types import FrameType

from .crd import ensure_crd
from .kube import Kube, KubeError, current_namespace, load_api_client
from .leader import ElectionTimings, LeaderElector
from .manager import Operator, OperatorSettings
from .metrics import HealthServer, OperatorMetrics

logger = logging.getLogger('sergeant_operator')

DEFAULT_METRICS_PORT = 8080
DEFAULT_LEASE_NAME = 'sergeant-operator'
ALL_NAMESPACES = 'all'


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f'SERGEANT_OPERATOR_{name}') or default


def _env_flag(name: str, default: bool) -> bool:
    return (_env(name, str(default)) or '').lower() not in ('0', 'false', 'no', '')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='sergeant-operator',
        description='Deploy SergeantWorker pools and scale them from the length of their task queues.',
    )
    add = parser.add_argument
    add(
        '--kubeconfig',
        default=_env('KUBECONFIG'),
        help='kubeconfig file (default: in-cluster, then $KUBECONFIG)',
    )
    add(
        '--namespace',
        default=_env('NAMESPACE', ALL_NAMESPACES),
        help=f'namespace whose SergeantWorkers to manage, or "{ALL_NAMESPACES}" (default)',
    )
    add('--metrics-host', default=_env('METRICS_HOST', '0.0.0.0'), help='address of /metrics and /healthz')
    add(
        '--metrics-port',
        type=int,
        default=int(_env('METRICS_PORT', str(DEFAULT_METRICS_PORT)) or DEFAULT_METRICS_PORT),
        help=f'port of /metrics and /healthz (default {DEFAULT_METRICS_PORT}; 0 picks a free one)',
    )
    add(
        '--leader-election',
        action=argparse.BooleanOptionalAction,
        default=(_env('LEADER_ELECTION', 'true') or 'true').lower() not in ('0', 'false', 'no'),
        help='campaign for a Lease so several replicas can run (default on)',
    )
    add('--lease-name', default=_env('LEASE_NAME', DEFAULT_LEASE_NAME), help='name of the Lease')
    add(
        '--lease-namespace', default=_env('LEASE_NAMESPACE'), help='namespace of the Lease (default: our own)'
    )
    add(
        '--identity', default=_env('IDENTITY'), help='this replica in the Lease (default: host name + random)'
    )
    add('--lease-duration', type=float, default=float(_env('LEASE_DURATION', '15') or 15))
    add('--renew-deadline', type=float, default=float(_env('RENEW_DEADLINE', '10') or 10))
    add('--retry-period', type=float, default=float(_env('RETRY_PERIOD', '2') or 2))
    add(
        '--manage-crd',
        action=argparse.BooleanOptionalAction,
        default=_env_flag('MANAGE_CRD', False),
        help='at start, apply the bundled SergeantWorker CRD when the cluster has none or an older one '
        '(needs get and patch on customresourcedefinitions; default off)',
    )
    add(
        '--allow-privileged-pods',
        action=argparse.BooleanOptionalAction,
        default=_env_flag('ALLOW_PRIVILEGED_PODS', False),
        help='let SergeantWorkers ask for privileged containers, host namespaces, added capabilities, '
        'root or privilege escalation (default: refused)',
    )
    add('--log-level', default=_env('LOG_LEVEL', 'INFO'), choices=('DEBUG', 'INFO', 'WARNING', 'ERROR'))
    return parser


def build_operator(arguments: argparse.Namespace) -> Operator:
    kube = Kube(load_api_client(arguments.kubeconfig))
    identity = arguments.identity or f'{socket.gethostname()}-{uuid.uuid4().hex[:8]}'
    namespace = None if arguments.namespace == ALL_NAMESPACES else arguments.namespace
    elector = None
    if arguments.leader_election:
        timings = ElectionTimings(arguments.lease_duration, arguments.renew_deadline, arguments.retry_period)
        lease_namespace = arguments.lease_namespace or namespace or current_namespace()
        elector = LeaderElector(kube, lease_namespace, arguments.lease_name, identity, timings)
    settings = OperatorSettings(
        namespace=namespace, identity=identity, allow_privileged_pods=arguments.allow_privileged_pods
    )
    return Operator(kube, settings, OperatorMetrics(), elector)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    logging.basicConfig(level=arguments.log_level, format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    try:
        operator = build_operator(arguments)
    except (KubeError, ValueError) as error:
        print(f'sergeant-operator: {error}', file=sys.stderr)
        return 2
    if arguments.manage_crd:
        try:
            logger.info('SergeantWorker CRD: %s', ensure_crd(operator.kube))
        except (KubeError, TimeoutError) as error:  # the cluster's CRD still serves: carry on
            logger.error('SergeantWorker CRD not applied: %s', error)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        logger.info('signal %d: stopping', signum)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    server = HealthServer(
        arguments.metrics_host, arguments.metrics_port, operator.metrics, operator.is_healthy
    )
    server.start()
    logger.info(
        'sergeant-operator %s: namespace %s, /metrics and /healthz on port %d',
        operator.settings.identity,
        arguments.namespace,
        server.port,
    )
    try:
        operator.run(stop)
    finally:
        server.stop()
        operator.kube.close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
