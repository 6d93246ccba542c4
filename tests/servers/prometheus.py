"""A real Prometheus server for tests, started from Debian's ``prometheus`` binary.

``make test`` installs the package (scripts/ensure-prometheus.sh), which also brings ``promtool``.
Each server listens on a free loopback port, keeps its database in the given work directory,
scrapes the given targets as one job and may load rule files. Its HTTP API answers through
:meth:`PrometheusServer.api`, which raises with Prometheus' own error message when a query fails.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import pathlib
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from typing import Any

import yaml

from .ports import free_port

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


@dataclasses.dataclass(frozen=True)
class PrometheusServer:
    host: str
    port: int
    workdir: pathlib.Path
    job: str
    scrape_interval: float  # seconds

    @property
    def url(self) -> str:
        return f'http://{self.host}:{self.port}'

    @property
    def log_path(self) -> pathlib.Path:
        return self.workdir / 'prometheus.log'

    def api(self, path: str, **params: str | float | Sequence[str]) -> Any:
        """The ``data`` of ``GET /api/v1/<path>``; an answer whose status is not "success" raises."""
        query = urllib.parse.urlencode(params, doseq=True)
        try:
            with urllib.request.urlopen(f'{self.url}/api/v1/{path}?{query}', timeout=30) as answer:
                body = json.loads(answer.read())
        except urllib.error.HTTPError as error:  # 400 and 422 carry Prometheus' error as JSON
            body = json.loads(error.read() or b'{}')
        if body.get('status') != 'success':
            raise AssertionError(f'{path} {params}: {body.get("errorType")}: {body.get("error")}')
        for warning in body.get('warnings', []):
            raise AssertionError(f'{path} {params}: warning: {warning}')
        return body['data']

    def query(self, expr: str, at: float | None = None) -> dict[str, Any]:
        """An instant query: ``{"resultType": ..., "result": [...]}``."""
        result: dict[str, Any] = self.api('query', query=expr, time=at if at is not None else time.time())
        return result

    def query_range(self, expr: str, start: float, end: float, step: float) -> dict[str, Any]:
        result: dict[str, Any] = self.api('query_range', query=expr, start=start, end=end, step=step)
        return result

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f'{self.url}/-/ready', timeout=2) as answer:
                return bool(answer.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False


@contextlib.contextmanager
def running_prometheus(
    workdir: pathlib.Path,
    targets: Sequence[str],
    rule_files: Sequence[pathlib.Path] = (),
    scrape_interval: float = 1.0,
    job: str = 'sergeant',
) -> Iterator[PrometheusServer]:
    """Start Prometheus scraping ``targets`` (host:port) as ``job``, wait until it is ready, stop it on exit.

    Rules are evaluated at the scrape interval; the database lives in ``workdir/data``.
    """
    binary = prometheus_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    interval = f'{round(scrape_interval * 1000)}ms'
    config = {
        'global': {'scrape_interval': interval, 'scrape_timeout': interval, 'evaluation_interval': interval},
        'rule_files': [str(path) for path in rule_files],
        'scrape_configs': [{'job_name': job, 'static_configs': [{'targets': list(targets)}]}],
    }
    config_path = workdir / 'prometheus.yml'
    config_path.write_text(yaml.safe_dump(config))
    server = PrometheusServer('127.0.0.1', free_port(), workdir, job, scrape_interval)
    command = [
        binary,
        f'--config.file={config_path}',
        f'--storage.tsdb.path={workdir / "data"}',
        f'--web.listen-address={server.host}:{server.port}',
        '--log.level=warn',
    ]
    with server.log_path.open('ab') as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not server.ready():
            if process.poll() is not None:
                raise RuntimeError(f'prometheus exited with code {process.returncode}:\n{_tail(server)}')
            if time.monotonic() > deadline:
                raise RuntimeError(f'prometheus not ready within {START_TIMEOUT} s:\n{_tail(server)}')
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def prometheus_binary() -> str:
    return _binary('prometheus')


def promtool_binary() -> str:
    return _binary('promtool')


def _binary(name: str) -> str:
    binary = shutil.which(name)
    if binary is None:
        raise RuntimeError(f'{name} is not on PATH: run `make test` (it runs scripts/ensure-prometheus.sh)')
    return binary


def _tail(server: PrometheusServer) -> str:
    try:
        return server.log_path.read_text(errors='replace')[-4000:]
    except OSError as error:
        return f'(no log: {error})'
