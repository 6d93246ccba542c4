"""A real Kubernetes API server (kube-apiserver on etcd) for tests, envtest style.

The binaries are built by ``make tools`` (scripts/tools/etcd.sh and
scripts/tools/kube-apiserver.sh) into ``.tools/bin/``; so is Helm
(scripts/tools/helm.sh), whose path is ``HELM_BINARY``.

Only etcd and the API server run: no kubelet, scheduler or controller-manager.
So Deployments get no ReplicaSets or Pods, namespaces stay ``Terminating`` once
deleted and garbage collection never runs: assert on the objects themselves. The
ServiceAccount admission plugin is off, since no controller creates the
``default`` service account it would demand for every Pod.

Both processes listen on free loopback ports and keep everything (etcd data,
certificates, keys, logs, kubeconfig) in one work directory, a temporary one
removed on exit unless the caller passes its own.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import dataclasses
import json
import os
import pathlib
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator

from .ports import free_port

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
TOOLS_BIN = REPO_ROOT / '.tools' / 'bin'
ETCD_BINARY = TOOLS_BIN / 'etcd'
KUBE_APISERVER_BINARY = TOOLS_BIN / 'kube-apiserver'
HELM_BINARY = TOOLS_BIN / 'helm'

CONTEXT = 'sergeant-test'
ADMIN_USER = 'sergeant-admin'
SERVICE_ACCOUNT_ISSUER = 'https://kubernetes.default.svc.cluster.local'
START_TIMEOUT = 90.0
STOP_TIMEOUT = 15.0
_HOST = '127.0.0.1'


@dataclasses.dataclass(frozen=True)
class KubeAPIServer:
    """A running API server and how to reach it.

    ``url`` is the HTTPS address, served with a certificate signed by the CA in
    ``ca_path``. ``token`` is a bearer token of ``ADMIN_USER``, a member of
    ``system:masters`` (everything allowed; RBAC is the authorization mode, so
    RBAC objects are enforced for every other user). ``kubeconfig_path`` holds a
    kubeconfig (current context ``CONTEXT``, namespace ``default``) for the Python
    client, Helm or kubectl.
    """

    url: str
    token: str
    kubeconfig_path: pathlib.Path
    ca_path: pathlib.Path
    workdir: pathlib.Path

    def env(self) -> dict[str, str]:
        """This process's environment with ``KUBECONFIG`` pointing at the server, for subprocesses."""
        return {**os.environ, 'KUBECONFIG': str(self.kubeconfig_path)}


@contextlib.contextmanager
def running_kube_apiserver(workdir: pathlib.Path | None = None) -> Iterator[KubeAPIServer]:
    """Start etcd and kube-apiserver, wait until ``/readyz`` answers, stop both on exit.

    ``workdir`` is created if needed and left in place; without it, a temporary
    directory is used and removed on exit.
    """
    etcd_binary = required_binary(ETCD_BINARY)
    apiserver_binary = required_binary(KUBE_APISERVER_BINARY)
    with contextlib.ExitStack() as stack:  # unwinds in reverse: API server, etcd, temporary directory
        if workdir is None:
            workdir = pathlib.Path(stack.enter_context(tempfile.TemporaryDirectory(prefix='kube-')))
        workdir.mkdir(parents=True, exist_ok=True)
        etcd_url = _start_etcd(stack, etcd_binary, workdir)
        yield _start_apiserver(stack, apiserver_binary, workdir, etcd_url)


def _start_etcd(stack: contextlib.ExitStack, binary: pathlib.Path, workdir: pathlib.Path) -> str:
    """Start a one-member etcd, wait until it is healthy; its client URL."""
    etcd_url = f'http://{_HOST}:{free_port()}'
    peer_url = f'http://{_HOST}:{free_port()}'
    log_path = workdir / 'etcd.log'
    command = [
        str(binary),
        f'--data-dir={workdir / "etcd"}',
        f'--listen-client-urls={etcd_url}',
        f'--advertise-client-urls={etcd_url}',
        f'--listen-peer-urls={peer_url}',
        f'--initial-advertise-peer-urls={peer_url}',
        '--name=sergeant-test',
        f'--initial-cluster=sergeant-test={peer_url}',
        '--unsafe-no-fsync',  # throwaway data: skip the fsyncs that dominate etcd's latency
        '--log-level=warn',
    ]
    etcd = stack.enter_context(_process(command, log_path))
    _wait_until(lambda: _etcd_is_healthy(etcd_url), etcd, log_path)
    return etcd_url


def _start_apiserver(
    stack: contextlib.ExitStack, binary: pathlib.Path, workdir: pathlib.Path, etcd_url: str
) -> KubeAPIServer:
    """Start kube-apiserver on ``etcd_url``, wait until ``/readyz`` answers, write the kubeconfig."""
    token = secrets.token_urlsafe(32)
    (workdir / 'tokens.csv').write_text(f'{token},{ADMIN_USER},{ADMIN_USER},"system:masters"\n')
    service_account_key, service_account_public_key = _service_account_keys(workdir)
    cert_dir = workdir / 'certs'
    port = free_port()
    url = f'https://{_HOST}:{port}'
    log_path = workdir / 'kube-apiserver.log'
    command = [
        str(binary),
        f'--etcd-servers={etcd_url}',
        f'--bind-address={_HOST}',
        f'--advertise-address={_HOST}',
        f'--secure-port={port}',
        f'--cert-dir={cert_dir}',  # a self-signed CA and serving certificate for the bind address
        f'--token-auth-file={workdir / "tokens.csv"}',
        '--authorization-mode=RBAC',
        f'--service-account-issuer={SERVICE_ACCOUNT_ISSUER}',
        f'--service-account-key-file={service_account_public_key}',
        f'--service-account-signing-key-file={service_account_key}',
        '--service-cluster-ip-range=10.0.0.0/24',
        '--disable-admission-plugins=ServiceAccount',
        '--allow-privileged=true',
        '--endpoint-reconciler-type=none',  # no kubelet or second server to publish endpoints for
    ]
    apiserver = stack.enter_context(_process(command, log_path))
    ca_path = workdir / 'ca.crt'
    serving_cert = cert_dir / 'apiserver.crt'
    _wait_until(lambda: _ca_is_written(serving_cert, ca_path), apiserver, log_path)
    context = ssl.create_default_context(cafile=str(ca_path))
    _wait_until(lambda: _apiserver_is_ready(url, token, context), apiserver, log_path)
    kubeconfig_path = workdir / 'kubeconfig'
    _write_kubeconfig(kubeconfig_path, url, token, ca_path)
    return KubeAPIServer(url, token, kubeconfig_path, ca_path, workdir)


def required_binary(path: pathlib.Path) -> pathlib.Path:
    """``path`` if it is an executable, else an error telling how to build it."""
    if not os.access(path, os.X_OK):
        raise RuntimeError(f'{path} is missing: run `make tools` (scripts/build-tools.sh) first')
    return path


@contextlib.contextmanager
def _process(command: list[str], log_path: pathlib.Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log_path, 'ab') as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_stop_with_parent(),
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _stop_with_parent() -> Callable[[], None] | None:
    """A pre-exec hook asking Linux to SIGKILL the child when this process dies.

    Covers what the ``finally`` blocks cannot: a test run killed with SIGKILL would
    otherwise leave etcd and kube-apiserver running. SIGKILL, since a graceful
    kube-apiserver shutdown hangs once etcd is gone too.
    """
    if not sys.platform.startswith('linux'):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before fork: the child only calls it
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, signal.SIGKILL)

    return hook


def _service_account_keys(workdir: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """An EC P-256 key pair: the private key signs service-account tokens, the public one verifies them."""
    openssl = shutil.which('openssl')
    if openssl is None:
        raise RuntimeError('openssl is not on PATH: it generates the API server service-account keys')
    private, public = workdir / 'service-account.key', workdir / 'service-account.pub'
    curve = ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']
    subprocess.run([openssl, 'genpkey', *curve, '-out', str(private)], check=True, capture_output=True)
    subprocess.run(
        [openssl, 'pkey', '-in', str(private), '-pubout', '-out', str(public)],
        check=True,
        capture_output=True,
    )
    return private, public


def _wait_until(ready: Callable[[], bool], process: subprocess.Popen[bytes], log_path: pathlib.Path) -> None:
    name = log_path.stem
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f'{name} exited with code {process.returncode}:\n{_tail(log_path)}')
        if ready():
            return
        time.sleep(0.1)
    raise RuntimeError(f'{name} was not ready within {START_TIMEOUT:.0f} s:\n{_tail(log_path)}')


def _etcd_is_healthy(etcd_url: str) -> bool:
    try:
        with urllib.request.urlopen(f'{etcd_url}/health', timeout=1) as response:
            return bool(json.load(response).get('health') == 'true')
    except (OSError, ValueError):
        return False


def _ca_is_written(serving_cert: pathlib.Path, ca_path: pathlib.Path) -> bool:
    """Copy the CA (the last of the two certificates the API server writes) to ``ca_path``."""
    try:
        pem = serving_cert.read_text()
    except FileNotFoundError:
        return False
    marker = '-----BEGIN CERTIFICATE-----'
    if pem.count(marker) < 2 or not pem.rstrip().endswith('-----END CERTIFICATE-----'):
        return False  # still being written
    ca_path.write_text(marker + pem.rsplit(marker, 1)[1])
    return True


def _apiserver_is_ready(url: str, token: str, context: ssl.SSLContext) -> bool:
    request = urllib.request.Request(f'{url}/readyz', headers={'Authorization': f'Bearer {token}'})
    try:
        with urllib.request.urlopen(request, timeout=2, context=context) as response:
            return bool(response.status == 200)
    except OSError:  # refused, TLS not up yet, or an HTTP error while not ready
        return False


def _write_kubeconfig(path: pathlib.Path, url: str, token: str, ca_path: pathlib.Path) -> None:
    """A kubeconfig in JSON (valid YAML); owner-only, as Helm warns about readable ones."""
    config = {
        'apiVersion': 'v1',
        'kind': 'Config',
        'clusters': [
            {
                'name': CONTEXT,
                'cluster': {
                    'server': url,
                    'certificate-authority-data': base64.b64encode(ca_path.read_bytes()).decode(),
                },
            }
        ],
        'users': [{'name': ADMIN_USER, 'user': {'token': token}}],
        'contexts': [
            {'name': CONTEXT, 'context': {'cluster': CONTEXT, 'user': ADMIN_USER, 'namespace': 'default'}}
        ],
        'current-context': CONTEXT,
    }
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(descriptor, 'w') as file:
        json.dump(config, file, indent=2)


def _tail(log_path: pathlib.Path, lines: int = 40) -> str:
    try:
        return '\n'.join(log_path.read_text(errors='replace').splitlines()[-lines:])
    except OSError as error:
        return f'(no log: {error})'
